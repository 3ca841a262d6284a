"""The optimisation loop of a worker process, and of the in-process keras-tuner runner (keras-free).

``study.optimize`` until the study has its target of finished trials, with what a long-running worker
needs around it: stop conditions (trials that keep failing, a stop request, the launcher gone), recovery from
storage errors (the interrupted trial failed and re-queued, the loop resumed after a pause), and, before
starting, the RUNNING trials of dead workers on this machine failed and re-queued.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from search._orphans import fail_orphans
from search._worker._signals import StopRequest, interrupts_held
from search._worker._storage import describe_storage_error, error_in_chain, own_running_trial_ids, storage_error_in
from search.errors import SearchError, TrialFailure
from search.record import INTERRUPTED_REASON, TrialRecord
from storage import fail_and_retry, has_retry, requeue

__all__ = ["run_trials", "run_objective", "RecordingObjective", "TrialsKeepFailing", "MAX_SAME_FAILURES",
           "MAX_FAILURES_FACTOR", "MAX_STORAGE_ERRORS", "STORAGE_RETRY_SECONDS"]

#: A worker stops once this many of its trials in a row failed for the same reason: the next one would
#: fail the same way (a parameter the factory refuses, a broken build(hp), a dataset that cannot train).
MAX_SAME_FAILURES = 5
MAX_FAILURES_FACTOR = 2  # ... or once the study's failed trials exceed this many times the target (at least 10)
MAX_STORAGE_ERRORS = 5  # storage errors in a row (no trial finished between them) before the worker gives up
STORAGE_RETRY_SECONDS = 2.0  # first wait after a storage error; doubled each time
MAX_STORAGE_RETRY_SECONDS = 30.0
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_STORAGE_ERROR_PREFIX = "storage error during the trial ("
_STORAGE_ERROR_REASON = _STORAGE_ERROR_PREFIX + "{}); retried"


def _log(message: str) -> None:
    print(message, flush=True)


class RecordingObjective(Protocol):
    """An objective that knows the worker record of its process (:class:`search.objective.Objective`)."""

    environment: dict[str, Any]

    def __call__(self, trial: optuna.Trial) -> float: ...


class TrialsKeepFailing(SearchError):
    """The loop stopped because its trials keep failing (see :data:`MAX_SAME_FAILURES`); ``reason`` says why.

    Not bad input (exit status 2) but a run that cannot make progress: the worker exits 1, and its
    launcher does not restart it.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Stopper:
    """``study.optimize`` callback: trials that keep failing, a stop request, or the launcher that started us
    is gone."""

    def __init__(self, target: int | None, stop: StopRequest | None, parent_pid: int | None,
                 log: Callable[[str], None]) -> None:
        self.target, self.stop, self.parent_pid, self.log = target, stop, parent_pid, log
        self.reason: str | None = None
        self.failing: TrialsKeepFailing | None = None  # set when the stop is for failures
        self.finished = 0  # trials this process finished (any state)
        self.streak: tuple[str, int] | None = None  # (reason, count) of this process's latest failures in a row

    def _failure(self, study: optuna.Study, trial: FrozenTrial) -> TrialsKeepFailing | None:
        if trial.state != TrialState.FAIL:
            self.streak = None
            return None
        reason = TrialRecord.from_trial(trial).failure_reason or "no failure reason recorded"
        count = self.streak[1] + 1 if self.streak is not None and self.streak[0] == reason else 1
        self.streak = (reason, count)
        if count >= MAX_SAME_FAILURES:
            return TrialsKeepFailing(f"{count} trials in a row failed with the same reason: {reason}", reason)
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if failed > MAX_FAILURES_FACTOR * max(self.target or 10, 10):
            return TrialsKeepFailing(f"{failed} failed trials in the study (last: {reason})", reason)
        return None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.finished += 1
        failing = self._failure(study, trial)
        if self.stop is not None and self.stop.requested:
            self.reason = "asked to stop (SIGINT/SIGTERM)"
        elif failing is not None:
            self.failing = failing
            self.reason = str(failing)
        elif self.parent_pid is not None and os.getppid() != self.parent_pid:
            self.reason = "the launcher that started this worker is gone"
        if self.reason:
            self.log(f"stopping: {self.reason}")
            study.stop()


def run_trials(study: optuna.Study, objective: Callable[[optuna.Trial], float], *, target: int | None,
               timeout: float | None = None, catch: tuple[type[Exception], ...] = (),
               log: Callable[[str], None] = _log, gc_after_trial: bool = False, parent_pid: int | None = None,
               stop: StopRequest | None = None, callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = ()
               ) -> int:
    """Run ``objective`` on ``study`` until it has ``target`` complete or pruned trials.

    ``target`` None: until ``timeout`` or a stop. Before starting, fails and re-queues the RUNNING trials
    of dead workers of this machine (see :mod:`search._orphans`). A storage error (the database restarted,
    a connection was dropped mid-query) does not end the loop: its interrupted trial is failed with the
    reason and re-queued, and the loop resumes after a pause, up to :data:`MAX_STORAGE_ERRORS` in a row.
    ``stop``: a :class:`StopRequest` whose request ends the loop after the current trial; ``parent_pid``:
    the loop ends after the current trial once this process's parent is another. ``callbacks`` are
    passed on to ``study.optimize``. Returns the number of trials this call finished; raises
    :class:`TrialsKeepFailing` when it stopped because :data:`MAX_SAME_FAILURES` trials in a row failed
    for the same reason (or the study's failures exceed :data:`MAX_FAILURES_FACTOR` times the target).
    """
    stopper = _Stopper(target, stop, parent_pid, log)
    all_callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [*callbacks, stopper]
    if target is not None:
        all_callbacks.insert(0, MaxTrialsCallback(target, states=_FINISHED))
    reaped = fail_orphans(study, "its worker process died; retried")
    if reaped:
        log(f"failed and re-queued trials {reaped} of dead workers on this machine")
    deadline = None if timeout is None else time.monotonic() + timeout
    errors, finished_at_error = 0, 0
    interrupted: str | None = None  # the reason of a storage error whose trial is not yet failed and re-queued
    cut_off: set[int] = set()  # ids of the trials it interrupted, kept until they are failed and re-queued

    def guarded(trial: optuna.Trial) -> float:
        try:
            return objective(trial)
        except Exception as exc:
            cause = None if isinstance(exc, catch) else storage_error_in(exc)
            if cause is not None:
                # Optuna fails the trial itself before re-raising: it is no longer RUNNING when the
                # loop recovers, so it is named here to be re-queued then.
                cut_off.add(trial._trial_id)
                _try_to_record(trial, _STORAGE_ERROR_REASON.format(describe_storage_error(cause)))
            raise

    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        try:
            if interrupted is not None:
                lost = _fail_interrupted(study, _STORAGE_ERROR_REASON.format(interrupted), cut_off)
                interrupted = None
                if lost:
                    log(f"failed and re-queued trials {lost} interrupted by the storage error")
            if remaining is not None and remaining <= 0:
                return stopper.finished
            if target is not None and len(study.get_trials(deepcopy=False, states=_FINISHED)) >= target:
                return stopper.finished
            study.optimize(guarded, timeout=remaining, catch=catch, callbacks=all_callbacks,
                           gc_after_trial=gc_after_trial)
            if stopper.failing is not None:
                raise stopper.failing
            return stopper.finished
        except KeyboardInterrupt:
            _fail_stopped(study, log)
            raise
        except Exception as exc:
            if error_in_chain(exc, UpdateFinishedTrialError) is not None or _told_a_finished_trial(exc):
                # Another worker failed this trial as stale (its heartbeat came late, e.g. on a loaded
                # machine) and re-queued it; Optuna then cannot record our result. The trial is accounted
                # for: go on with the next one.
                log("a trial was finished by another worker before this one could record it; going on")
                continue
            cause = storage_error_in(exc)
            if cause is None:
                raise
            errors = errors + 1 if stopper.finished == finished_at_error else 1
            finished_at_error = stopper.finished
            if errors > MAX_STORAGE_ERRORS:
                raise
            interrupted = interrupted or describe_storage_error(cause)
            wait = min(STORAGE_RETRY_SECONDS * 2 ** (errors - 1), MAX_STORAGE_RETRY_SECONDS)
            log(f"storage error ({describe_storage_error(cause)}); retrying in {wait:.0f} s "
                f"({errors}/{MAX_STORAGE_ERRORS})")
            time.sleep(wait)


def _told_a_finished_trial(exc: BaseException) -> bool:
    """Optuna's other form of the same race: the trial was failed as stale by another worker between our
    objective's return and its ``tell`` ("Cannot tell a FAIL trial."), which ``optimize`` re-raises as an
    internal assertion."""
    cause = error_in_chain(exc, ValueError)
    return cause is not None and str(cause).startswith("Cannot tell a ")


def run_objective(study: optuna.Study, objective: RecordingObjective, *, target: int, timeout: float | None = None,
                  log: Callable[[str], None] = _log, stop: StopRequest | None = None, parent_pid: int | None = None,
                  callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> int:
    """:func:`run_trials` with the service's objective: a failed trial (:class:`TrialFailure`) does not end
    the loop, memory is collected after each trial, and every trial records its worker before anything
    else, so a worker that dies while the sampler works still leaves a trial the launcher can attribute.
    Returns the number of trials this call finished (0 when the study already has ``target``)."""
    finished = len(study.get_trials(deepcopy=False, states=_FINISHED))
    if finished >= target:
        log(f"study '{study.study_name}' already has {finished} finished trials (target {target})")
        return 0

    def recorded(trial: optuna.Trial) -> float:
        try:
            # Held: a stop request that lands while a slow store writes the worker (SQLite under load)
            # would leave a failed trial that names no worker; deferred, it takes effect once written.
            with interrupts_held():
                TrialRecord(worker=objective.environment).write(trial)
            return objective(trial)
        except KeyboardInterrupt:  # the objective records this reason itself once it has sampled
            with interrupts_held():
                if TrialRecord.from_trial(trial).failure_reason is None:
                    TrialRecord(failure_reason=INTERRUPTED_REASON).write(trial)
            raise

    return run_trials(study, recorded, target=target, timeout=timeout, catch=(TrialFailure,), log=log,
                      gc_after_trial=True, parent_pid=parent_pid, stop=stop, callbacks=callbacks)


def _fail_stopped(study: optuna.Study, log: Callable[[str], None]) -> None:
    """Fail with the stop reason the trials a stop request left RUNNING in this process.

    Optuna fails the trial whose objective the interrupt reached. One that lands inside ``study.ask()``
    (the sampler's work, after the trial was set RUNNING and before the objective recorded its worker)
    leaves that trial RUNNING with no worker record, which neither the launcher nor a later worker can
    attribute to a stopped process; so does a later interrupt that cuts off Optuna's own write of the
    failure. The storage remembers which trials this process set RUNNING.
    """
    with interrupts_held():  # the stop request's next interrupt must not cut these writes off
        try:
            for trial_id in own_running_trial_ids(study):
                trial = study._storage.get_trial(trial_id)
                if trial.state == TrialState.RUNNING and fail_and_retry(study, trial, INTERRUPTED_REASON,
                                                                         retry=False):
                    log(f"failed trial {trial.number}, which the stop left running")
        except Exception as exc:  # the stop goes on: a store that fails now leaves it to heartbeats
            if storage_error_in(exc) is None and error_in_chain(exc, UpdateFinishedTrialError) is None:
                raise
            log(f"could not fail the stopped trials ({describe_storage_error(exc)})")


def _try_to_record(trial: optuna.Trial, reason: str) -> None:
    """Record ``reason`` on ``trial`` if the storage answers (it just failed once)."""
    try:
        TrialRecord(failure_reason=reason).write(trial)
    except Exception as exc:
        if storage_error_in(exc) is None and error_in_chain(exc, UpdateFinishedTrialError) is None:
            raise


def _fail_interrupted(study: optuna.Study, reason: str, cut_off: set[int]) -> list[int]:
    """Fail with ``reason`` and re-queue the trials a storage error interrupted: ``cut_off`` (those the
    objective saw fail, those the storage remembers this process set RUNNING, kept from one attempt to
    the next), and those recorded under this process's pid (for storages that do not remember).

    Safe to run again after another storage error cut it short: a trial already failed with a storage
    error reason (or by Optuna, with none, when the error came out of the objective) is then only
    re-queued, and only where it has no retry yet, so the retry is neither lost (the error came between
    the two writes) nor made twice. ``cut_off`` is emptied once all are done.
    """
    cut_off.update(own_running_trial_ids(study))
    failed = []
    for trial_id in sorted(cut_off):
        trial = study._storage.get_trial(trial_id)
        recorded = TrialRecord.from_trial(trial).failure_reason
        if trial.state == TrialState.RUNNING:
            if fail_and_retry(study, trial, reason):
                failed.append(trial.number)
        elif (trial.state == TrialState.FAIL and (recorded is None or recorded.startswith(_STORAGE_ERROR_PREFIX))
              and not has_retry(study, trial)):
            requeue(study, trial)
            failed.append(trial.number)
    failed += fail_orphans(study, reason)
    cut_off.clear()
    return sorted(set(failed))
