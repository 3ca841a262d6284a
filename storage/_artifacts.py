"""Where a study's artifacts (plots, saved models) live: Optuna's file-system artifact store."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore

from search.errors import StorageError
from storage._url import sqlite_path as _sqlite_path

__all__ = ["ARTIFACTS_ENV_VAR", "DEFAULT_ARTIFACTS_DIR", "artifact_dir_for", "artifact_store_for"]

ARTIFACTS_ENV_VAR = "SEARCH_ARTIFACTS_DIR"
DEFAULT_ARTIFACTS_DIR = "artifacts"


def artifact_dir_for(url: str, root: str | None = None, *, environ: Mapping[str, str] | None = None) -> Path:
    """The artifact folder for the storage at ``url`` (absolute; not created).

    ``root`` wins. Otherwise a SQLite file gets a folder beside it (``studies.db`` ->
    ``studies_artifacts/``), and a server database, a gRPC proxy or an in-memory SQLite database gets
    ``$SEARCH_ARTIFACTS_DIR``, else ``./artifacts``.
    """
    if root is not None:
        if not str(root).strip():
            raise StorageError("expected a folder, got an empty path", source="artifacts folder")
        return Path(root).expanduser().resolve()
    sqlite_path = _sqlite_path(url)
    if sqlite_path is not None:
        sqlite_path = sqlite_path.expanduser().resolve()
        return sqlite_path.with_name(f"{sqlite_path.stem}_artifacts")
    env = os.environ if environ is None else environ
    return Path(env.get(ARTIFACTS_ENV_VAR, "").strip() or DEFAULT_ARTIFACTS_DIR).expanduser().resolve()


def artifact_store_for(
    url: str, root: str | None = None, *, environ: Mapping[str, str] | None = None
) -> FileSystemArtifactStore:
    """Optuna's :class:`FileSystemArtifactStore` on :func:`artifact_dir_for`, the folder created.

    The folder is created because Optuna's store writes into it without creating it.
    """
    folder = artifact_dir_for(url, root, environ=environ)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or exc
        raise StorageError(f"cannot create '{folder}': {reason}", source="artifacts folder") from exc
    if not os.access(folder, os.W_OK):
        raise StorageError(f"'{folder}' is not writable", source="artifacts folder")
    return FileSystemArtifactStore(folder)
