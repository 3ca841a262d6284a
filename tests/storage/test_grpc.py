from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages._grpc.server import make_server  # Optuna's own proxy server, stoppable

import storage._engine
from search.errors import StorageError
from storage import create_storage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def grpc_proxy(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(grpc URL, backing SQLite URL)`` of a running Optuna gRPC storage proxy."""
    backing_url = f"sqlite:///{tmp_path / 'studies.db'}"
    backing = create_storage(backing_url)
    port = _free_port()
    server = make_server(backing, "127.0.0.1", port)
    server.start()
    try:
        yield f"grpc://127.0.0.1:{port}", backing_url
    finally:
        server.stop(0)
        backing.engine.dispose()


def test_grpc_url_opens_the_proxy(grpc_proxy: tuple[str, str]) -> None:
    url, backing_url = grpc_proxy
    proxy = create_storage(url)
    assert isinstance(proxy, optuna.storages.GrpcStorageProxy)
    study = optuna.create_study(study_name="via-grpc", storage=proxy)
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
    proxy.close()
    direct = optuna.load_study(study_name="via-grpc", storage=create_storage(backing_url))
    assert len(direct.trials) == 3


def test_unreachable_grpc_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage._engine, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(StorageError, match=r"cannot open grpc://127.0.0.1:\d+: no gRPC storage proxy answered"):
        create_storage(f"grpc://127.0.0.1:{_free_port()}")
