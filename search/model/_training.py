"""Training and predicting with a factory model: length-aware batches wherever the model allows them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search.model._batching import LengthBatches, backend_input, predict_by_length

if TYPE_CHECKING:
    import keras

    from search.model._factory import BuiltModel

__all__ = ["fit_model", "learning_rate_schedule", "predict_probabilities"]


def learning_rate_schedule(params: Mapping[str, Any]) -> keras.callbacks.Callback | None:
    """Keras' ``LearningRateScheduler`` for resolved ``params`` whose ``lr_decay`` is below 1 (None: a
    constant learning rate, left to the optimiser)."""
    import keras

    decay, initial = float(params["lr_decay"]), float(params["learning_rate"])
    if decay >= 1.0:
        return None
    return keras.callbacks.LearningRateScheduler(lambda epoch, _lr: initial * decay ** epoch)


def fit_model(built: BuiltModel, x: np.ndarray, y: np.ndarray, *, epochs: int, callbacks: Sequence[Any],
              seed: int, length_batches: bool = True, initial_epoch: int = 0) -> None:
    """Keras' ``fit`` at the model's own ``batch_size``, shuffled, silent (the callbacks log), from epoch
    ``initial_epoch`` (0-based) up to ``epochs``, with the learning rate schedule the params ask for.

    A model that takes any length (``built.any_length``) trains on
    :class:`~search.model._batching.LengthBatches` unless ``length_batches`` is False: the same documents
    each epoch, the same masking, fewer padded steps. ``seed`` orders its batches.
    """
    batch_size = int(built.params["batch_size"])
    schedule = learning_rate_schedule(built.params)
    # The schedule first, so the callbacks that log an epoch see the rate it trains at.
    every = [schedule, *callbacks] if schedule is not None else list(callbacks)
    if length_batches and built.any_length:
        batches = LengthBatches(x, y, batch_size, seed)
        built.model.fit(backend_input(batches), epochs=epochs, initial_epoch=initial_epoch, callbacks=every,
                        verbose=0, shuffle=False)
    else:
        built.model.fit(x, y, batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch, callbacks=every,
                        verbose=0, shuffle=True)


def predict_probabilities(model: keras.Model, x: np.ndarray, batch_size: int, *, any_length: bool) -> np.ndarray:
    """Label probabilities for every row of ``x`` (float32), in ``x``'s order: in batches of similar
    length when the model takes any length (the same numbers, fewer padded steps), else Keras' ``predict``."""
    if any_length:
        return predict_by_length(model, x, batch_size)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
