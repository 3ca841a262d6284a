"""Where studies live: storage URL resolution, engine options, heartbeats, artifact store.

This package imports only optuna, sqlalchemy, the standard library, :mod:`search.errors` and
:mod:`search.record` (the trial-record schema, for the failure reason it writes).
"""
from __future__ import annotations

from storage._artifacts import artifact_dir_for, artifact_store_for
from storage._engine import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RETRY,
    close_storage,
    create_storage,
    open_existing_storage,
    require_existing_store,
)
from storage._retry import has_retry
from storage._stale import fail_and_retry, fail_stale_trials, requeue
from storage._url import (
    DEFAULT_STORAGE_URL,
    STORAGE_ENV_VAR,
    mask_url,
    resolve_storage_url,
    sqlite_path,
    storage_source,
)

__all__ = [
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENV_VAR",
    "resolve_storage_url",
    "mask_url",
    "sqlite_path",
    "create_storage",
    "open_existing_storage",
    "require_existing_store",
    "storage_source",
    "close_storage",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_MAX_RETRY",
    "artifact_store_for",
    "artifact_dir_for",
    "fail_stale_trials",
    "fail_and_retry",
    "requeue",
    "has_retry",
]
