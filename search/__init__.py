"""Hyperparameter search service for Keras multi-label text classifiers.

This package's ``__init__`` stays light: importing ``search`` (or ``search.launch``) never imports keras
or tensorflow, so the launcher process holds no GPU. ``search.load_predictor(DIR)`` (an exported model,
see ``python -m search.export``) is loaded on first use.
"""
from __future__ import annotations

from search._lazy import lazy_names
from search.errors import InputError, SearchError

__version__ = "0.1.0"
__all__ = ["SearchError", "InputError", "__version__", "load_predictor"]

# No type-only import of it here: every package imports this one (search.errors), so even an annotation
# would tie them to search._serving's dependencies.
_LAZY = {"load_predictor": "search._serving"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
