"""Storage URL resolution: which URL (flag, environment, default), is it one we support, masking.

Precedence follows the project rule "flags beat environment variables, which beat defaults", and the
environment variable is Optuna's own ``OPTUNA_STORAGE`` (the ``optuna`` CLI reads the same one).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from search.errors import StorageError

__all__ = [
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENV_VAR",
    "STORAGE_FLAG",
    "EXPECTED_URLS",
    "ParsedStorageUrl",
    "parse_storage_url",
    "resolve_storage_url",
    "mask_url",
    "sqlite_path",
    "storage_source",
]

DEFAULT_STORAGE_URL = "sqlite:///studies.db"
STORAGE_ENV_VAR = "OPTUNA_STORAGE"
STORAGE_FLAG = "--storage"

#: What a user may give, as shown in error messages.
EXPECTED_URLS = (
    "sqlite:///PATH.db, postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DB, "
    "mysql+pymysql://USER[:PASSWORD]@HOST[:PORT]/DB or grpc://HOST:PORT"
)

# Drivers we accept as given, and bare dialect names we rewrite to the driver we ship.
_ACCEPTED_DRIVERS = frozenset({"sqlite", "postgresql+psycopg", "mysql+pymysql", "grpc"})
_REWRITTEN_DRIVERS = {"postgresql": "postgresql+psycopg"}
_SERVER_BACKENDS = frozenset({"postgresql", "mysql"})
_SQLITE_MEMORY = frozenset({None, "", ":memory:"})
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedStorageUrl:
    """A validated storage URL and what kind of store it names."""

    url: str
    backend: str  # "sqlite", "postgresql", "mysql" or "grpc"
    sqlalchemy_url: URL

    @property
    def is_grpc(self) -> bool:
        return self.backend == "grpc"

    @property
    def is_server(self) -> bool:
        """A database server (PostgreSQL, MySQL), as opposed to a SQLite file or a gRPC proxy."""
        return self.backend in _SERVER_BACKENDS

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or ``None`` (not SQLite, or an in-memory database)."""
        database = self.sqlalchemy_url.database
        if self.backend != "sqlite" or database is None or database in _SQLITE_MEMORY:
            return None
        return Path(database)


def parse_storage_url(url: str, *, source: str = "storage URL") -> ParsedStorageUrl:
    """Validate ``url``; a bare ``postgresql://`` becomes ``postgresql+psycopg://`` (psycopg 3).

    Raises :class:`StorageError` naming ``source`` (the flag or variable it came from) and the URLs
    that are expected.
    """
    text = url.strip() if isinstance(url, str) else url
    if not isinstance(text, str) or not text:
        raise StorageError(f"empty storage URL; expected {EXPECTED_URLS}", source=source)
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError):
        raise StorageError(
            f"'{mask_url(text)}' is not a storage URL; expected {EXPECTED_URLS}", source=source
        ) from None
    driver = parsed.drivername
    if driver in _REWRITTEN_DRIVERS:
        parsed = parsed.set(drivername=_REWRITTEN_DRIVERS[driver])
        text = parsed.render_as_string(hide_password=False)
    elif driver not in _ACCEPTED_DRIVERS:
        raise StorageError(
            f"unsupported storage URL scheme '{driver}://' in '{mask_url(text)}'; "
            f"expected {EXPECTED_URLS}",
            source=source,
        )
    backend = parsed.get_backend_name()
    if backend == "grpc" and (not parsed.host or parsed.port is None or parsed.database):
        raise StorageError(
            f"'{mask_url(text)}' is not a gRPC proxy address; expected grpc://HOST:PORT", source=source
        )
    return ParsedStorageUrl(url=text, backend=backend, sqlalchemy_url=parsed)


def resolve_storage_url(flag: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The storage URL to use: ``--storage`` beats ``$OPTUNA_STORAGE`` beats ``sqlite:///studies.db``.

    An empty ``$OPTUNA_STORAGE`` counts as unset; an empty ``--storage`` is an error. The URL is
    validated (see :func:`parse_storage_url`) and returned normalised.
    """
    env = os.environ if environ is None else environ
    if flag is not None:
        return parse_storage_url(flag, source=STORAGE_FLAG).url
    from_env = env.get(STORAGE_ENV_VAR, "")
    if from_env.strip():
        return parse_storage_url(from_env, source=f"${STORAGE_ENV_VAR}").url
    return DEFAULT_STORAGE_URL


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print or log.

    Uses SQLAlchemy's own rendering when the URL parses; a URL without a password is returned as
    given (SQLAlchemy's rendering would otherwise re-quote it, e.g. ``:memory:``).
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", str(url)))
    has_query_password = any(key.lower() == "password" for key in parsed.query)
    if parsed.password is None and not has_query_password:
        return url
    return _QUERY_PASSWORD.sub(r"\1***", parsed.render_as_string(hide_password=True))


def sqlite_path(url: str) -> Path | None:
    """The SQLite database file ``url`` names, or ``None`` (another database, or in-memory SQLite)."""
    return parse_storage_url(url).sqlite_path


def storage_source(flag: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Where the storage URL came from, as error messages name it: ``--storage``, ``$OPTUNA_STORAGE`` or
    ``default storage`` (the same precedence as :func:`resolve_storage_url`)."""
    if flag is not None:
        return STORAGE_FLAG
    env = os.environ if environ is None else environ
    return f"${STORAGE_ENV_VAR}" if env.get(STORAGE_ENV_VAR, "").strip() else "default storage"
