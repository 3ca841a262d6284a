from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from search.errors import StudyConfigError
from storage import create_storage, fail_stale_trials

# Optuna marks the retry helpers (and heartbeats) experimental; they are what this project relies on.
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

HUNG_WORKER = """
import sys, time
import optuna
from storage import create_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = create_storage(sys.argv[1], heartbeat_interval=1, grace_period=2)
study = optuna.load_study(study_name=sys.argv[2], storage=storage)

def objective(trial):
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("seed", 7)
    trial.set_user_attr("worker", {"host": "here", "pid": 12345})
    trial.set_user_attr("epochs", [{"val_micro_f1": 0.25}])
    trial.report(0.25, 0)
    print("running", flush=True)
    time.sleep(600)

study.optimize(objective, n_trials=1)
"""


def _leave_running_trial(url: str, study_name: str, env: dict[str, str]) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", HUNG_WORKER, url, study_name], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "running"
    finally:
        worker.kill()  # SIGKILL: no clean-up, the trial stays RUNNING
        worker.wait(timeout=30)


def _wait_for_stale(storage: optuna.storages.BaseStorage, study_name: str, timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failed = fail_stale_trials(storage, study_name)
        if failed:
            return failed
        time.sleep(0.5)
    raise AssertionError("the killed worker's trial never became stale")


def test_stale_trial_of_killed_worker_is_failed_and_retried(tmp_path: Path, child_env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = create_storage(url, heartbeat_interval=1, grace_period=2)
    optuna.create_study(study_name="hb", storage=storage)
    _leave_running_trial(url, "hb", child_env)

    study = optuna.load_study(study_name="hb", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    assert fail_stale_trials(storage, "hb") == []  # still within the grace period

    assert _wait_for_stale(storage, "hb") == [0]
    original, retry = study.get_trials(deepcopy=False)
    assert original.state == TrialState.FAIL
    assert retry.state == TrialState.WAITING
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.params == original.params
    # It is the same trial, not the same run: the seed stays, the dead worker and its epochs do not (a
    # worker starting on this machine would otherwise take the retry, once running, for the dead pid's).
    assert retry.user_attrs == {"seed": 7}

    # The next worker picks up the re-queued trial with the same parameters.
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=1)
    finished = study.trials[1]
    assert finished.state == TrialState.COMPLETE
    assert finished.params == original.params
    assert RetryHeartbeatStaleTrialCallback.retry_history(finished) == [0]
    storage.engine.dispose()


@pytest.mark.postgres
def test_stale_trial_on_postgres_is_retried_by_optimize(
    postgres_url: str, pg_study_name: str, child_env: dict[str, str]
) -> None:
    storage = create_storage(postgres_url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name=pg_study_name, storage=storage)
    _leave_running_trial(postgres_url, pg_study_name, child_env)
    time.sleep(3.5)
    # study.optimize fails stale trials itself before asking for a new one.
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=1)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].system_attrs["failed_trial"] == 0
    storage.engine.dispose()


def test_no_running_trials_and_heartbeats_off(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 'studies.db'}", heartbeat_interval=None)
    optuna.create_study(study_name="quiet", storage=storage)
    assert fail_stale_trials(storage, "quiet") == []
    storage.engine.dispose()


def test_unknown_study(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    with pytest.raises(StudyConfigError, match="no study named 'missing'"):
        fail_stale_trials(storage, "missing")
    storage.engine.dispose()
