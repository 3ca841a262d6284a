"""Length-aware batches: documents of similar length trained together, each batch padded to its own length.

debtags50's median document is 54 tokens, padded to ``max_len`` 128: a batch of randomly drawn documents
spends more than half of its recurrent steps on padding. For a model that takes token ids of any length
and predicts the same whatever padding follows a text (:func:`~search.model._params.any_length`: the
masked RCNN), cutting each batch to its longest document changes nothing that is computed for a document and
saves those steps; sorting documents by length within pools of many batches makes the cut deep.

Why our own :class:`keras.utils.PyDataset` and not ``tf.data``'s ``bucket_by_sequence_length``: a
PyDataset works on every Keras backend, and the batches it yields are numpy arrays the same on each.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

__all__ = ["LengthBatches", "document_lengths", "predict_by_length", "POOL_BATCHES", "LENGTH_MULTIPLE"]

#: Documents are sorted by length within pools of this many batches: large enough for batches of similar
#: lengths, small enough that every epoch still mixes documents of every length in a random order.
POOL_BATCHES = 50
#: A batch's length is rounded up to a multiple of this, so a backend compiles a handful of shapes at most.
LENGTH_MULTIPLE = 8


def document_lengths(x: np.ndarray) -> np.ndarray:
    """Tokens before the post-padding of each row (ids 0 are padding); at least 1, as the model's mask
    never masks the first step."""
    nonzero = x != 0
    last = x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 1).astype(np.int64)


def _cut(lengths: np.ndarray, width: int) -> int:
    longest = int(lengths.max()) if lengths.size else 1
    return min(width, -(-longest // LENGTH_MULTIPLE) * LENGTH_MULTIPLE)


class LengthBatches(keras.utils.PyDataset):
    """Shuffled training batches of ``(x[:, :T], y)``, ``T`` the batch's longest document (rounded up).

    Each epoch: a fresh permutation of the documents (from ``seed`` and the epoch number), sorted by length
    within pools of :data:`POOL_BATCHES` batches, cut into batches, the batches shuffled. Every document is
    seen once an epoch, as with Keras' own shuffled batches.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"got {len(x)} documents and {len(y)} label rows; expected the same, at least one")
        self.x, self.y, self.batch_size, self.seed = x, y, int(batch_size), int(seed)
        self.lengths = document_lengths(x)
        self.epoch = 0
        self.batches = self._plan()

    def _plan(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.x))
        pool = self.batch_size * POOL_BATCHES
        batches: list[np.ndarray] = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    @property
    def num_batches(self) -> int:
        return len(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.batches[index]
        width = _cut(self.lengths[rows], self.x.shape[1])
        return self.x[rows, :width], self.y[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.batches = self._plan()

    def padded_steps(self) -> tuple[int, int]:
        """``(steps computed, steps at the dataset's padded length)`` over one epoch of these batches."""
        cut = sum(_cut(self.lengths[rows], self.x.shape[1]) * len(rows) for rows in self.batches)
        return cut, len(self.x) * self.x.shape[1]


def predict_by_length(predict: Callable[[np.ndarray], Any], x: np.ndarray, batch_size: int) -> np.ndarray:
    """``predict`` (a model's ``predict_on_batch``) over ``x`` in batches of similar length, each cut to its
    longest document; rows come back in ``x``'s order. Only for models that take any length."""
    lengths = document_lengths(x)
    order = np.argsort(lengths, kind="stable")
    parts: list[np.ndarray] = []
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = _cut(lengths[rows], x.shape[1])
        parts.append(np.asarray(keras.ops.convert_to_numpy(predict(x[rows, :width])), dtype=np.float32))
    out = np.empty((len(x), parts[0].shape[1]) if parts else (0, 0), dtype=np.float32)
    out[order] = np.concatenate(parts) if parts else out
    return out
