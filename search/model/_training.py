"""Training and predicting with a factory model: length-aware batches wherever the model allows them."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search.model._batching import LengthBatches, backend_input, predict_by_length

if TYPE_CHECKING:
    import keras

    from search.model._factory import BuiltModel

__all__ = ["fit_model", "predict_probabilities"]


def fit_model(built: BuiltModel, x: np.ndarray, y: np.ndarray, *, epochs: int, callbacks: Sequence[Any],
              seed: int, length_batches: bool = True) -> None:
    """Keras' ``fit`` at the model's own ``batch_size``, shuffled, silent (the callbacks log).

    A model that takes any length (``built.any_length``) trains on
    :class:`~search.model._batching.LengthBatches` unless ``length_batches`` is False: the same documents
    each epoch, the same masking, fewer padded steps. ``seed`` orders its batches.
    """
    batch_size = int(built.params["batch_size"])
    if length_batches and built.any_length:
        batches = LengthBatches(x, y, batch_size, seed)
        built.model.fit(backend_input(batches), epochs=epochs, callbacks=list(callbacks), verbose=0, shuffle=False)
    else:
        built.model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=list(callbacks), verbose=0,
                        shuffle=True)


def predict_probabilities(model: keras.Model, x: np.ndarray, batch_size: int, *, any_length: bool) -> np.ndarray:
    """Label probabilities for every row of ``x`` (float32), in ``x``'s order: in batches of similar
    length when the model takes any length (the same numbers, fewer padded steps), else Keras' ``predict``."""
    if any_length:
        return predict_by_length(model, x, batch_size)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
