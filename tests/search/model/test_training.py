"""Training a factory model: the per-epoch learning rate decay, resumed epochs, and its bad values."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from search.errors import ModelConfigError
from search.model import build_model, fit_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")


class _SeenRates(keras.callbacks.Callback):
    """The learning rate each epoch trains at, read when the epoch begins (after the schedule set it)."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


@pytest.mark.parametrize("length_batches", [True, False])
def test_lr_decay_multiplies_the_rate_every_epoch(length_batches, tiny_params_factory, tiny_shapes,
                                                  tiny_data) -> None:
    x, y = tiny_data
    built = build_model(tiny_params_factory(learning_rate=0.01, lr_decay=0.5), tiny_shapes)
    seen = _SeenRates()
    fit_model(built, x, y, epochs=3, callbacks=[seen], seed=0, length_batches=length_batches)
    assert seen.rates == pytest.approx([0.01, 0.005, 0.0025])


def test_a_resumed_fit_continues_the_schedule_from_its_initial_epoch(tiny_params_factory, tiny_shapes,
                                                                     tiny_data) -> None:
    """A caller that trains one epoch per call (a benchmark that scores each epoch) gets the same rates."""
    x, y = tiny_data
    built = build_model(tiny_params_factory(learning_rate=0.01, lr_decay=0.5), tiny_shapes)
    seen = _SeenRates()
    for epoch in range(3):
        fit_model(built, x, y, epochs=epoch + 1, initial_epoch=epoch, callbacks=[seen], seed=epoch)
    assert seen.rates == pytest.approx([0.01, 0.005, 0.0025])


def test_no_decay_leaves_the_rate_constant(tiny_params_factory, tiny_shapes, tiny_data) -> None:
    x, y = tiny_data
    built = build_model(tiny_params_factory(learning_rate=0.01), tiny_shapes)
    assert built.params["lr_decay"] == 1.0
    seen = _SeenRates()
    fit_model(built, x, y, epochs=2, callbacks=[seen], seed=0)
    assert seen.rates == pytest.approx([0.01, 0.01])
    assert np.isfinite(built.model.predict(x, verbose=0)).all()


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5, "fast"])
def test_a_bad_lr_decay_is_refused_naming_the_field(value, tiny_params_factory, tiny_shapes) -> None:
    with pytest.raises(ModelConfigError) as info:
        build_model(tiny_params_factory(lr_decay=value), tiny_shapes)
    assert info.value.field == "lr_decay" and f"got {value!r}" in str(info.value)
    assert "expected a number in (0, 1]" in str(info.value)
