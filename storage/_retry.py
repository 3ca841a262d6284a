"""Re-queueing a failed trial: Optuna's retry callback, with the copy starting afresh."""
from __future__ import annotations

import copy
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from search.record import retry_user_attrs

__all__ = ["FreshRetryCallback", "has_retry"]


class FreshRetryCallback(RetryHeartbeatStaleTrialCallback):
    """:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` whose WAITING copy keeps the failed
    trial's params, distributions, definition (seed, fixed parameters) and retry history, but not what
    its run recorded (see :func:`search.record.retry_user_attrs`).

    Optuna's callback copies every user attribute, the dead worker's record included; a worker starting
    on the same machine then took the copy, once another worker had set it RUNNING and before that
    worker wrote its own record, for an orphan of the dead process, and failed and retried it again.
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fresh = copy.copy(trial)
        fresh.user_attrs = retry_user_attrs(trial.user_attrs)
        super().__call__(study, fresh)


def has_retry(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether some trial of ``study`` is a retry of ``trial`` (``trial`` is in its retry history)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return any(trial.number in RetryHeartbeatStaleTrialCallback.retry_history(t)
                   for t in study.get_trials(deepcopy=False))
