"""A worker asked to stop: a KeyboardInterrupt that Python swallows in a ``__del__`` is not printed as a
traceback (the watchdog interrupts again), while other errors raised there still are; a stop request never
cuts off what a trial records about itself."""
from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

SCRIPT = """
from search._worker._signals import StopRequest

class Raises:
    def __init__(self, exc):
        self.exc = exc
    def __del__(self):
        raise self.exc

StopRequest().install()
obj = Raises(KeyboardInterrupt())
del obj
obj = Raises(ValueError("a real problem"))
del obj
print("still running")
"""


# The watchdog a stop request starts (a daemon thread) would interrupt the test process again after this
# long: longer than any suite run, so it never cuts off a later test in the same pytest worker.
NEVER = 7 * 24 * 3600.0


def test_an_interrupt_swallowed_in_a_finaliser_prints_nothing_other_errors_still_do() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "still running"
    assert "KeyboardInterrupt" not in result.stderr
    assert "ValueError: a real problem" in result.stderr and result.stderr.count("Traceback") == 1


def test_a_stop_request_inside_a_held_block_takes_effect_when_it_ends() -> None:
    """The watchdog's next interrupt must not cut off the write of why a trial stopped."""
    import signal

    import pytest

    from search._worker._signals import StopRequest, interrupts_held

    stop = StopRequest(reinterrupt_seconds=NEVER)
    before = signal.getsignal(signal.SIGINT)
    try:
        stop.install()
        written = []
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                signal.raise_signal(signal.SIGINT)  # handled here, in the main thread: deferred
                written.append("reason")
        assert written == ["reason"] and stop.requested
        with pytest.raises(KeyboardInterrupt):  # outside a held block: at once, as before
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _StoppedFirst:
    """The loop's contract with the service's objective (its worker record, then a value), never reached."""

    environment = {"host": "here", "pid": 1}

    def __call__(self, trial: optuna.Trial) -> float:
        raise AssertionError("the stop request comes first")


def _stopped_run(study: optuna.Study) -> None:
    """Run the worker's loop on ``study`` with the stop request installed; the stop must end it."""
    from search._worker._loop import run_objective
    from search._worker._signals import StopRequest

    before = signal.getsignal(signal.SIGINT)
    try:
        StopRequest(reinterrupt_seconds=NEVER).install()
        with pytest.raises(KeyboardInterrupt):
            run_objective(study, _StoppedFirst(), target=1, log=lambda _: None)  # type: ignore[arg-type]
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _InterruptedWhileWritingTheWorker(optuna.storages.InMemoryStorage):
    """A store on which a stop request (SIGINT, handled in this thread) arrives while the worker is written."""

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if key == "worker":
            signal.raise_signal(signal.SIGINT)
        super().set_trial_user_attr(trial_id, key, value)


def test_a_stop_request_while_the_worker_is_written_leaves_a_trial_that_names_its_worker() -> None:
    """A trial failed by a stop request says both why it stopped and which worker ran it."""
    from search.record import INTERRUPTED_REASON

    study = optuna.create_study(storage=_InterruptedWhileWritingTheWorker())
    _stopped_run(study)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["worker"] == _StoppedFirst.environment
    assert trial.user_attrs["failure_reason"] == INTERRUPTED_REASON


class _InterruptedWhileSampling(optuna.samplers.RandomSampler):
    """A sampler during whose work (inside ``study.ask()``, the trial already RUNNING) a stop request arrives."""

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        signal.raise_signal(signal.SIGINT)


def test_a_stop_request_inside_ask_fails_the_trial_it_left_running(tmp_path: Any) -> None:
    """Before the objective has recorded its worker, nobody else could attribute the trial to a stopped
    process: the worker fails it itself, with the stop's reason, on its way out."""
    from search.record import INTERRUPTED_REASON
    from storage import create_storage

    storage = create_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = optuna.create_study(study_name="stopped", storage=storage, sampler=_InterruptedWhileSampling(seed=0))
    study.enqueue_trial({"x": 1.0})  # popped from the queue, as the strong start's trials are
    _stopped_run(study)
    (trial,) = optuna.load_study(study_name="stopped", storage=storage).get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["failure_reason"] == INTERRUPTED_REASON
