"""Fail trials whose worker died and re-queue them: by stale heartbeat, or because the worker is known gone."""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from search.errors import StudyConfigError
from search.record import FAILURE_REASON
from storage._engine import DEFAULT_MAX_RETRY
from storage._retry import FreshRetryCallback

__all__ = ["fail_stale_trials", "fail_and_retry", "requeue", "DEFAULT_MAX_RETRY"]


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


def fail_and_retry(study: optuna.Study, trial: FrozenTrial, reason: str, *, retry: bool = True) -> bool:
    """Fail a RUNNING ``trial`` whose worker is known to be gone, with ``reason``; re-queue it if ``retry``.

    For what heartbeats cannot see in time or at all: a worker the launcher saw crash, a worker that
    lost its trial to a storage error, and every trial run through a gRPC storage proxy (heartbeats do
    not pass through it). The reason is recorded as the trial's
    :attr:`~search.record.TrialRecord.failure_reason` before the trial is failed (a finished trial's
    attributes cannot change). The re-queueing is :func:`requeue`, so retries look exactly like
    heartbeat retries (system attributes ``failed_trial`` and ``retry_history``); the copy does not
    inherit the failure reason or the dead worker's record.

    Returns False, changing nothing, when the trial had already finished (another process was first).
    """
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, FAILURE_REASON, reason)
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    if retry:
        requeue(study, storage.get_trial(trial._trial_id))
    return True


def requeue(study: optuna.Study, failed: FrozenTrial) -> None:
    """Enqueue a WAITING retry of the FAIL trial ``failed`` with the storage's heartbeat callback (else
    a :class:`~storage._retry.FreshRetryCallback` with ``max_retry=DEFAULT_MAX_RETRY``); nothing once
    it has been retried that many times."""
    _retry_callback(study._storage)(study, copy.deepcopy(failed))


def _retry_callback(storage: BaseStorage) -> Callable[[optuna.Study, FrozenTrial], Any]:
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None)
    callback = getter() if getter is not None else None
    if callback is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            callback = FreshRetryCallback(max_retry=DEFAULT_MAX_RETRY)
    return callback
