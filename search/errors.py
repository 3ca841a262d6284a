"""The project's one exception root.

Every error this project raises on purpose derives from :class:`SearchError`. Errors caused by what the
user gave us (a file, a flag, a study name) derive from :class:`InputError`; the command-line entry
points turn those into one line on stderr and exit status 2, without a traceback.

This module imports nothing beyond the standard library so that every package (``storage`` included)
may use it without pulling in keras.
"""
from __future__ import annotations

__all__ = [
    "SearchError",
    "InputError",
    "DataError",
    "ModelConfigError",
    "StudyConfigError",
    "StorageError",
    "TrialFailure",
]


class SearchError(Exception):
    """Root of every error raised on purpose by this project."""


class InputError(SearchError):
    """Bad input from the user: reported as one line, exit status 2, nothing written.

    ``source`` names the file (or flag, or study) and ``field`` the part of it that is wrong; the message
    says what was received and what was expected.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.detail = message
        parts = []
        if source:
            parts.append(str(source))
        if field:
            parts.append(f"field '{field}'")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class DataError(InputError):
    """A dataset file, name or setting that cannot be used."""


class ModelConfigError(InputError):
    """Model parameters that cannot be built (unknown value, or refused before training)."""


class StudyConfigError(InputError):
    """A study that cannot be started or resumed as asked."""


class StorageError(InputError):
    """A storage URL or database that cannot be used."""


class TrialFailure(SearchError):
    """A trial failed for a recorded reason (NaN loss, out of memory, ...); the worker goes on."""
