"""Fail trials whose worker died (stale heartbeat) and re-queue them, before workers start."""
from __future__ import annotations

import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from search.errors import StudyConfigError

__all__ = ["fail_stale_trials"]


def fail_stale_trials(storage: BaseStorage, study_name: str) -> list[int]:
    """Run :func:`optuna.storages.fail_stale_trials` on ``study_name``; return the trial numbers it failed.

    Optuna's function takes a study and returns nothing, so the numbers are those of the trials that
    were RUNNING before the call and are FAIL after it (a trial that failed by itself during this short
    call would also be listed). Each failed trial is re-queued by the storage's heartbeat callback
    (see :func:`storage.create_storage`). A storage without heartbeats returns ``[]``.
    """
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise StudyConfigError(
            f"no study named '{study_name}' in this storage", source="study", field="study_name"
        ) from None
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return sorted(t.number for t in failed if t.number in running)
