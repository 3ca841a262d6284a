"""Failing a trial whose worker is gone, and finding such trials by the worker each trial records."""
from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from search._orphans import fail_orphans, orphaned_trials
from search.record import TrialRecord
from search.runtime import process_identity
from storage import create_storage, fail_and_retry, has_retry, requeue


def _study(tmp_path: Path) -> optuna.Study:
    storage = create_storage(f"sqlite:///{tmp_path / 'studies.db'}", heartbeat_interval=None)
    return optuna.create_study(study_name="stale", storage=storage)


def test_fail_and_retry_records_the_reason_and_requeues_without_it(tmp_path: Path) -> None:
    study = _study(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    TrialRecord(seed=7, worker={"host": "here", "pid": 12345}, threshold=0.3).write(trial)
    assert fail_and_retry(study, study.trials[0], "its worker died")
    failed, retry = study.trials
    assert failed.state == TrialState.FAIL and TrialRecord.from_trial(failed).failure_reason == "its worker died"
    assert retry.state == TrialState.WAITING and retry.params == failed.params
    assert retry.user_attrs == {"seed": 7}  # the copy does not inherit the reason, the worker, the run
    assert not fail_and_retry(study, failed, "again")  # already finished: nothing changes


def test_orphans_are_found_by_the_recorded_worker(tmp_path: Path) -> None:
    study = _study(tmp_path)
    me = process_identity()
    gone, alive, elsewhere = (study.ask() for _ in range(3))
    TrialRecord(worker=me | {"pid": 2**22 + 17}).write(gone)  # above pid_max's default: no such process
    TrialRecord(worker=me | {"pid": 1}).write(alive)
    TrialRecord(worker=me | {"host": me["host"] + "-other", "pid": 2**22 + 17}).write(elsewhere)
    study.ask()  # records no worker: never an orphan
    assert [t.number for t in orphaned_trials(study)] == [gone.number]
    assert [t.number for t in orphaned_trials(study, pids={1})] == [alive.number]
    assert fail_orphans(study, "its worker is gone", retry=False) == [gone.number]
    assert TrialRecord.from_trial(study.trials[gone.number]).failure_reason == "its worker is gone"


def test_requeue_is_what_fail_and_retry_does_after_the_failure(tmp_path: Path) -> None:
    """A worker whose storage error came between failing its trial and re-queueing it re-queues it later;
    :func:`storage.has_retry` says whether that is still to do."""
    study = _study(tmp_path)
    study.ask()
    assert fail_and_retry(study, study.trials[0], "its worker died", retry=False)
    failed = study.trials[0]
    assert not has_retry(study, failed)
    requeue(study, failed)
    assert has_retry(study, failed) and study.trials[1].state == TrialState.WAITING
