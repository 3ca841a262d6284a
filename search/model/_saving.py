"""Reload a saved trial model (``.keras``) with this package's custom layers registered."""
from __future__ import annotations

import os
from typing import Any

import keras

import search.model._layers  # noqa: F401  (registers the custom layers with keras.saving)

__all__ = ["load_model"]


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> keras.Model:
    """``keras.saving.load_model`` after registering the factory's layers; kwargs are passed through."""
    return keras.saving.load_model(os.fspath(path), **kwargs)
