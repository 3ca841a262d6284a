"""Opening the studies the report reads, and the refusals that come before anything heavy (keras-free)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._study import recorded_config, require_study, study_exists
from search.config import RunConfig
from search.errors import StudyConfigError

__all__ = ["DEFAULT_ABLATION_STUDY", "Sources", "open_sources", "complete_trials", "trial_value"]

DEFAULT_ABLATION_STUDY = "ablation"


@dataclass
class Sources:
    url: str
    storage: Any
    study: optuna.Study
    config: RunConfig
    ablation: optuna.Study | None
    ablation_config: RunConfig | None
    notes: list[str]


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]


def trial_value(trial: FrozenTrial) -> float:
    """The objective value of a trial :func:`complete_trials` returned (each has one)."""
    value = trial.value
    if value is None:
        raise ValueError(f"trial {trial.number} has no objective value; only complete trials are scored")
    return value


def _load(storage: Any, name: str, source: str) -> tuple[optuna.Study, RunConfig]:
    where = f"{source} '{name}'"
    require_study(storage, name, source=where)
    study = optuna.load_study(study_name=name, storage=storage)
    return study, recorded_config(study, source=where)


def open_sources(study_name: str, storage_flag: str | None, ablation_name: str | None) -> Sources:
    """Resolve and open the storage, the study and its ablation study; refuse what cannot be reported.

    Refused (:class:`~search.errors.InputError`, nothing written): a SQLite file that does not exist (or is
    empty, or holds no studies), an unknown study, a study with no complete trial, an explicitly named
    ablation study that is unknown.
    """
    from storage import open_existing_storage, resolve_storage_url, storage_source

    url = resolve_storage_url(storage_flag)
    # a reader: a missing, empty or foreign SQLite file is refused, never created (or given a schema)
    storage = open_existing_storage(url, source=storage_source(storage_flag))  # the report runs no trials
    study, config = _load(storage, study_name, "--study")
    if not complete_trials(study):
        states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
        summary = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "no trials"
        raise StudyConfigError(f"has no complete trial ({summary}); expected at least one to report",
                               source=f"--study '{study_name}'")
    notes: list[str] = []
    ablation = ablation_config = None
    if ablation_name is not None:
        ablation, ablation_config = _load(storage, ablation_name, "--ablation-study")
    elif study_exists(storage, DEFAULT_ABLATION_STUDY):
        ablation, ablation_config = _load(storage, DEFAULT_ABLATION_STUDY, "ablation study")
    if ablation is not None and ablation_config is not None and ablation_config.space != "ablation":
        raise StudyConfigError(f"uses space '{ablation_config.space}', not 'ablation'; expected a study started "
                               "with python -m search.launch --study NAME --space ablation --from-study ...",
                               source=f"--ablation-study '{ablation.study_name}'")
    if ablation is not None and not complete_trials(ablation):
        if ablation_name is not None:
            raise StudyConfigError("has no complete trial; expected a finished ablation (or leave the option out)",
                                   source=f"--ablation-study '{ablation_name}'")
        notes.append(f"ablation study '{ablation.study_name}' has no complete trial; it is left out")
        ablation = ablation_config = None
    return Sources(url, storage, study, config, ablation, ablation_config, notes)
