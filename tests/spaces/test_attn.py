"""The ``attn`` and ``baseline`` spaces: which parameters, in which ranges, under which conditions."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from search.model import ATTENTION_POSITIONS, resolve_params
from search.record import TrialRecord
from spaces import HEADED_POSITIONS, get_space
from spaces.attn import COMMON_FIXED, AttnSpace
from spaces.baseline import BaselineSpace

COMMON = ["batch_size", "dropout", "batch_norm", "hidden_units", "learning_rate", "embedding_mode"]

Suggest = Callable[..., tuple[dict[str, Any], dict[str, Any]]]  # the `suggest` fixture (conftest.py)


def _in_range(name: str, value: Any) -> bool:
    """The declared range of every parameter of ``attn`` (what the space promises its users)."""
    allowed = {
        "batch_size": lambda v: v in (16, 32, 64, 128),
        "dropout": lambda v: 0.0 <= v <= 0.6 and round(v * 10, 9) == round(v * 10),
        "batch_norm": lambda v: v in (False, True),
        "hidden_units": lambda v: v in (32, 64, 128),
        "learning_rate": lambda v: 3e-4 <= v <= 1e-2,
        "embedding_mode": lambda v: v in ("frozen", "trainable", "random"),
        "attention_position": lambda v: v in ATTENTION_POSITIONS,
        "num_heads": lambda v: v in (1, 2, 4, 8),
    }
    return bool(allowed[name](value))


def test_headed_positions_are_attention_positions() -> None:
    assert set(HEADED_POSITIONS) == {"embedding", "rnn"}
    assert set(HEADED_POSITIONS) < set(ATTENTION_POSITIONS)


@pytest.mark.parametrize(("space_class", "names"), [
    (AttnSpace, [*COMMON, "attention_position", "num_heads"]),
    (BaselineSpace, COMMON),
])
def test_parameters_in_suggestion_order(space_class: type, names: list[str]) -> None:
    assert [p.name for p in space_class().parameters({})] == names


def test_attn_suggestions_stay_in_their_ranges(suggest: Suggest) -> None:
    seen: dict[str, set[Any]] = {}
    for _ in range(60):
        params, searched = suggest(AttnSpace())
        for name, value in searched.items():
            assert _in_range(name, value), (name, value)
            seen.setdefault(name, set()).add(value)
        assert {k: params[k] for k in COMMON_FIXED} == dict(COMMON_FIXED)
        resolve_params(params)  # the model factory accepts every suggestion (raises ModelConfigError if not)
    assert seen["attention_position"] == set(ATTENTION_POSITIONS)
    assert seen["batch_size"] == {16, 32, 64, 128}
    assert len(seen["learning_rate"]) > 50  # continuous, not a handful of values


@pytest.mark.parametrize("position", ATTENTION_POSITIONS)
def test_num_heads_only_for_the_headed_positions(position: str, suggest: Suggest) -> None:
    params, searched = suggest(AttnSpace(), enqueue={"attention_position": position})
    assert params["attention_position"] == position
    headed = position in HEADED_POSITIONS
    assert ("num_heads" in searched) is headed  # the sampler never sees a parameter that does nothing
    assert ("num_heads" in params) is headed
    assert set(searched) == set(COMMON) | {"attention_position"} | ({"num_heads"} if headed else set())


def test_baseline_has_no_attention(suggest: Suggest) -> None:
    for _ in range(10):
        params, searched = suggest(BaselineSpace())
        assert set(searched) == set(COMMON)
        assert params["attention_position"] == "none"
        assert "num_heads" not in params
        assert {k: params[k] for k in COMMON_FIXED} == dict(COMMON_FIXED)
        resolve_params(params)


@pytest.mark.parametrize("name", ["attn", "baseline"])
def test_user_fixed_values_are_not_searched(name: str, suggest: Suggest) -> None:
    """``--set dropout=0.25 rnn_layers=2``: the value is used as given and never reaches the sampler."""
    params, searched = suggest(get_space(name), {"fixed": {"dropout": 0.25, "rnn_layers": 2}})
    assert params["dropout"] == 0.25 and params["rnn_layers"] == 2
    assert "dropout" not in searched


def test_user_fixed_position_decides_the_condition(suggest: Suggest) -> None:
    params, searched = suggest(AttnSpace(), {"fixed": {"attention_position": "rnn"}})
    assert "attention_position" not in searched
    assert params["attention_position"] == "rnn" and "num_heads" in searched


@pytest.mark.parametrize("name", ["attn", "baseline"])
def test_open_ended(name: str) -> None:
    space = get_space(name)
    assert space.n_trials({}) is None
    assert space.prepare(None) == {}


def test_baseline_enqueues_nothing() -> None:
    import optuna

    study = optuna.create_study()
    assert get_space("baseline").enqueue(study, {}) == 0 and study.trials == []


def test_attn_starts_with_its_strong_configurations_in_order() -> None:
    """Each enqueued configuration is a point of the space (every value one the space can suggest), and
    the first trials run exactly them: without attention, and with it, so TPE learns from both."""
    import optuna

    from spaces.attn import STRONG_START

    space = AttnSpace()
    study = optuna.create_study()
    assert space.enqueue(study, {}) == len(STRONG_START) >= 2
    assert {p["attention_position"] for p in STRONG_START} >= {"none", "rnn"}
    for expected in STRONG_START:
        trial = study.ask()
        params = space.suggest(trial, {})
        assert {k: params[k] for k in expected} == dict(expected)
        assert set(trial.params) == set(expected)  # nothing left to the sampler, nothing extra
        assert TrialRecord.from_trial(trial).strong_start is True  # the objective does not prune it
        study.tell(trial, 0.5)
    sampled = study.ask()
    space.suggest(sampled, {})
    assert TrialRecord.from_trial(sampled).strong_start is None


def test_attn_strong_start_leaves_user_fixed_parameters_alone() -> None:
    import optuna

    space = AttnSpace()
    study = optuna.create_study()
    context = {"fixed": {"hidden_units": 32}}
    space.enqueue(study, context)
    trial = study.ask()
    params = space.suggest(trial, context)
    assert params["hidden_units"] == 32 and "hidden_units" not in trial.params
