"""A worker's storage: opened with retry while the database comes up; which errors are the store's."""
from __future__ import annotations

import time

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage  # what optuna.load_study wraps an RDB storage in
from sqlalchemy.exc import InterfaceError, OperationalError

from search.errors import StorageError
from storage import DEFAULT_GRACE_PERIOD, DEFAULT_HEARTBEAT_INTERVAL, create_storage, require_existing_store
from storage._service import OwnTrials

__all__ = ["open_storage", "storage_error_in", "describe_storage_error", "own_running_trial_ids",
           "WORKER_POOL_SIZE", "WORKER_MAX_OVERFLOW", "OPEN_ATTEMPTS"]

# A worker keeps one database connection. Its trial's storage calls and Optuna's heartbeat thread (one
# write a minute) rarely overlap: when they do, or while the storage starts up, an overflow connection
# is opened and closed again, never kept. So N workers hold about N connections, not 2N (or 15N: the
# SQLAlchemy default is a pool of 5 + 10 overflow).
WORKER_POOL_SIZE = 1
WORKER_MAX_OVERFLOW = 2
OPEN_ATTEMPTS = 4  # tries to open an unreachable database at start-up (waits 1, 2, 4 s between them)


def open_storage(url: str, *, heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
                 grace_period: int | None = DEFAULT_GRACE_PERIOD, attempts: int = OPEN_ATTEMPTS) -> BaseStorage:
    """The storage of one worker process: heartbeats with retry, a one-connection pool, pre-ping.

    A database that cannot be reached (the driver's connection error) is tried ``attempts`` times over a
    few seconds before the :class:`~search.errors.StorageError` is raised: a worker (re)started while the
    server restarts, or while its connection is cut, comes up instead of exiting. A worker joins a study
    that exists: a SQLite file that does not exist (or holds no studies) is refused, never created.
    """
    require_existing_store(url)
    for attempt in range(1, attempts + 1):
        try:
            return create_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                  pool_size=WORKER_POOL_SIZE, max_overflow=WORKER_MAX_OVERFLOW)
        except StorageError as exc:
            if attempt == attempts or not isinstance(exc.__cause__, (OperationalError, InterfaceError)):
                raise
            time.sleep(min(2.0 ** (attempt - 1), 8.0))
    raise AssertionError("unreachable")


def _storage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the store could not be reached or answered (not a bug in the trial)."""
    errors: tuple[type[BaseException], ...] = (StorageInternalError, OperationalError, InterfaceError)
    try:
        import grpc  # only installed where a gRPC storage proxy is used

        errors += (grpc.RpcError,)
    except ImportError:
        pass
    return errors


def storage_error_in(exc: BaseException) -> BaseException | None:
    """The storage error in ``exc``'s chain (itself, its cause or context), else None.

    Optuna may hide a storage error: when telling the trial's result fails, ``_run_trial`` raises an
    AssertionError ("Should not reach") whose context is the StorageInternalError.
    """
    return error_in_chain(exc, _storage_errors())


def error_in_chain(exc: BaseException, types: type[BaseException] | tuple[type[BaseException], ...]
                   ) -> BaseException | None:
    """The first exception of ``types`` in ``exc``'s chain (itself, its causes and contexts), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, types):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_storage_error(exc: BaseException) -> str:
    """``OperationalError: server closed the connection``: the driver's reason, on one line."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = " ".join(str(cause).split()).split("(Background on this error")[0].strip()
    return f"{type(cause).__name__}: {text[:300]}" if text else type(cause).__name__


def own_running_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of the trials this process set RUNNING through ``study``'s storage and has not finished.

    The storage remembers them (see :mod:`storage._service`), including one created by ``study.ask()``
    whose next query failed (no worker record, no heartbeat yet). The storage's session is dropped
    first: one left in a failed transaction would refuse every later query.
    """
    storage = study._storage
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if isinstance(backend, RDBStorage):
        backend.remove_session()
    return backend.running_trial_ids() if isinstance(backend, OwnTrials) else []
