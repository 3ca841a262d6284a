"""Several workers on one machine, SQLite: the launcher's supervision, GPU pinning, and the store's
correctness under concurrent processes.

Launcher tests run the real CLI with real (tiny) trials; the SQLite concurrency tests use cheap workers on
the real worker loop (tests/workerhelpers.py).
"""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from clihelpers import assert_one_line_error, run_cli
from search import runtime
from search.launch import describe_exit
from storage import create_storage
from workerhelpers import child_env, process_gone, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

TINY = ["--limit", "64", "--max-len", "16", "--vocab-size", "800", "--epochs", "2", "--no-progress"]


def _study(db: Path, name: str = "attn") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def _worker_pid_of_running_trial(db: Path, exclude: set[int] = frozenset()) -> tuple[int, int] | None:
    for trial in _study(db).get_trials(states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("worker", {}).get("pid")
        if pid is not None and trial.number not in exclude:
            return trial.number, pid
    return None


def _launch(tmp_path: Path, *flags: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "search.launch", "--study", "attn", *flags, *TINY]
    return subprocess.Popen(argv, cwd=tmp_path, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _no_traceback(err: str) -> bool:
    # Python prints (and swallows) an interrupt that lands in a __del__ or weakref callback ("Exception
    # ignored in"); the worker then interrupts itself again (see search/_worker/_signals.py). Nothing else.
    return err.count("Traceback") == err.count("Exception ignored in")


def test_two_cpu_workers_crashed_worker_restarted_and_its_trial_retried(tmp_path: Path) -> None:
    """--workers 2 on SQLite: SIGKILL one worker mid-trial -> reported, restarted, its trial failed with
    the reason and re-queued, the retry runs, and the study finishes with nothing left RUNNING."""
    db = tmp_path / "studies.db"
    launcher = _launch(tmp_path, "--trials", "3", "--workers", "2")
    try:
        number, pid = wait_until(lambda: _worker_pid_of_running_trial(db), 180, "a running trial")
        os.kill(pid, signal.SIGKILL)
        out, err = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, err[-3000:]
    assert f"(pid {pid}) crashed (killed by SIGKILL); restart 1/3" in err
    assert f"failed trial {number} of the crashed worker; re-queued" in err and _no_traceback(err)
    study = _study(db)
    trials = study.get_trials()
    killed = trials[number]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["failure_reason"] == f"its worker (pid {pid}) crashed (killed by SIGKILL); retried"
    (retry,) = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert killed.params.items() <= retry.params.items()  # killed while sampling: the retry samples the rest
    assert "failure_reason" not in retry.user_attrs  # not inherited from the killed trial
    assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) >= 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # what still waits is the space's strong start, never started (a cut-off trial is failed, not re-queued)
    assert all(t.datetime_start is None for t in trials if t.state == TrialState.WAITING)
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}
    records = [t.user_attrs["worker"] for t in trials]
    assert all(r["gpu"] is None and r["cuda_visible_devices"] == "" and r["device"] == "CPU" for r in records)
    assert len({r["pid"] for r in records}) >= 2  # the killed worker and at least one other
    if len(os.sched_getaffinity(0)) >= 2:  # two workers share out the cores: each pinned, one-thread pools
        by_pid = {t.user_attrs["worker"]["pid"]: (tuple(t.user_attrs["worker"]["cpus"]),
                                                    t.user_attrs["worker"]["threads"]) for t in trials}
        assert {threads for _, threads in by_pid.values()} == {len(os.sched_getaffinity(0)) // 2}
        assert len({cpus for cpus, _ in by_pid.values()}) == 2


def _gpus_tensorflow_sees(cuda_visible_devices: str) -> list[str]:
    """The logical GPU devices TensorFlow lists in a fresh process with ``CUDA_VISIBLE_DEVICES`` set so."""
    code = "import tensorflow as tf; print(repr([d.name for d in tf.config.list_logical_devices('GPU')]))"
    done = subprocess.run([sys.executable, "-c", code], env=child_env(CUDA_VISIBLE_DEVICES=cuda_visible_devices,
                          TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return list(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def test_gpus_0_0_pins_both_workers_to_gpu_0_and_sigterm_stops_them(tmp_path: Path) -> None:
    """--gpus 0,0: two workers, each pinned (CUDA_VISIBLE_DEVICES=0) and recording its GPU on its trials;
    each runs on that GPU where TensorFlow sees one and says it falls back to the CPU where it does not;
    SIGTERM to the launcher while both run a trial stops both cleanly: exit 130, their trials failed with a
    reason, nothing RUNNING, no worker left."""
    db = tmp_path / "studies.db"
    launcher = _launch(tmp_path, "--trials", "40", "--gpus", "0,0")
    try:
        wait_until(lambda: len({t.user_attrs.get("worker", {}).get("pid")
                                for t in _study(db).get_trials(states=(TrialState.RUNNING,))}) == 2,
                   180, "both workers running a trial")
        launcher.send_signal(signal.SIGTERM)
        out, err = launcher.communicate(timeout=180)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 130, err[-3000:]
    assert "stopping workers (SIGTERM" in err and _no_traceback(err)
    gpu = _gpus_tensorflow_sees("0")  # what a process pinned to GPU 0 sees on this machine: [] or one GPU
    for index in (0, 1):  # both workers started, each on its "GPU 0"; a fallback is said only where it happens
        assert (f"[worker {index} gpu 0] GPU 0 requested but TensorFlow sees no GPU" in out) == (not gpu)
    trials = _study(db).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # what still waits is the space's strong start, never started (a cut-off trial is failed, not re-queued)
    assert all(t.datetime_start is None for t in trials if t.state == TrialState.WAITING)
    # A worker whose trial ends between the check above and the signal stops between trials instead, so
    # at least one (usually two) trials are cut off; every cut-off trial says why.
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) >= 1 and all(t.user_attrs.get("failure_reason") for t in failed)
    pids = set()
    for trial in (t for t in trials if t.state != TrialState.WAITING):
        worker = trial.user_attrs["worker"]
        assert worker["gpu"] == "0" and worker["cuda_visible_devices"] == "0"
        assert worker["devices"] == gpu and worker["device"] == (gpu[0] if gpu else "CPU")
        assert worker["memory_growth"] is bool(gpu)
        assert worker["host"] and worker["backend"] == "tensorflow"
        pids.add(worker["pid"])
    assert len(pids) == 2 and all(process_gone(p) for p in pids)


POP_WAITING = """
import json, sys
import optuna
from storage import create_storage

optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name=sys.argv[2], storage=create_storage(sys.argv[1]))
popped = []
while (trial_id := study._pop_waiting_trial_id()) is not None:
    popped.append(trial_id)
print(json.dumps(popped))
"""


def test_sqlite_enqueued_trials_are_each_taken_by_one_worker(tmp_path: Path) -> None:
    """Four processes take enqueued (or retried) trials at once: each trial goes to exactly one of them.
    (Without BEGIN IMMEDIATE, SQLite let two processes both take the same WAITING trial.)"""
    import json

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="queue", storage=create_storage(url))
    for x in range(120):
        study.enqueue_trial({"x": x}, skip_if_exists=False)
    workers = [subprocess.Popen([sys.executable, "-c", POP_WAITING, url, "queue"], env=child_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    popped = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        popped += json.loads(out)
    assert len(popped) == 120 and len(set(popped)) == 120


def test_configure_process_pins_one_gpu_or_none_before_keras() -> None:
    code = """
import os, sys
from search.runtime import INHERIT_GPUS, configure_process
os.environ["CUDA_VISIBLE_DEVICES"] = "3"
mode = sys.argv[1]
configure_process({"gpu": "1", "cpu": None, "inherit": INHERIT_GPUS}[mode], "jax" if mode == "cpu" else None)
print(repr(os.environ["CUDA_VISIBLE_DEVICES"]), os.environ["KERAS_BACKEND"], os.environ["TF_FORCE_GPU_ALLOW_GROWTH"],
      "keras" in sys.modules)
if mode == "gpu":
    import keras
    try:
        configure_process("0")
    except RuntimeError as exc:
        print("refused")
"""
    env = child_env()
    env.pop("KERAS_BACKEND", None)
    seen = {}
    for mode in ("gpu", "cpu", "inherit"):
        proc = subprocess.run([sys.executable, "-c", code, mode], env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen[mode] = proc.stdout.split("\n")[:2]
    assert seen["gpu"] == ["'1' tensorflow true False", "refused"]
    assert seen["cpu"][0] == "'' jax true False"
    assert seen["inherit"][0] == "'3' tensorflow true False"


def test_memory_growth_is_enabled_on_every_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    gpus = [SimpleNamespace(name="/physical_device:GPU:0"), SimpleNamespace(name="/physical_device:GPU:1")]
    grown = []
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda device, on: grown.append((device.name, on)))
    assert runtime.enable_memory_growth() == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert grown == [("/physical_device:GPU:0", True), ("/physical_device:GPU:1", True)]
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert runtime.enable_memory_growth() == []


def test_describe_exit() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(1) == "exit status 1"
    assert describe_exit(-99) == "killed by signal 99"


def test_bad_worker_flags_are_one_line_errors_and_write_nothing(tmp_path: Path) -> None:
    cases = [
        ("search.launch", ["--study", "attn", "--gpus", "0,1", "--workers", "2"], "--workers: got --gpus 0,1 and"),
        ("search.launch", ["--study", "attn", "--workers", "0"], "--workers: got 0; expected at least 1"),
        ("search.launch", ["--study", "attn", "--max-restarts", "-1"], "--max-restarts"),
        ("search.launch", ["--study", "attn", "--heartbeat-interval", "10", "--grace-period", "5"], "grace_period"),
        ("search.launch", ["--study", "attn", "--workers", "two"], "--workers: invalid int value"),
        ("search.worker", ["--study", "attn", "--gpu", "x"], "--gpu: got 'x'; expected one GPU id"),
        ("search.worker", ["--study", "attn", "--gpu", "0", "--cpu"], "not allowed with argument"),
        ("search.worker", ["--study", "attn", "--trials", "0"], "--trials: got 0"),
        ("search.worker", ["--study", "nope", "--cpu"], "default storage: SQLite file 'studies.db' does not exist"),
    ]
    for module, argv, needle in cases:
        extra = TINY if module == "search.launch" else []
        result = run_cli(module, *argv, *extra, cwd=tmp_path)
        assert_one_line_error(result, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no artifact folder: nothing written
