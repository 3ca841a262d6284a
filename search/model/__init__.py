"""The Keras model factory: one function builds a compiled multi-label text classifier from a params dict.

>>> from search.model import PRESETS, InputShapes, build_model
>>> built = build_model(PRESETS["seed_rcnn"], InputShapes(seq_len=3000, vocab_size=50_000, n_labels=50,
...                                                       embedding_matrix=vectors))
>>> built.model.fit(...); built.diagnostics["degenerate_attention"]

Parameters, presets, shapes and the attention memory estimate are pure Python and load without keras;
:func:`build_model`, :class:`BuiltModel`, :func:`load_model` and the attention diagnostics import keras
on first use (module ``__getattr__``), so validating a configuration never pays for keras. The backend
is whatever ``KERAS_BACKEND`` says when keras is first imported; this package never sets it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from search._lazy import lazy_names
from search.model._memory import DEFAULT_MEMORY_BUDGET_BYTES, estimate_attention_memory
from search.model._params import (
    ATTENTION_POSITIONS,
    DEFAULT_PARAMS,
    InputShapes,
    any_length,
    recorded_any_length,
    resolve_params,
)
from search.model._presets import PRESETS

if TYPE_CHECKING:
    from search.model._diagnostics import (
        attention_entropy,
        attention_weights,
        uniform_attention_delta,
    )
    from search.model._factory import BuiltModel, build_model
    from search.model._saving import load_model
    from search.model._training import fit_model, predict_probabilities

__all__ = [
    "ATTENTION_POSITIONS",
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "DEFAULT_PARAMS",
    "PRESETS",
    "BuiltModel",
    "InputShapes",
    "any_length",
    "recorded_any_length",
    "attention_entropy",
    "attention_weights",
    "build_model",
    "fit_model",
    "predict_probabilities",
    "estimate_attention_memory",
    "load_model",
    "resolve_params",
    "uniform_attention_delta",
]

_LAZY = {
    "BuiltModel": "search.model._factory",
    "build_model": "search.model._factory",
    "fit_model": "search.model._training",
    "predict_probabilities": "search.model._training",
    "load_model": "search.model._saving",
    "attention_weights": "search.model._diagnostics",
    "attention_entropy": "search.model._diagnostics",
    "uniform_attention_delta": "search.model._diagnostics",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
