"""The ``ablation`` space: every attention position x replicates at the best parameters of another study."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from search.errors import StudyConfigError
from search.model import ATTENTION_POSITIONS, resolve_params
from search.record import TrialRecord
from spaces import HEADED_POSITIONS, get_space
from spaces.ablation import DEFAULT_HEADS, DEFAULT_REPLICATES, AblationSpace

Suggest = Callable[..., tuple[dict[str, Any], dict[str, Any]]]  # the `suggest` fixture (conftest.py)

DISTRIBUTIONS = {"attention_position": CategoricalDistribution(ATTENTION_POSITIONS),
                 "num_heads": CategoricalDistribution((1, 2, 4, 8)),
                 "dropout": FloatDistribution(0.0, 0.6), "batch_size": CategoricalDistribution((16, 32, 64))}


def _trial(value: float | None, params: dict[str, Any], fixed: dict[str, Any] | None = None,
           state: TrialState = TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    return create_trial(state=state, value=value, params=params,
                        distributions={k: DISTRIBUTIONS[k] for k in params},
                        user_attrs=TrialRecord(fixed_params=fixed).to_user_attrs())


@pytest.fixture
def source() -> optuna.Study:
    """A finished ``attn`` study: its best trial (value 0.8) put attention after the RNN with 2 heads."""
    study = optuna.create_study(study_name="attn-src", direction="maximize")
    study.add_trial(_trial(0.5, {"attention_position": "conv", "dropout": 0.5, "batch_size": 16}))
    study.add_trial(_trial(0.8, {"attention_position": "rnn", "num_heads": 2, "dropout": 0.2, "batch_size": 64},
                           fixed={"rnn_layers": 1, "dropout": 0.6, "embedding_dim": 100}))
    study.add_trial(_trial(None, {"attention_position": "label", "dropout": 0.1}, state=TrialState.FAIL))
    return study


@pytest.fixture
def context(source: optuna.Study) -> dict[str, Any]:
    return AblationSpace().prepare(None, source_study=source, replicates=2)


def test_prepare_takes_the_best_trial_without_its_position(context: dict[str, Any]) -> None:
    assert context == {
        "from_study": "attn-src", "from_trial": 1, "replicates": 2, "num_heads": 2,
        # the searched values win over the trial's fixed ones; the position and the heads are the ablation's
        "base_params": {"dropout": 0.2, "batch_size": 64, "rnn_layers": 1, "embedding_dim": 100},
    }


def test_prepare_defaults() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(0.3, {"attention_position": "conv", "dropout": 0.1}))
    context = AblationSpace().prepare(None, source_study=study)
    assert context["replicates"] == DEFAULT_REPLICATES == 3
    assert context["num_heads"] == DEFAULT_HEADS  # the best trial had no heads
    assert context["base_params"] == {"dropout": 0.1}


def test_prepare_keeps_fixed_heads() -> None:
    """A source whose heads were fixed (--set num_heads=8, a preset) is ablated with those heads."""
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(0.3, {"dropout": 0.1}, fixed={"attention_position": "embedding", "num_heads": 8}))
    context = AblationSpace().prepare(None, source_study=study)
    assert context["num_heads"] == 8
    assert "num_heads" not in context["base_params"]


def test_prepare_refuses_without_a_source_study() -> None:
    with pytest.raises(StudyConfigError, match="needs --from-study NAME") as error:
        AblationSpace().prepare(None)
    assert error.value.source == "--from-study"


def test_prepare_refuses_a_source_without_a_complete_trial() -> None:
    study = optuna.create_study(study_name="empty-src", direction="maximize")
    study.add_trial(_trial(None, {"dropout": 0.1}, state=TrialState.FAIL))
    with pytest.raises(StudyConfigError, match="study 'empty-src' has no complete trial") as error:
        AblationSpace().prepare(None, source_study=study)
    assert error.value.source == "--from-study"


def test_parameters_follow_the_replicates() -> None:
    (position, replicate) = AblationSpace().parameters({"replicates": 5})
    assert (position.name, position.choices) == ("attention_position", ATTENTION_POSITIONS)
    assert (replicate.name, replicate.kind, replicate.low, replicate.high) == ("replicate", "int", 0, 4)
    assert AblationSpace().parameters({})[1].high == DEFAULT_REPLICATES - 1


def test_enqueue_every_position_for_every_replicate(context: dict[str, Any]) -> None:
    study = optuna.create_study(direction="maximize")
    space = AblationSpace()
    assert space.enqueue(study, context) == space.n_trials(context) == len(ATTENTION_POSITIONS) * 2
    space.enqueue(study, context)  # a resumed study: nothing enqueued twice
    queued = [t.system_attrs["fixed_params"] for t in study.trials]
    assert len(queued) == 12
    assert sorted((q["replicate"], q["attention_position"]) for q in queued) == sorted(
        (r, p) for r in range(2) for p in ATTENTION_POSITIONS)


@pytest.mark.parametrize("position", ATTENTION_POSITIONS)
def test_suggest_is_the_base_with_the_position(position: str, context: dict[str, Any], suggest: Suggest) -> None:
    params, searched = suggest(AblationSpace(), context, enqueue={"attention_position": position, "replicate": 1})
    assert searched == {"attention_position": position, "replicate": 1}
    heads = {"num_heads": 2} if position in HEADED_POSITIONS else {}
    assert params == context["base_params"] | {"attention_position": position} | heads  # no "replicate"
    resolve_params(params)


def test_user_fixed_values_win_over_the_base(context: dict[str, Any], suggest: Suggest) -> None:
    params, _ = suggest(AblationSpace(), context | {"fixed": {"dropout": 0.0}},
                        enqueue={"attention_position": "none", "replicate": 0})
    assert params["dropout"] == 0.0 and params["batch_size"] == 64


def test_the_whole_design_runs_paired(context: dict[str, Any]) -> None:
    """Run the enqueued design: each (position, replicate) once, one seed per replicate shared by its positions."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    space = get_space("ablation")
    space.enqueue(study, context)
    runs: list[tuple[str, int, int]] = []

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial, context)
        runs.append((params["attention_position"], trial.params["replicate"], space.trial_seed(trial, 42)))
        return 0.0

    study.optimize(objective, n_trials=space.n_trials(context))
    assert sorted((p, r) for p, r, _ in runs) == sorted((p, r) for r in range(2) for p in ATTENTION_POSITIONS)
    seeds = {r: {s for _, rep, s in runs if rep == r} for r in range(2)}
    assert seeds == {0: {42}, 1: {1042}}
