from __future__ import annotations

from pathlib import Path

import pytest

from search.errors import InputError, StorageError
from storage import DEFAULT_STORAGE_URL, mask_url, resolve_storage_url, sqlite_path


def test_default_when_no_flag_and_no_env() -> None:
    assert resolve_storage_url(None, {}) == DEFAULT_STORAGE_URL == "sqlite:///studies.db"


def test_env_beats_default() -> None:
    assert resolve_storage_url(None, {"OPTUNA_STORAGE": "sqlite:///env.db"}) == "sqlite:///env.db"


def test_flag_beats_env() -> None:
    env = {"OPTUNA_STORAGE": "sqlite:///env.db"}
    assert resolve_storage_url("sqlite:///flag.db", env) == "sqlite:///flag.db"


def test_empty_env_counts_as_unset() -> None:
    assert resolve_storage_url(None, {"OPTUNA_STORAGE": "  "}) == DEFAULT_STORAGE_URL


def test_reads_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTUNA_STORAGE", "sqlite:///from-os.db")
    assert resolve_storage_url() == "sqlite:///from-os.db"


def test_bare_postgresql_is_rewritten_to_psycopg3() -> None:
    assert (
        resolve_storage_url("postgresql://user:pw@db.example:5433/studies?sslmode=require", {})
        == "postgresql+psycopg://user:pw@db.example:5433/studies?sslmode=require"
    )


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///studies.db",
        "sqlite:////abs/path/studies.db",
        "sqlite://",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "mysql+pymysql://user:pw@host/db",
        "grpc://localhost:13000",
    ],
)
def test_supported_urls_pass_through(url: str) -> None:
    assert resolve_storage_url(url, {}) == url


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("redis://localhost:6379", "unsupported storage URL scheme 'redis://'"),
        ("postgresql+psycopg2://u@h/db", "unsupported storage URL scheme 'postgresql+psycopg2://'"),
        ("http://example.com", "unsupported storage URL scheme 'http://'"),
        ("journal.log", "'journal.log' is not a storage URL"),
        ("grpc://localhost", "expected grpc://HOST:PORT"),
        ("grpc://localhost:notaport", "is not a storage URL"),
        ("", "empty storage URL"),
    ],
)
def test_bad_flag_names_flag_and_expected(url: str, fragment: str) -> None:
    with pytest.raises(StorageError) as info:
        resolve_storage_url(url, {"OPTUNA_STORAGE": "sqlite:///fine.db"})
    message = str(info.value)
    assert message.startswith("--storage: ")
    assert fragment in message
    assert "expected" in message
    assert "\n" not in message
    assert isinstance(info.value, InputError)


def test_bad_env_names_the_variable() -> None:
    with pytest.raises(StorageError) as info:
        resolve_storage_url(None, {"OPTUNA_STORAGE": "mongodb://x"})
    assert str(info.value).startswith("$OPTUNA_STORAGE: unsupported storage URL scheme 'mongodb://'")
    assert "sqlite:///PATH.db" in str(info.value)


def test_bad_scheme_error_masks_password() -> None:
    with pytest.raises(StorageError) as info:
        resolve_storage_url("redis://admin:hunter2@cache:6379", {})
    assert "hunter2" not in str(info.value)
    assert "admin:***@cache" in str(info.value)


@pytest.mark.parametrize(
    "url, masked",
    [
        ("postgresql+psycopg://user:s3cret@host:5432/db", "postgresql+psycopg://user:***@host:5432/db"),
        ("postgresql+psycopg://user:p%40ss@host/db?sslmode=require", "postgresql+psycopg://user:***@host/db?sslmode=require"),
        ("postgresql+psycopg://user@host/db?password=s3cret", "postgresql+psycopg://user@host/db?password=***"),
        ("not a url://user:s3cret@host", "not a url://user:***@host"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///studies.db", "sqlite:///studies.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url, path",
    [
        ("sqlite:///studies.db", "studies.db"),
        ("sqlite:////srv/search/studies.db", "/srv/search/studies.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://postgres@127.0.0.1/test", None),
        ("grpc://localhost:13000", None),
    ],
)
def test_sqlite_path(url: str, path: str | None) -> None:
    assert sqlite_path(url) == (None if path is None else Path(path))
