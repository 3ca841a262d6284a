"""Fixtures for the space tests: real in-memory Optuna studies, and a way to run a space's suggest on them."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
import pytest

from spaces import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: ``suggest(space, context, fixed_trial_params=None)`` -> (params the model gets, params the sampler saw)
Suggest = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


@pytest.fixture
def study() -> optuna.Study:
    """An in-memory study with a seeded random sampler (every parameter's range gets explored)."""
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=7))


@pytest.fixture
def suggest(study: optuna.Study) -> Suggest:
    """Ask one trial of ``study`` (enqueued with ``enqueue`` if given), run ``space.suggest`` on it, tell it."""

    def run(space: SearchSpace, context: Mapping[str, Any] | None = None,
            enqueue: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        if enqueue is not None:
            study.enqueue_trial(dict(enqueue))
        trial = study.ask()
        params = space.suggest(trial, context or {})
        study.tell(trial, 0.0)
        return params, dict(trial.params)

    return run
