"""Open an Optuna storage from a URL with the engine options this project relies on.

* SQLite: the file is switched to WAL journal mode before Optuna opens it (WAL is a property of the
  database file, so every later connection, in any process, uses it) and every connection gets a
  busy timeout through ``connect_args={"timeout": ...}`` (Python's sqlite3 sets SQLite's busy
  handler from it). Both survive pickling of the storage because
  :class:`optuna.storages.RDBStorage` re-creates its engine from ``url`` and ``engine_kwargs``.
  Transactions start with ``BEGIN IMMEDIATE`` (see :mod:`storage._service`), so several worker
  processes never run one enqueued trial twice.
* PostgreSQL / MySQL: ``pool_pre_ping`` so a connection dropped by the server while a long trial ran
  is replaced, and a connect timeout so an unreachable server fails in seconds. ``pool_size`` and
  ``max_overflow`` size the connection pool: a worker process keeps one connection (its trial's calls
  and Optuna's heartbeat thread rarely overlap), far fewer than SQLAlchemy's default of 5 + 10.
* Heartbeats on, with Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` so that a
  trial whose worker died is failed and re-queued (Optuna 5 name of ``RetryFailedTrialCallback``); its
  copy starts without the dead run's record (:class:`storage._retry.FreshRetryCallback`).
* ``grpc://HOST:PORT``: Optuna's :class:`~optuna.storages.GrpcStorageProxy`; heartbeats then belong
  to the storage behind the proxy server (open it with :func:`create_storage` there).
"""
from __future__ import annotations

import re
import sqlite3
import warnings
from typing import Any

from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage
from sqlalchemy.exc import SQLAlchemyError

from search.errors import StorageError
from storage._retry import FreshRetryCallback
from storage._service import ServiceGrpcStorageProxy, ServiceRDBStorage
from storage._url import ParsedStorageUrl, mask_url, parse_storage_url

__all__ = ["SQLITE_BUSY_TIMEOUT_S", "CONNECT_TIMEOUT_S", "DEFAULT_HEARTBEAT_INTERVAL", "DEFAULT_GRACE_PERIOD",
           "DEFAULT_MAX_RETRY", "create_storage", "open_existing_storage", "require_existing_store", "close_storage"]

SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
# The one place these defaults are written: the launcher's flags, a study's run configuration and every
# storage a worker opens take them from here.
DEFAULT_HEARTBEAT_INTERVAL = 60  # seconds between heartbeats of a running trial
DEFAULT_GRACE_PERIOD = 180  # seconds without a heartbeat after which a trial is failed (and retried)
DEFAULT_MAX_RETRY = 2  # times a trial whose worker died is run again
_SOURCE = "storage"


def create_storage(
    url: str,
    *,
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = DEFAULT_GRACE_PERIOD,
    max_retry: int = DEFAULT_MAX_RETRY,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> BaseStorage:
    """Open the Optuna storage named by ``url`` (creating its tables if needed).

    ``heartbeat_interval=None`` turns heartbeats (and the retry of stale trials) off. A stale trial is
    retried at most ``max_retry`` times. ``pool_size`` and ``max_overflow`` size SQLAlchemy's connection
    pool (its defaults when ``None``; ignored for in-memory SQLite and gRPC). Bad settings, or a database
    that cannot be opened, raise :class:`StorageError` with the masked URL and the reason on one line.
    """
    parsed = parse_storage_url(url, source=_SOURCE)
    _check_settings(heartbeat_interval, grace_period, max_retry, pool_size, max_overflow)
    if parsed.is_grpc:
        return _grpc_proxy(parsed)

    heartbeat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            "heartbeat_stale_trial_callback": _retry_callback(max_retry),
        }
    try:
        if parsed.sqlite_path is not None:
            _enable_wal(parsed)
        with warnings.catch_warnings():
            # Heartbeats are "experimental" in Optuna; using them is this project's decision.
            warnings.simplefilter("ignore", ExperimentalWarning)
            engine_kwargs = _engine_kwargs(parsed, pool_size, max_overflow)
            return ServiceRDBStorage(parsed.url, engine_kwargs=engine_kwargs, **heartbeat)
    except StorageError:
        raise
    except (SQLAlchemyError, sqlite3.Error, ImportError, RuntimeError, OSError) as exc:
        message = f"cannot open {mask_url(parsed.url)}: {_reason(exc, parsed)}"
        raise StorageError(message, source=_SOURCE) from exc


def open_existing_storage(
    url: str,
    *,
    source: str = _SOURCE,
    heartbeat_interval: int | None = None,
    grace_period: int | None = DEFAULT_GRACE_PERIOD,
    max_retry: int = DEFAULT_MAX_RETRY,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> BaseStorage:
    """Open a study store that must already exist: what every reader (worker, report, dashboard, proxy) uses.

    A reader never creates a store: a SQLite file that does not exist, is empty, or is not a study store
    is refused (:class:`StorageError` naming ``source``, the flag or variable the URL came from) without
    writing anything, since a wrong path would otherwise leave a new empty database behind. Server
    databases and gRPC proxies are opened as :func:`create_storage` opens them. Heartbeats are off unless
    ``heartbeat_interval`` is given (only a worker running trials beats).
    """
    require_existing_store(url, source=source)
    return create_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                          max_retry=max_retry, pool_size=pool_size, max_overflow=max_overflow)


#: A table every Optuna RDB store has; its absence means the file is some other SQLite database.
_STUDY_TABLE = "studies"


def require_existing_store(url: str, *, source: str = _SOURCE) -> None:
    """Refuse a SQLite ``url`` whose file is missing, empty or holds no studies; writes nothing."""
    parsed = parse_storage_url(url, source=source)
    path = parsed.sqlite_path
    if path is None:
        return  # a server database or a proxy: the server says whether it exists
    hint = "expected the SQLite file of a study store (run python -m search.launch first, or pass --storage URL)"
    if not path.exists():
        raise StorageError(f"SQLite file '{path}' does not exist; {hint}", source=source)
    if not path.is_file():
        raise StorageError(f"'{path}' is not a file; {hint}", source=source)
    if path.stat().st_size == 0:
        raise StorageError(f"SQLite file '{path}' is empty (0 bytes); {hint}", source=source)
    try:
        # mode=rw never creates the file; a query changes nothing, and closing the last connection removes
        # the -wal/-shm files it opened (a read-only connection would leave them behind)
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                       (_STUDY_TABLE,)).fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read '{path}' as SQLite ({exc}); {hint}", source=source) from None
    if found is None:
        raise StorageError(f"'{path}' is a SQLite file without studies (no Optuna tables); {hint}", source=source)


def close_storage(storage: BaseStorage) -> None:
    """Give back the connections of a storage opened by :func:`create_storage` (it is not used again)."""
    if isinstance(storage, ServiceGrpcStorageProxy):
        storage.close()
    elif isinstance(storage, ServiceRDBStorage):
        storage.remove_session()
        storage.engine.dispose()


def _check_settings(
    heartbeat_interval: int | None,
    grace_period: int | None,
    max_retry: int,
    pool_size: int | None,
    max_overflow: int | None,
) -> None:
    def positive(name: str, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            message = f"expected a positive integer or None, got {value!r}"
            raise StorageError(message, source=_SOURCE, field=name)

    positive("heartbeat_interval", heartbeat_interval)
    positive("grace_period", grace_period)
    positive("pool_size", pool_size)
    for name, value in (("max_retry", max_retry), ("max_overflow", max_overflow)):
        if name == "max_overflow" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StorageError(f"expected an integer >= 0, got {value!r}", source=_SOURCE, field=name)
    if heartbeat_interval is not None and grace_period is not None and grace_period <= heartbeat_interval:
        # A live worker beats every `heartbeat_interval` s; a shorter grace would fail healthy trials.
        raise StorageError(
            f"expected more than heartbeat_interval ({heartbeat_interval} s), got {grace_period}",
            source=_SOURCE,
            field="grace_period",
        )


def _retry_callback(max_retry: int) -> FreshRetryCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return FreshRetryCallback(max_retry=max_retry)


def _engine_kwargs(parsed: ParsedStorageUrl, pool_size: int | None, max_overflow: int | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if parsed.backend == "sqlite":
        # isolation_level=None: the driver emits no BEGIN of its own; ServiceRDBStorage emits BEGIN IMMEDIATE.
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None}
    elif parsed.is_server:
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.sqlalchemy_url.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    in_memory = parsed.backend == "sqlite" and parsed.sqlite_path is None  # a single-connection pool
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
    if max_overflow is not None and not in_memory:
        kwargs["max_overflow"] = max_overflow
    return kwargs


def _enable_wal(parsed: ParsedStorageUrl) -> None:
    """Create the SQLite file if needed and switch it to WAL (a persistent property of the file)."""
    path = parsed.sqlite_path
    assert path is not None
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot open {mask_url(parsed.url)}: directory '{path.parent}' does not exist", source=_SOURCE
        )
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        connection.close()
    if str(mode).lower() != "wal":
        warnings.warn(
            f"SQLite refused WAL journal mode for {path} (got {mode!r}); concurrent workers may block",
            RuntimeWarning,
            stacklevel=3,
        )


def _grpc_proxy(parsed: ParsedStorageUrl) -> ServiceGrpcStorageProxy:
    host, port = parsed.sqlalchemy_url.host, parsed.sqlalchemy_url.port
    if host is None or port is None:
        raise StorageError(f"got {parsed.url}; expected grpc://HOST:PORT", source=_SOURCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        proxy = ServiceGrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=CONNECT_TIMEOUT_S)
    except ConnectionError:
        proxy.close()
        raise StorageError(
            f"cannot open {parsed.url}: no gRPC storage proxy answered within {CONNECT_TIMEOUT_S} s",
            source=_SOURCE,
        ) from None
    return proxy


def _reason(exc: BaseException, parsed: ParsedStorageUrl) -> str:
    """The driver's own message, on one line, without SQLAlchemy's boilerplate or the password."""
    if isinstance(exc, ImportError):
        cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
        module = cause.name or "its module"
        return f"the database driver is not installed (no module named '{module}'; pip install {module})"
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    text = text.split("(Background on this error at:")[0]
    text = re.sub(r"\s+", " ", text).strip() or type(exc).__name__
    password = parsed.sqlalchemy_url.password
    if password:
        text = text.replace(str(password), "***")
    return text
