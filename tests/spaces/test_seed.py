"""The ``seed`` space: the seed question's three models as fixed trials."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from search.model import PRESETS, resolve_params
from spaces.seed import SEED_PRESETS, SeedSpace

Suggest = Callable[..., tuple[dict[str, Any], dict[str, Any]]]  # the `suggest` fixture (conftest.py)


def test_presets_are_the_factory_presets() -> None:
    assert set(SEED_PRESETS) == set(PRESETS)
    assert [p.name for p in SeedSpace().parameters({})] == ["preset"]
    assert SeedSpace().parameters({})[0].choices == SEED_PRESETS


def test_enqueues_each_preset_once() -> None:
    study = optuna.create_study()
    space = SeedSpace()
    assert space.enqueue(study, {}) == space.n_trials({}) == 3
    space.enqueue(study, {})  # a resumed study: nothing enqueued twice
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"preset": p} for p in SEED_PRESETS]
    assert len(study.trials) == 3


def test_suggest_returns_the_preset_in_full(study: optuna.Study, suggest: Suggest) -> None:
    SeedSpace().enqueue(study, {})
    for preset in SEED_PRESETS:
        params, searched = suggest(SeedSpace())
        assert searched == {"preset": preset}
        assert params == PRESETS[preset] | {"preset": preset}
        assert resolve_params(params)["preset"] == preset


def test_user_fixed_values_override_the_preset(suggest: Suggest) -> None:
    params, _ = suggest(SeedSpace(), {"fixed": {"batch_size": 8}}, enqueue={"preset": "seed_rcnn"})
    assert params == PRESETS["seed_rcnn"] | {"preset": "seed_rcnn", "batch_size": 8}
    assert PRESETS["seed_rcnn"]["batch_size"] != 8  # the presets themselves are not changed
