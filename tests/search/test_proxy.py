"""``python -m search.proxy``: Optuna's gRPC storage proxy in front of the study database.

Workers through the proxy share its few database connections; there are no heartbeats through it, so a
killed worker's trial stays RUNNING until a worker on the same machine (or its launcher) fails and
re-queues it. Bad input is one line.
"""
from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from clihelpers import assert_one_line_error, run_cli
from storage import close_storage, create_storage
from workerhelpers import (assert_consistent, delete_study, finish, pg_connections, postgres_url_or_skip,
                           start_cheap_worker, start_proxy, stop_proxy, wait_for_line, with_query)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


@pytest.fixture
def sqlite_proxy(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(grpc URL, backing SQLite URL) of a running ``python -m search.proxy``."""
    backing = f"sqlite:///{tmp_path / 'studies.db'}"
    proxy, url = start_proxy(backing)
    try:
        yield url, backing
    finally:
        if proxy.poll() is None:
            assert "proxy stopped" in stop_proxy(proxy)


def test_killed_worker_behind_the_proxy_is_failed_by_the_next_worker_on_the_machine(
        sqlite_proxy: tuple[str, str]) -> None:
    """No heartbeat passes the proxy: the killed worker's trial stays RUNNING (however long we waited),
    until a worker started on the same machine sees that the recorded pid is dead and re-queues it."""
    url, _ = sqlite_proxy
    study = optuna.create_study(study_name="killed", storage=create_storage(url))
    victim = start_cheap_worker(url, "killed", target=5, mode="hang")
    number = int(wait_for_line(victim, "running").split()[1])
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert study.trials[number].state == TrialState.RUNNING
    results = finish([start_cheap_worker(url, "killed", target=5)])
    assert "failed and re-queued trials [0] of dead workers on this machine" in results[0].stderr
    killed = study.trials[number]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["failure_reason"] == "its worker process died; retried"
    retries = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    assert_consistent(study, results, target=5)


@pytest.mark.postgres
def test_proxy_holds_few_postgres_connections_for_many_workers(request: pytest.FixtureRequest) -> None:
    postgres_url = postgres_url_or_skip()
    app = f"search-test-proxy-{uuid.uuid4().hex[:8]}"
    name = f"test-proxy-{uuid.uuid4().hex[:10]}"
    proxy, url = start_proxy(with_query(postgres_url, application_name=app), "--threads", "2")
    try:
        study = optuna.create_study(study_name=name, storage=create_storage(url))
        workers = [start_cheap_worker(url, name, target=40) for _ in range(6)]
        peak = 0
        while any(w.poll() is None for w in workers):
            peak = max(peak, pg_connections(postgres_url, app))
            time.sleep(0.1)
        results = finish(workers)
        assert_consistent(study, results, target=40)
        assert 1 <= peak <= 2  # six workers, at most --threads database connections
    finally:
        stop_proxy(proxy)
        delete_study(postgres_url, name)


def test_bad_proxy_input_is_one_line(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'p.db'}"
        close_storage(create_storage(db, heartbeat_interval=None))  # a store the proxy may serve
        cases = [
            (["--storage", f"sqlite:///{tmp_path / 'nope.db'}"], "'" + str(tmp_path / "nope.db") + "' does not exist"),
            (["--storage", "grpc://127.0.0.1:13000"], "--storage: got grpc://127.0.0.1:13000; expected the database"),
            (["--storage", "mongodb://x"], "unsupported storage URL scheme 'mongodb://'"),
            (["--storage", db, "--threads", "0"], "--threads: got 0; expected at least 1"),
            (["--storage", db, "--port", "70000"], "expected a port number 1-65535, got 70000"),
            (["--storage", db, "--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
            (["--storage", db, "--host", "192.0.2.1"], "cannot listen on 192.0.2.1:13000"),
        ]
        for argv, needle in cases:
            assert_one_line_error(run_cli("search.proxy", *argv, cwd=tmp_path), needle)
        assert not (tmp_path / "nope.db").exists()  # the proxy serves a store; it never creates one
    finally:
        busy.close()
