"""Length-aware batches: documents of similar length trained together, each batch padded to its own length.

debtags50's median document is 54 tokens, padded to ``max_len`` 128: a batch of randomly drawn documents
spends more than half of its recurrent steps on padding. For a model that takes token ids of any length
and predicts the same whatever padding follows a text (:func:`~search.model._params.any_length`: the
masked RCNN), cutting each batch to its longest document changes nothing that is computed for a document and
saves those steps; sorting documents by length within pools of many batches makes the cut deep.

Why our own :class:`keras.utils.PyDataset` and not ``tf.data``'s ``bucket_by_sequence_length``: a
PyDataset works on every Keras backend, and the batches it yields are numpy arrays the same on each.
Under TensorFlow, :func:`backend_input` hands the same batches to Keras through a ``tf.data`` pipeline
of our own, without tf.data's autotuning (see there why).
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["LengthBatches", "backend_input", "document_lengths", "predict_by_length", "POOL_BATCHES", "LENGTH_MULTIPLE",
           "PREFETCH_BATCHES"]

#: Documents are sorted by length within pools of this many batches: large enough for batches of similar
#: lengths, small enough that every epoch still mixes documents of every length in a random order.
POOL_BATCHES = 50
#: A batch's length is rounded up to a multiple of this, so a backend compiles a handful of shapes at most.
LENGTH_MULTIPLE = 8
#: Batches made ahead of the model under TensorFlow (see :func:`backend_input`): enough to hide the numpy
#: slicing behind a training step, which takes far longer.
PREFETCH_BATCHES = 2


def document_lengths(x: np.ndarray) -> np.ndarray:
    """Tokens before the post-padding of each row (ids 0 are padding); at least 1, as the model's mask
    never masks the first step."""
    nonzero = x != 0
    last = x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 1).astype(np.int64)


def _cut(lengths: np.ndarray, width: int) -> int:
    longest = int(lengths.max()) if lengths.size else 1
    return min(width, -(-longest // LENGTH_MULTIPLE) * LENGTH_MULTIPLE)


def _spec_first(batches: list[np.ndarray], widths: list[int]) -> list[np.ndarray]:
    """The same batches, with a smaller (last) batch first and one of another width second, where such
    batches exist. Keras fixes the input signature of a PyDataset from its first two batches (TensorFlow
    backend): a dimension they share is taken as fixed, and a later batch that differs would be refused."""
    order = list(range(len(batches)))
    if len(order) < 2:
        return batches
    full = max(len(b) for b in batches)
    first = next((i for i in order if len(batches[i]) < full), order[0])
    second = next((i for i in order if i != first and widths[i] != widths[first]),
                  next(i for i in order if i != first))
    rest = [i for i in order if i not in (first, second)]
    return [batches[i] for i in (first, second, *rest)]


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
        batches = [batches[i] for i in rng.permutation(len(batches))]
        return _spec_first(batches, [_cut(self.lengths[b], self.x.shape[1]) for b in batches])

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


class _SortedRows(keras.utils.PyDataset):
    """``x`` in batches of similar length, each cut to its longest document, for prediction."""

    def __init__(self, x: np.ndarray, batch_size: int) -> None:
        super().__init__()
        lengths = document_lengths(x)
        order = np.argsort(lengths, kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        self.x = x
        self.batches = _spec_first(batches, [_cut(lengths[b], x.shape[1]) for b in batches])
        self.widths = {id(b): _cut(lengths[b], x.shape[1]) for b in self.batches}

    @property
    def num_batches(self) -> int:
        return len(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> np.ndarray:
        rows = self.batches[index]
        return self.x[rows, : self.widths[id(rows)]]


def backend_input(dataset: keras.utils.PyDataset) -> Any:
    """What to give Keras' ``fit`` or ``predict`` for ``dataset``: the dataset itself, except under the
    TensorFlow backend, where the same batches go through a ``tf.data`` pipeline with autotuning off and a
    fixed prefetch of :data:`PREFETCH_BATCHES`.

    Why not the PyDataset itself under TensorFlow: Keras turns a one-worker PyDataset into ``tf.data``
    with ``prefetch(AUTOTUNE)``, and on the 2-core CPU machine the autotuner's threads take CPU from
    the model and hold the end of each ``fit`` or ``predict`` (the iterator's tear-down) for up to
    seconds, for every report point of a trial: a 2-epoch fit of 1,024 documents took 8.1-10.2 s with it
    and 6.2-7.2 s without (BENCHMARKS.md, "Trial throughput"). Keras' threaded enqueuer (``workers`` >
    1) turns autotuning off too, but a fit stopped inside an epoch (a pruned trial) leaves its thread
    blocked for good. The batches and their order are the dataset's own either way, and each epoch gets
    a new plan (``on_epoch_end``: here before each epoch after the first, where Keras calls it after each).
    """
    if keras.backend.backend() != "tensorflow":
        return dataset
    import tensorflow as tf

    first = dataset[0]
    # Every axis of the token ids may vary (batch and length); the labels keep their width.
    inputs = first[0] if isinstance(first, tuple) else first
    spec = tf.TensorSpec((None,) * inputs.ndim, tf.as_dtype(inputs.dtype))
    signature: Any = spec
    if isinstance(first, tuple):
        signature = (spec, *(tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in first[1:]))

    passes = 0

    def batches() -> Any:
        # Each pass (Keras starts one an epoch) after the first begins with the next epoch's plan. Not at
        # the end of a pass: Keras takes exactly an epoch's batches, so whether the generator is resumed
        # once more before its iterator is dropped is a race with the prefetching thread.
        nonlocal passes
        if passes:
            dataset.on_epoch_end()
        passes += 1
        for i in range(len(dataset)):
            yield dataset[i]

    options = tf.data.Options()
    options.autotune.enabled = False
    pipeline = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # Keras reads an epoch's number of steps from the cardinality (the report points depend on it).
    pipeline = pipeline.apply(tf.data.experimental.assert_cardinality(len(dataset)))
    return pipeline.prefetch(PREFETCH_BATCHES).with_options(options)


def predict_by_length(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.predict`` over ``x`` in batches of similar length, each cut to its longest document; rows
    come back in ``x``'s order. Only for models that take any length."""
    if len(x) == 0:
        return np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    rows = _SortedRows(x, batch_size)
    prob = np.asarray(model.predict(backend_input(rows), verbose=0), dtype=np.float32)
    out = np.empty_like(prob)
    out[np.concatenate(rows.batches)] = prob
    return out
