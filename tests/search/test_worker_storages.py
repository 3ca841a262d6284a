"""Four cheap workers on one study, on each kind of storage: no trial lost, duplicated or stuck.

One test over the storages a study can live in: SQLite, a real PostgreSQL server (skipped when none is
reachable, failed with CI=true) and Optuna's gRPC storage proxy (``python -m search.proxy``) in front of
SQLite. The workers are separate processes on the real worker loop and storage with a cheap objective
(tests/workerhelpers.py); :func:`workerhelpers.assert_consistent` is the one statement of "none lost,
duplicated or stuck". Each storage adds what only it can get wrong.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from search.worker import WORKER_MAX_OVERFLOW, WORKER_POOL_SIZE
from storage import create_storage
from workerhelpers import (
    WorkerResult,
    assert_consistent,
    delete_study,
    finish,
    pg_connections,
    postgres_url_or_skip,
    start_cheap_worker,
    start_proxy,
    stop_proxy,
    with_query,
)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

WORKERS = 4


@dataclass
class Backend:
    """A storage for the test: the URL the workers get, how many trials they run, what is checked besides."""

    url: str
    target: int
    study_url: str = ""  # where the test itself creates the study (default: url)
    sample: Callable[[], None] = lambda: None  # called while the workers run
    check: Callable[[list[WorkerResult], list[FrozenTrial]], None] = lambda results, trials: None
    peaks: list[int] = field(default_factory=list)


@contextmanager
def _sqlite(tmp_path: Path, name: str) -> Iterator[Backend]:
    def check(results: list[WorkerResult], trials: list[FrozenTrial]) -> None:
        assert not any("database is locked" in r.stderr for r in results)

    yield Backend(f"sqlite:///{tmp_path / 'studies.db'}", target=100, check=check)


@contextmanager
def _postgresql(tmp_path: Path, name: str) -> Iterator[Backend]:
    server = postgres_url_or_skip()
    app = f"search-test-{uuid.uuid4().hex[:8]}"
    backend = Backend(with_query(server, application_name=app), target=200, study_url=server)  # only workers count

    def check(results: list[WorkerResult], trials: list[FrozenTrial]) -> None:
        # each worker process keeps one connection, opening an overflow one at most briefly; none is left
        assert all(r.completed for r in results), "every worker ran trials"
        assert 0 < max(backend.peaks) <= WORKERS * (WORKER_POOL_SIZE + WORKER_MAX_OVERFLOW)
        assert pg_connections(server, app) == 0

    backend.sample = lambda: backend.peaks.append(pg_connections(server, app))
    backend.check = check
    try:
        yield backend
    finally:
        delete_study(server, name)


@contextmanager
def _grpc_proxy(tmp_path: Path, name: str) -> Iterator[Backend]:
    backing = f"sqlite:///{tmp_path / 'studies.db'}"
    proxy, url = start_proxy(backing)

    def check(results: list[WorkerResult], trials: list[FrozenTrial]) -> None:
        direct = optuna.load_study(study_name=name, storage=create_storage(backing))  # behind the proxy
        assert [t.number for t in direct.get_trials(states=(TrialState.COMPLETE,))] == [
            t.number for t in trials if t.state == TrialState.COMPLETE]

    try:
        yield Backend(url, target=60, check=check)
    finally:
        if proxy.poll() is None:
            assert "proxy stopped" in stop_proxy(proxy)


STORAGES = {"sqlite": _sqlite, "postgresql": _postgresql, "grpc-proxy": _grpc_proxy}


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("grpc-proxy")])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, str]]:
    name = f"test-workers-{uuid.uuid4().hex[:10]}"
    with STORAGES[request.param](tmp_path, name) as storage:
        yield storage, name


def test_four_workers_none_lost_duplicated_or_stuck(backend: tuple[Backend, str]) -> None:
    storage, name = backend
    study = optuna.create_study(study_name=name, storage=create_storage(storage.study_url or storage.url,
                                                                        heartbeat_interval=None))
    workers = [start_cheap_worker(storage.url, name, target=storage.target) for _ in range(WORKERS)]
    while any(w.poll() is None for w in workers):
        storage.sample()
        time.sleep(0.2)
    results = finish(workers)
    trials = assert_consistent(study, results, target=storage.target)
    by_id = {t._trial_id: t for t in trials}
    for result in results:  # each trial was run by the worker that reports it
        assert {by_id[i].user_attrs["worker"]["pid"] for i in result.completed} <= {result.pid}
    storage.check(results, trials)
