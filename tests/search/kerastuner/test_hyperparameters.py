"""keras-tuner's HyperParameters interface answered by an Optuna trial (no training here)."""
from __future__ import annotations

import keras_tuner
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.kerastuner import OptunaHyperParameters

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trial(seed: int = 0) -> optuna.Trial:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()


def test_is_a_keras_tuner_hyperparameters_and_maps_every_declaration() -> None:
    trial = _trial()
    hp = OptunaHyperParameters(trial)
    assert isinstance(hp, keras_tuner.HyperParameters)
    units = hp.Int("units", min_value=32, max_value=512, step=32)
    layers = hp.Int("layers", 1, 3)
    log_int = hp.Int("filters", 8, 256, sampling="log")
    batch = hp.Int("batch", 2, 32, step=2, sampling="log")
    rate = hp.Float("dropout", 0.0, 0.5, step=0.1)
    lr = hp.Float("lr", 1e-4, 1e-2, sampling="log")
    decades = hp.Float("decade", 0.001, 10, step=10, sampling="log")
    plain = hp.Float("momentum", 0.5, 0.99)
    act = hp.Choice("activation", ["relu", "tanh"])
    flag = hp.Boolean("dropout_on")
    fixed = hp.Fixed("embedding_dim", 100)
    d = trial.distributions
    assert d["units"] == IntDistribution(32, 512, step=32) and units in range(32, 513, 32)
    assert d["layers"] == IntDistribution(1, 3) and layers in (1, 2, 3)
    assert d["filters"] == IntDistribution(8, 256, log=True) and 8 <= log_int <= 256
    assert d["batch"] == CategoricalDistribution([2, 4, 8, 16, 32]) and batch in (2, 4, 8, 16, 32)
    assert d["dropout"] == FloatDistribution(0.0, 0.5, step=0.1) and 0.0 <= rate <= 0.5
    assert d["lr"] == FloatDistribution(1e-4, 1e-2, log=True) and 1e-4 <= lr <= 1e-2
    assert d["decade"] == CategoricalDistribution([0.001, 0.01, 0.1, 1.0, 10.0])
    assert decades in (0.001, 0.01, 0.1, 1, 10)
    assert d["momentum"] == FloatDistribution(0.5, 0.99) and 0.5 <= plain <= 0.99
    assert d["activation"] == CategoricalDistribution(["relu", "tanh"]) and act in ("relu", "tanh")
    assert d["dropout_on"] == CategoricalDistribution([False, True]) and isinstance(flag, bool)
    assert fixed == 100 and "embedding_dim" not in trial.params  # not searched
    assert hp.values == {**trial.params, "embedding_dim": 100}
    assert isinstance(units, int) and isinstance(lr, float)
    # the same declaration again returns the same value; get / [] / in as keras-tuner
    assert hp.Int("units", min_value=32, max_value=512, step=32) == units
    assert hp.get("units") == hp["units"] == units and "units" in hp and "nope" not in hp


def test_step_that_does_not_divide_the_range_samples_keras_tuner_values() -> None:
    for seed in range(20):
        trial = _trial(seed)
        hp = OptunaHyperParameters(trial)
        assert hp.Int("n", 6, 13, step=3) in (6, 9, 12)  # keras-tuner's documented example
        f = hp.Float("f", 0.0, 1.0, step=0.3)
        assert any(f == pytest.approx(v) for v in (0.0, 0.3, 0.6, 0.9))
        assert hp.Int("r", 1, 100, sampling="reverse_log") in range(1, 101)
    assert trial.distributions["n"] == IntDistribution(6, 12, step=3)


def test_conditional_scope_suggests_only_active_parameters() -> None:
    seen = set()
    for seed in range(12):
        trial = _trial(seed)
        hp = OptunaHyperParameters(trial)
        kind = hp.Choice("model_type", ["mlp", "cnn"])
        with hp.conditional_scope("model_type", ["mlp"]):
            units = hp.Int("units", 8, 64, step=8)
        with hp.conditional_scope("model_type", ["cnn"]):
            filters = hp.Int("filters", 8, 16, step=8)
        width = hp.Int("width", 1, 4, parent_name="model_type", parent_values=["cnn"])
        if kind == "mlp":
            assert units is not None and filters is None and width is None
            assert set(trial.params) == {"model_type", "units"}
            assert "filters" not in hp.values
            with pytest.raises(ValueError, match="inactive"):
                hp.get("filters")
        else:
            assert units is None and filters is not None and width is not None
            assert set(trial.params) == {"model_type", "filters", "width"}
        seen.add(kind)
    assert seen == {"mlp", "cnn"}


def test_name_scope_fixed_values_and_replay() -> None:
    trial = _trial(3)
    hp = OptunaHyperParameters(trial, fixed={"block/units": 48})
    with hp.name_scope("block"):
        units = hp.Int("units", 8, 64, step=8)
        act = hp.Choice("act", ["relu", "gelu"])
    assert units == 48 and "block/units" not in trial.params and "block/act" in trial.params
    replay = OptunaHyperParameters(optuna.trial.FixedTrial(dict(trial.params)), fixed={"block/units": 48})
    with replay.name_scope("block"):
        assert replay.Int("units", 8, 64, step=8) == 48
        assert replay.Choice("act", ["relu", "gelu"]) == act


def test_a_conditional_cannot_share_its_parents_name() -> None:
    hp = OptunaHyperParameters(_trial())
    hp.Choice("a", ["x", "y"])
    with pytest.raises(ValueError, match="same name as its parent"):
        with hp.conditional_scope("a", ["x"]):
            hp.Int("a", 1, 2)
