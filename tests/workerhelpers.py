"""Helpers for the worker tests: cheap worker processes on the real worker loop, and study checks.

A cheap worker is ``python -c CHEAP_WORKER URL STUDY TARGET SLEEP MODE``: the real
:func:`search.worker.run_trials` loop on the real worker storage (:func:`search.worker.open_storage`:
heartbeats, pool, pre-ping), with an objective that samples ``x`` and sleeps ``SLEEP`` seconds instead of
training a model. It records its worker like the real objective does, prints ``running N`` when it
starts trial N, and at the end prints one JSON line with its pid and the ids of the trials it completed.
MODE ``hang`` sleeps for ever in its first trial (to be killed). Heartbeat interval and grace period come
from ``$HB_INTERVAL`` / ``$HB_GRACE`` (default 1 s / 2 s, so a dead worker is noticed quickly).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import optuna
import pytest
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T = TypeVar("T")

CHEAP_WORKER = """
import json, os, sys, time
import optuna
from optuna.trial import TrialState
from search.record import TrialRecord
from search.runtime import process_identity
from search.worker import open_storage, run_trials

url, study_name, target, pause, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
optuna.logging.set_verbosity(optuna.logging.ERROR)
storage = open_storage(url, heartbeat_interval=int(os.environ.get("HB_INTERVAL", "1")),
                       grace_period=int(os.environ.get("HB_GRACE", "2")))
study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler())
identity = process_identity()
completed = []

def objective(trial):
    TrialRecord(worker=identity).write(trial)
    x = trial.suggest_float("x", 0.0, 1.0)
    print("running", trial.number, flush=True)
    if mode == "hang":
        time.sleep(600)
    time.sleep(pause)
    return x

def record(study, trial):
    if trial.state == TrialState.COMPLETE:
        completed.append(trial._trial_id)

run_trials(study, objective, target=target, callbacks=[record], log=lambda m: print(m, file=sys.stderr, flush=True))
print(json.dumps({"pid": os.getpid(), "completed": completed}), flush=True)
"""


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("OPTUNA_STORAGE", None)
    return env


def start_cheap_worker(url: str, study: str, target: int, pause: float = 0.0, mode: str = "run",
                       **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHEAP_WORKER, url, study, str(target), str(pause), mode],
                            env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass
class WorkerResult:
    pid: int
    returncode: int
    completed: list[int] = field(default_factory=list)
    stderr: str = ""


def finish(workers: Iterable[subprocess.Popen[str]], timeout: float = 240) -> list[WorkerResult]:
    """Wait for cheap workers; each must exit 0 and print its JSON line."""
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        results.append(WorkerResult(summary["pid"], worker.returncode, summary["completed"], err))
    return results


def wait_for_line(worker: subprocess.Popen[str], prefix: str, timeout: float = 60) -> str:
    """The first stdout line of ``worker`` that starts with ``prefix`` (blocking read; worker must print it)."""
    assert worker.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = worker.stdout.readline()
        if not line:
            raise AssertionError(f"worker exited before printing {prefix!r}: {worker.stderr.read()[-2000:]}")
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no {prefix!r} line within {timeout} s")


def assert_consistent(study: optuna.Study, results: list[WorkerResult], target: int) -> list[FrozenTrial]:
    """No lost, duplicated or stuck trial: what the workers say they completed is exactly what the study
    holds as COMPLETE, no trial was completed by two workers, the trial numbers are 0..n-1 without a gap
    or repeat, nothing is left RUNNING or WAITING, and the target was reached (plus at most one in-flight
    trial per other worker)."""
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    stuck = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not stuck, f"trials left RUNNING/WAITING: {stuck}"
    complete = {t._trial_id for t in trials if t.state == TrialState.COMPLETE}
    reported = [tid for r in results for tid in r.completed]
    assert len(reported) == len(set(reported)), "a trial was completed by two workers"
    assert set(reported) == complete, "trials completed by a worker but not COMPLETE in the study, or the reverse"
    assert target <= len(complete) <= target + len(results) - 1
    return trials


def postgres_url_or_skip() -> str:
    """``$SEARCH_TEST_POSTGRES_URL`` or the local server; unreachable: skip, or fail when CI=true."""
    url = os.environ.get("SEARCH_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:  # any reason the server cannot be used
        from storage import mask_url

        reason = f"PostgreSQL at {mask_url(url)} is unreachable ({type(exc).__name__}); set SEARCH_TEST_POSTGRES_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


def with_query(url: str, **params: str) -> str:
    """``url`` with extra query parameters (e.g. ``application_name`` to find our connections)."""
    parsed = sqlalchemy.engine.make_url(url)
    return parsed.update_query_dict(params).render_as_string(hide_password=False)


def pg_connections(url: str, application_name: str) -> int:
    """Connections the server holds for ``application_name`` (pg_stat_activity)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(
                sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name}).scalar())
    finally:
        engine.dispose()


def delete_study(url: str, name: str) -> None:
    from storage import create_storage

    storage = create_storage(url, heartbeat_interval=None)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    finally:
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()


def process_gone(pid: int) -> bool:
    """No such process, or a zombie (dead, not yet reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.3) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # e.g. the store is not created yet
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_proxy(storage_url: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """A running ``python -m search.proxy`` in front of ``storage_url``, and the grpc:// URL to reach it.

    The store is created first where it is a SQLite file that does not exist: the proxy serves a store,
    it never creates one."""
    from storage import close_storage, create_storage, sqlite_path

    path = sqlite_path(storage_url)
    if path is not None and not path.exists():
        close_storage(create_storage(storage_url, heartbeat_interval=None))
    port = free_port()
    proxy = subprocess.Popen([sys.executable, "-m", "search.proxy", "--storage", storage_url, "--port", str(port),
                              *extra], env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = wait_for_line(proxy, "gRPC storage proxy for ")
    assert f"127.0.0.1:{port}" in line and f"--storage grpc://127.0.0.1:{port}" in line
    return proxy, f"grpc://127.0.0.1:{port}"


def stop_proxy(proxy: subprocess.Popen[str]) -> str:
    """SIGTERM the proxy; it must exit 0. Returns its stdout."""
    proxy.send_signal(signal.SIGTERM)
    out, err = proxy.communicate(timeout=30)
    assert proxy.returncode == 0, err[-2000:]
    return out
