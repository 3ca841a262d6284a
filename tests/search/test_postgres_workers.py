"""Several workers on a REAL PostgreSQL server: many trials, a killed worker, dropped connections.

The workers are separate processes running the real worker loop and storage (search.worker.run_trials,
open_storage) with a cheap objective (see tests/workerhelpers.py). Without a reachable server these
tests skip, except with CI=true, where they fail.
"""
from __future__ import annotations

import signal
import time
import uuid

import optuna
import pytest
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from search.worker import open_storage
from storage import DEFAULT_MAX_RETRY
from workerhelpers import (assert_consistent, finish, start_cheap_worker, wait_for_line, wait_until, with_query)

pytestmark = [pytest.mark.postgres, pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]


def _create(url: str, name: str) -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))


def test_killed_worker_trial_is_failed_by_heartbeat_and_retried(postgres_url: str, pg_study_name: str) -> None:
    study = _create(postgres_url, pg_study_name)
    victim = start_cheap_worker(postgres_url, pg_study_name, target=45, mode="hang")
    number = int(wait_for_line(victim, "running").split()[1])
    victim.send_signal(signal.SIGKILL)  # kill -9: no clean-up, its trial stays RUNNING, heartbeats stop
    victim.wait(timeout=30)
    assert study.trials[number].state == TrialState.RUNNING
    # The healthy workers' grace period is long (8 s), so that on a loaded machine a heartbeat of theirs
    # that is late by a few seconds does not get one of their own trials failed as stale. They start
    # once the dead trial's last heartbeat is older than that, and each new trial starts with Optuna's
    # fail_stale_trials, so the first of them fails the dead trial and re-runs it.
    grace = 8
    time.sleep(grace + 1)
    results = finish([start_cheap_worker(postgres_url, pg_study_name, target=45, pause=0.3, HB_GRACE=str(grace))
                      for _ in range(3)])
    killed = study.trials[number]
    assert killed.state == TrialState.FAIL
    retries = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == killed.params
    assert retries[0].user_attrs["worker"]["pid"] in {r.pid for r in results}
    # The killed trial never completed, so the healthy workers' reports are the whole story.
    assert_consistent(study, results, target=45)


def test_connections_dropped_mid_study_and_the_study_finishes(postgres_url: str, pg_study_name: str) -> None:
    app = f"search-test-{uuid.uuid4().hex[:8]}"
    url = with_query(postgres_url, application_name=app)
    study = _create(postgres_url, pg_study_name)
    workers = [start_cheap_worker(url, pg_study_name, target=80, pause=0.05) for _ in range(2)]
    admin = sqlalchemy.create_engine(postgres_url)
    terminated = 0

    def progress(since: int) -> bool:
        running = all(w.poll() is None for w in workers)
        return running and len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= since

    try:
        for n in range(3):  # three rounds, mid-study: idle pooled connections and ones in the middle of a query
            wait_until(lambda: progress(10 * (n + 1)), 120, f"{10 * (n + 1)} complete trials")
            with admin.connect() as connection:
                terminated += sum(connection.execute(sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :app"),
                    {"app": app}).scalars())
            time.sleep(0.7)
    finally:
        admin.dispose()
    results = finish(workers)  # both exit 0: a storage error pauses a worker, it does not end it
    assert terminated >= 3
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    complete = {t._trial_id for t in trials if t.state == TrialState.COMPLETE}
    assert len(complete) >= 80
    reported = [tid for r in results for tid in r.completed]
    assert len(reported) == len(set(reported)) and set(reported) <= complete
    # A trial cut off by a dropped connection is failed with the reason and retried exactly once (a retry
    # that is cut off again is retried in turn, up to the storage's max_retry).
    history = RetryHeartbeatStaleTrialCallback.retry_history
    for trial in trials:
        if "storage error" in trial.user_attrs.get("failure_reason", ""):
            assert trial.state == TrialState.FAIL
            direct = [t.number for t in trials if history(t) and history(t)[-1] == trial.number]
            assert len(direct) == (1 if len(history(trial)) < DEFAULT_MAX_RETRY else 0), (trial.number, direct)
