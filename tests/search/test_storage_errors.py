"""A worker loop that meets storage errors: the interrupted trial is failed and re-queued exactly once.

In-process, on a real SQLite store; the errors are SQLAlchemy's OperationalError (what a dropped
PostgreSQL connection raises), injected at the point named by each case.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

import storage._stale
from search._worker import _loop
from search.record import TrialRecord
from storage import create_storage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _dropped() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("server closed the connection"))


class _FailsOnce:
    """Wraps a function: the first call that ``when(*args)`` accepts raises a dropped connection."""

    def __init__(self, function: Any, when: Any = lambda *args, **kwargs: True) -> None:
        self.function, self.when, self.raised = function, when, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.raised and self.when(*args, **kwargs):
            self.raised = True
            raise _dropped()
        return self.function(*args, **kwargs)


@pytest.mark.parametrize("where", ["objective", "tell"])
def test_an_interrupted_trial_is_retried_once_even_when_the_retry_itself_is_cut_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    monkeypatch.setattr(_loop, "STORAGE_RETRY_SECONDS", 0.0)
    study = optuna.create_study(study_name="errors", storage=create_storage(
        f"sqlite:///{tmp_path / 'studies.db'}", heartbeat_interval=None))
    if where == "tell":  # the result cannot be told: the trial stays RUNNING, the loop fails it
        monkeypatch.setattr(study._storage, "set_trial_state_values", _FailsOnce(
            study._storage.set_trial_state_values, lambda trial_id, state, values=None: state.is_finished()))
    # ... and the connection drops again between failing the trial and re-queueing it
    monkeypatch.setattr(_loop, "requeue", _FailsOnce(_loop.requeue))
    monkeypatch.setattr(storage._stale, "requeue", _FailsOnce(storage._stale.requeue))
    logged: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 0 and where == "objective":
            raise _dropped()
        return x

    _loop.run_trials(study, objective, target=3, log=logged.append)
    first, *rest = study.trials
    assert first.state == TrialState.FAIL
    reason = TrialRecord.from_trial(first).failure_reason or ""
    assert reason.startswith("storage error during the trial (OperationalError: ") and reason.endswith("; retried")
    assert "server closed the connection" in reason
    retries = [t for t in rest if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 0]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == first.params
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 3
    # The trial's error, then the re-queue's; where the loop had to fail the trial itself, also the error
    # between its failing and its re-queueing.
    assert sum(line.startswith("storage error (") for line in logged) == (2 if where == "objective" else 3)
    assert logged[-1] == "failed and re-queued trials [0] interrupted by the storage error"
