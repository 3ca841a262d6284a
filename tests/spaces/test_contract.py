"""What every built-in space shares: the registry, the default trial seed, the grid of ``--sampler grid``."""
from __future__ import annotations

import itertools
from typing import Any

import optuna
import pytest

from search.errors import StudyConfigError
from spaces import SPACES, SearchSpace, get_space
from spaces.ablation import AblationSpace
from spaces.attn import AttnSpace
from spaces.baseline import BaselineSpace
from spaces.seed import SeedSpace

BUILT_IN = {"attn": AttnSpace, "baseline": BaselineSpace, "seed": SeedSpace, "ablation": AblationSpace}
#: A prepared ablation context (prepare itself is tested in test_ablation.py), and none for the others.
CONTEXTS: dict[str, dict[str, Any]] = {
    "ablation": {"from_study": "src", "from_trial": 0, "replicates": 2, "num_heads": 4,
                 "base_params": {"dropout": 0.2, "batch_size": 32}},
}


def test_registry_holds_the_built_in_spaces() -> None:
    assert {name: type(get_space(name)) for name in SPACES} == BUILT_IN
    for name, space_class in BUILT_IN.items():
        assert space_class.name == name and space_class.version >= 1 and space_class.description


def test_registry_refuses_an_unknown_name() -> None:
    with pytest.raises(StudyConfigError, match="unknown study space 'atn'; expected one of attn, baseline") as error:
        get_space("atn")
    assert error.value.source == "--study"


@pytest.mark.parametrize("name", ["attn", "baseline", "seed"])
def test_default_trial_seed_is_the_base_plus_the_trial_number(name: str) -> None:
    space = get_space(name)
    study = optuna.create_study()
    trials = [study.ask() for _ in range(3)]
    assert [space.trial_seed(t, 42) for t in trials] == [42, 43, 44]
    assert [space.trial_seed(t, 0) for t in trials] == [0, 1, 2]


def test_ablation_trial_seed_depends_on_the_replicate_only() -> None:
    space = AblationSpace()
    study = optuna.create_study()
    seeds = []
    for position, replicate in [("none", 0), ("rnn", 0), ("none", 1), ("label", 1)]:
        study.enqueue_trial({"attention_position": position, "replicate": replicate})
        trial = study.ask()
        space.suggest(trial, CONTEXTS["ablation"])
        seeds.append(space.trial_seed(trial, 7))
    assert seeds == [7, 7, 1007, 1007]


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_grid_covers_every_parameter(name: str) -> None:
    space = get_space(name)
    context = CONTEXTS.get(name, {})
    grid = space.grid(context)
    params = space.parameters(context)
    assert list(grid) == [p.name for p in params]  # conditional ones included (num_heads)
    for p in params:
        assert grid[p.name] == p.grid_values() and grid[p.name]


GRID_TRIALS = 24


@pytest.mark.filterwarnings("error")  # e.g. Optuna's warning that a grid value lies outside its distribution
@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_grid_sampler_runs_each_space(name: str) -> None:
    """``--sampler grid``: Optuna's GridSampler over ``space.grid(context)`` with a stub objective that only
    suggests; every value a trial gets is a grid value, and no grid point is run twice."""
    space: SearchSpace = get_space(name)
    context = CONTEXTS.get(name, {})
    grid = space.grid(context)
    size = 1
    for values in grid.values():
        size *= len(values)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler(grid, seed=0))
    suggested: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        suggested.append(space.suggest(trial, context))
        return 0.0

    study.optimize(objective, n_trials=min(size, GRID_TRIALS))
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == min(size, GRID_TRIALS)
    for trial in trials:
        assert trial.params, "a trial suggested nothing"
        for key, value in trial.params.items():
            assert value in grid[key], (key, value, grid[key])
    for params in suggested:  # what the model gets: grid values for the searched keys
        for key in set(params) & set(grid):
            assert params[key] in grid[key], (key, params[key])
    grid_ids = [t.system_attrs["grid_id"] for t in trials]
    assert len(set(grid_ids)) == len(grid_ids)
    if size <= GRID_TRIALS:  # small grids (seed, ablation) run in full
        assert {tuple(sorted(t.params.items())) for t in trials} == {
            tuple(sorted(zip(grid, combo, strict=True))) for combo in itertools.product(*grid.values())}
