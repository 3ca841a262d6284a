"""The in-memory dataset object every loader returns."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DataSettings", "Dataset", "DataWarning", "SPLITS", "MAX_VOCAB_SIZE", "MAX_LEN"]

SPLITS = ("train", "valid", "test")
#: Upper bounds of the vectoriser's settings. Ids are int32 and each id needs an embedding row: ten
#: million words is beyond any corpus this searches. A document of 100,000 tokens is beyond what any of the
#: search's models (self-attention is quadratic in it) could train on.
MAX_VOCAB_SIZE = 10_000_000
MAX_LEN = 100_000


class DataWarning(UserWarning):
    """Something odd about a dataset that does not stop it being used (reported, not fatal)."""


def warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


@dataclass(frozen=True)
class DataSettings:
    """How text is turned into token ids. Part of the cache key and of the dataset fingerprint.

    ``vocab_size`` counts the two reserved ids: 0 is padding, 1 is out-of-vocabulary.
    ``limit`` keeps only the first N training documents (quick runs); valid and test stay whole.
    """

    vocab_size: int = 20000
    max_len: int = 200
    limit: int | None = None
    split_seed: int = 13

    def __post_init__(self) -> None:
        from search.errors import DataError

        # Each setting is named by the flag that sets it (every command spells them the same way).
        for flag, value, low, high in (("--vocab-size", self.vocab_size, 3, MAX_VOCAB_SIZE),
                                       ("--max-len", self.max_len, 1, MAX_LEN)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise DataError(f"got {value!r}; expected an integer from {low} to {high:,}", source=flag)
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise DataError(f"got {self.limit!r}; expected a positive integer or none", source="--limit")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Dataset:
    """Token ids (int32, post-padded with 0) and multi-hot labels (uint8) for each split.

    ``x_test`` / ``y_test`` are ``None`` unless the loader was asked for the test split: a search never
    reads it, only the report does.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    label_names: list[str]
    fingerprint: str
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    embedding_matrix: np.ndarray | None = None
    vocabulary: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_labels(self) -> int:
        return int(self.y_train.shape[1])

    @property
    def vocab_size(self) -> int:
        """Number of token ids (rows an embedding needs)."""
        if self.embedding_matrix is not None:
            return int(self.embedding_matrix.shape[0])
        if self.vocabulary is not None:
            return len(self.vocabulary)
        return int(max(self.x_train.max(initial=0), self.x_valid.max(initial=0))) + 1

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
        if x is None:
            raise ValueError(f"split '{name}' was not loaded (load with include_test=True)")
        return x, y

    def sizes(self) -> dict[str, int]:
        return {s: int(getattr(self, f"x_{s}").shape[0]) for s in SPLITS if getattr(self, f"x_{s}") is not None}
