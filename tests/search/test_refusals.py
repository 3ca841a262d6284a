"""Bad input costs nothing: one ``error:`` line naming the flag (or file) and field, exit status 2, no
traceback, and the folder of the store byte-for-byte as it was -- no SQLite file created, no artifact
folder, no schema written into an empty file.

One test per kind of refusal, each parametrised over the commands it touches:

* values checked before the store is touched (``--set`` through the model factory's own checks, the
  budgets and timeouts, ``--from-study`` where no space uses it, a keras-tuner ``build(hp)`` that fails);
* refusals that would have left a store behind (readers never create a store; a launch validates
  everything before it writes);
* messages: the right flag named, no TensorFlow start-up logging before the line, servers that cannot
  listen say so before saying where they listen.

Almost every refusal happens before keras is imported, so each case is a short subprocess; the stores
they must leave alone are made here without training (a study with one complete trial).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from clihelpers import assert_refused, run_cli, snapshot

TINY = ["--limit", "64", "--max-len", "16", "--vocab-size", "800", "--epochs", "1", "--no-progress"]
BROKEN_BUILD = '''
def build(hp):
    hp.Int("units", 1, 4)
    raise RuntimeError("no GPU today")
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``studies.db``: study ``attn`` (made as the launcher makes it: its three strong-start
    trials waiting in the queue) and one complete trial."""
    from search._study import prepare_study
    from search.config import RunConfig
    from spaces import get_space
    from storage import close_storage, create_storage

    folder = tmp_path_factory.mktemp("store")
    storage = create_storage(f"sqlite:///{folder / 'studies.db'}", heartbeat_interval=None)
    config = RunConfig(study="attn", space="attn", limit=64, max_len=16, vocab_size=800, epochs=1)
    study, _ = prepare_study(storage, config, get_space("attn"), "fingerprint", train_documents=64)
    study.add_trial(optuna.trial.create_trial(
        params={"dropout": 0.5}, distributions={"dropout": optuna.distributions.FloatDistribution(0.0, 0.9)},
        value=0.5))
    close_storage(storage)
    return folder


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of user code: a keras-tuner build(hp) that always raises."""
    folder = tmp_path_factory.mktemp("code")
    (folder / "broken.py").write_text(BROKEN_BUILD)
    return folder


@pytest.fixture()
def empty(tmp_path: Path) -> Path:
    """A folder with a 0-byte ``empty.db`` (a wrong path that exists) and nothing else."""
    (tmp_path / "empty.db").write_bytes(b"")
    return tmp_path


def _refused_leaving(folder: Path, argv: list[str], needles: list[str], timeout: float = 120) -> None:
    before = snapshot(folder)
    result = run_cli(*argv, cwd=folder, timeout=timeout)
    assert_refused(result, *needles)
    assert snapshot(folder) == before  # nothing created, changed or removed


# -- values checked before the store is touched ------------------------------------------------------

VALUES = {
    "set-range": (["search.launch", "--study", "new", "--space", "attn", "--set", "dropout=2"],
                  ["--set", "field 'dropout'", "got 2", "expected a number in [0, 1)"]),
    "set-type": (["search.launch", "--study", "new", "--space", "attn", "--set", "batch_size=abc"],
                 ["--set", "field 'batch_size'", "'abc'", "expected an integer"]),
    "set-unknown": (["search.launch", "--study", "new", "--space", "attn", "--set", "unknown_param=1"],
                    ["--set", "field 'unknown_param'", "unknown parameter"]),
    "set-choice": (["search.launch", "--study", "new", "--space", "baseline", "--set", "attention_position=nowhere"],
                   ["--set", "field 'attention_position'", "'nowhere'", "expected one of"]),
    "set-resume": (["search.launch", "--study", "attn", "--set", "rnn_layers=7"], ["--set", "field 'rnn_layers'"]),
    "memory-budget": (["search.launch", "--study", "new", "--space", "attn", "--memory-budget-gb", "-1"],
                      ["--memory-budget-gb", "got -1", "expected a positive number"]),
    "timeout": (["search.launch", "--study", "new", "--space", "attn", "--timeout", "-5"],
                ["--timeout", "got -5", "expected a positive number"]),
    "from-study-unused": (["search.launch", "--study", "new", "--space", "attn", "--from-study", "attn"],
                          ["--from-study", "space attn", "expected it only with the ablation space"]),
    "threads-per-worker": (["search.launch", "--study", "new", "--space", "attn", "--threads-per-worker", "0"],
                           ["--threads-per-worker", "got 0", "expected at least 1"]),
    "worker-timeout": (["search.worker", "--study", "attn", "--timeout", "-5"], ["--timeout", "got -5"]),
    "worker-threads": (["search.worker", "--study", "attn", "--threads", "0"], ["--threads", "got 0"]),
    "worker-cpus": (["search.worker", "--study", "attn", "--cpus", "0,999"],
                    ["--cpus", "got '0,999'", "expected comma-separated core ids among"]),
    "kerastuner-timeout": (["search.kerastuner", "--hypermodel", "x.py:build", "--study", "k", "--timeout", "-5"],
                           ["--timeout", "got -5"]),
}


@pytest.mark.parametrize("case", list(VALUES))
def test_values_are_checked_before_the_store_is_touched(store: Path, case: str) -> None:
    argv, needles = VALUES[case]
    launch = argv[0] == "search.launch"
    _refused_leaving(store, [*argv, *(TINY if launch else [])], needles)


@pytest.mark.parametrize("command", ["search.launch", "search.kerastuner"])
def test_a_build_that_raises_is_refused_up_front(store: Path, code: Path, command: str) -> None:
    """build(hp) runs once, in a child process, on keras-tuner's defaults: it would fail every trial."""
    argv = [command, "--hypermodel", f"{code / 'broken.py'}:build", "--study", "hm", *TINY]
    if command == "search.kerastuner":
        argv.remove("--no-progress")
    _refused_leaving(store, argv, ["--hypermodel", "build(hp) raised RuntimeError: no GPU today",
                                   "expected build(hp) to return a compiled keras.Model"], timeout=300)


def test_a_worker_whose_trials_fail_for_one_reason_stops_with_it() -> None:
    """N trials in a row failing for the same reason stop the loop with that reason (not 21 failures)."""
    from search._worker._loop import MAX_SAME_FAILURES, TrialsKeepFailing, run_trials
    from search.errors import TrialFailure
    from search.record import TrialRecord

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("x", 0, 9)
        TrialRecord(failure_reason="refused before training: dropout 2").write(trial)
        raise TrialFailure("refused before training: dropout 2")

    study = optuna.create_study(direction="maximize")
    with pytest.raises(TrialsKeepFailing) as info:
        run_trials(study, objective, target=50, catch=(TrialFailure,), log=lambda m: None)
    assert len(study.trials) == MAX_SAME_FAILURES
    assert info.value.reason == "refused before training: dropout 2"
    assert f"{MAX_SAME_FAILURES} trials in a row failed with the same reason" in str(info.value)


def test_a_success_or_another_reason_restarts_the_count() -> None:
    from search._worker._loop import MAX_SAME_FAILURES, run_trials
    from search.errors import TrialFailure
    from search.record import TrialRecord

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 10**6)
        if trial.number % (MAX_SAME_FAILURES - 1) == 0:
            return float(x)
        TrialRecord(failure_reason="the same reason").write(trial)
        raise TrialFailure("the same reason")

    study = optuna.create_study(direction="maximize")
    run_trials(study, objective, target=4, catch=(TrialFailure,), log=lambda m: None)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4


def test_the_launcher_does_not_restart_a_worker_that_gave_up() -> None:
    from clihelpers import exit_with_status
    from search.launch import Supervisor, _Child
    from search.worker import EXIT_GAVE_UP

    child = _Child(0, None, [str(EXIT_GAVE_UP)])
    code = Supervisor([child], max_restarts=3, entry=exit_with_status, poll_seconds=0.05).run()
    assert code == 1 and child.restarts == 0 and len(child.pids) == 1


# -- refusals that would leave a store behind ---------------------------------------------------------

NEW_FOLDER = {  # run in a folder with only a 0-byte empty.db: neither studies.db nor an artifact folder appears
    "launch-ablation": (["search.launch", "--study", "ablation", *TINY], ["--from-study", "needs --from-study"]),
    "launch-ablation-unknown": (["search.launch", "--study", "ablation", "--from-study", "nothing", *TINY],
                                ["--from-study", "'nothing'", "no such study"]),
    "launch-spec": (["search.launch", "--study", "h", "--hypermodel", "nocolon", *TINY],
                    ["--hypermodel", "'nocolon'", "expected module:attr"]),
    "launch-spec-missing": (["search.launch", "--study", "h", "--hypermodel", "missing.py:build", *TINY],
                            ["--hypermodel", "file missing.py not found"]),
    "launch-replay": (["search.launch", "--study", "attn", "--replay", "0", *TINY],
                      ["default storage", "'studies.db' does not exist"]),
    "launch-replay-empty": (["search.launch", "--study", "attn", "--replay", "0", "--storage", "sqlite:///empty.db",
                             *TINY], ["--storage", "'empty.db' is empty"]),
    "worker": (["search.worker", "--study", "attn"], ["default storage", "'studies.db' does not exist"]),
    "worker-empty": (["search.worker", "--study", "attn", "--storage", "sqlite:///empty.db"],
                     ["--storage", "'empty.db' is empty"]),
    "proxy": (["search.proxy"], ["default storage", "'studies.db' does not exist"]),
    "proxy-empty": (["search.proxy", "--storage", "sqlite:///empty.db"], ["--storage", "'empty.db' is empty"]),
    "dashboard-empty": (["search.dashboard", "--storage", "sqlite:///empty.db"],
                        ["--storage", "'empty.db' is empty"]),
    "report": (["search.report", "--study", "attn"], ["default storage", "'studies.db' does not exist"]),
    "report-empty": (["search.report", "--study", "attn", "--storage", "sqlite:///empty.db"],
                     ["--storage", "'empty.db' is empty"]),
}


@pytest.mark.parametrize("case", list(NEW_FOLDER))
def test_a_refusal_creates_no_store(empty: Path, case: str) -> None:
    argv, needles = NEW_FOLDER[case]
    _refused_leaving(empty, argv, needles)


EXISTING = {  # run in the store's folder: the store is read, and left byte-for-byte as it was
    "launch-ablation-unknown": (["search.launch", "--study", "abl", "--space", "ablation", "--from-study", "nothing",
                                 *TINY], ["--from-study", "'nothing'", "no such study", "studies there: attn"]),
    "launch-replay-trial": (["search.launch", "--study", "attn", "--replay", "99", *TINY],
                            ["--replay", "no trial 99", "from 0 to 4"]),
    "launch-replay-study": (["search.launch", "--study", "nope", "--space", "attn", "--replay", "0", *TINY],
                            ["study 'nope'", "no such study", "studies there: attn"]),
    "worker-study": (["search.worker", "--study", "nope"], ["study 'nope'", "no such study", "studies there: attn"]),
    "worker-replay": (["search.worker", "--study", "attn", "--replay", "99"], ["--replay", "no trial 99"]),
    "report-study": (["search.report", "--study", "nope"], ["--study 'nope'", "studies there: attn"]),
}


@pytest.mark.parametrize("case", list(EXISTING))
def test_a_refusal_leaves_the_store_as_it_was(store: Path, case: str) -> None:
    argv, needles = EXISTING[case]
    _refused_leaving(store, argv, needles)


# -- messages ------------------------------------------------------------------------------------------


@pytest.fixture()
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", ["search.dashboard", "search.proxy"])
@pytest.mark.parametrize("where", ["busy-port", "bad-host"])
def test_a_server_that_cannot_listen_says_so_before_anything_else(store: Path, busy_port: int, command: str,
                                                                  where: str) -> None:
    address = ["--port", str(busy_port)] if where == "busy-port" else ["--host", "no-such-host.invalid"]
    before = snapshot(store)
    result = run_cli(command, *address, cwd=store, timeout=120)
    assert_refused(result, "--host/--port", "cannot listen on")
    assert result.stdout == ""  # no "open http://..." or "Listening on ..." before the refusal
    assert snapshot(store) == before


MESSAGES = {
    "launch-space": (["search.launch", "--study", "attn", "--space", "nosuch"], ["--space", "'nosuch'"]),
    "launch-study": (["search.launch", "--study", "nosuch"], ["--study", "'nosuch'"]),
    "launch-max-len": (["search.launch", "--study", "attn", "--max-len", "0"], ["--max-len", "got 0"]),
    "data-info": (["search.data", "info"], ["dataset", "required"]),
    "debtags": (["search.data.debtags"], ["command", "required"]),
    "kerastuner-usage": (["search.kerastuner", "--study", "s"], ["--hypermodel", "required"]),
    # refused before this process imports keras: no TensorFlow start-up logging before the line
    "kerastuner-data": (["search.kerastuner", "--hypermodel", "x.py:build", "--study", "s", "--data", "nope.csv"],
                        ["nope.csv"]),
    "kerastuner-storage": (["search.kerastuner", "--hypermodel", "x.py:build", "--study", "s", "--storage",
                            "mongodb://x"], ["--storage", "mongodb"]),
    "worker-replay": (["search.worker", "--study", "attn", "--replay", "5"], ["--replay", "no trial 5"]),
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_messages_name_the_flag_and_come_alone(store: Path, case: str) -> None:
    argv, needles = MESSAGES[case]
    _refused_leaving(store, argv, needles)


def test_the_proxy_warns_that_it_has_no_authentication(store: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "search.proxy", "--host", "0.0.0.0", "--port", str(port)],
                            cwd=store, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        assert proc.stderr is not None
        while time.monotonic() < deadline and "authentication" not in line:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
        assert "no authentication" in line, line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
