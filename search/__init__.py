"""Hyperparameter search service for Keras multi-label text classifiers.

This package's ``__init__`` stays light: importing ``search`` (or ``search.launch``) never imports keras
or tensorflow, so the launcher process holds no GPU.
"""
from __future__ import annotations

from search.errors import InputError, SearchError

__version__ = "0.1.0"
__all__ = ["SearchError", "InputError", "__version__"]
