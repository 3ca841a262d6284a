"""Reload a saved trial model (``.keras``) with this package's custom layers registered."""
from __future__ import annotations

import os
import zipfile
from typing import Any

import keras

import search.model._layers  # noqa: F401  (registers the custom layers with keras.saving)
from search.errors import InputError

__all__ = ["load_model"]


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> keras.Model:
    """``keras.saving.load_model`` after registering the factory's layers; kwargs are passed through.

    A file that is missing, truncated or not a saved model raises :class:`InputError` naming the file:
    keras would raise whatever its zip, JSON or HDF5 reader met first.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise InputError("file not found; expected a saved .keras model", source=source)
    if not zipfile.is_zipfile(source):
        raise InputError("is not a zip archive; expected a .keras model file (keras.Model.save)", source=source)
    try:
        return keras.saving.load_model(source, **kwargs)
    except Exception as exc:  # whichever reader (zip, JSON, HDF5, a layer) failed, the file is unreadable
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot be read as a saved Keras model ({reason[:200]}); expected a complete .keras "
                         "file written by this project", source=source) from None
