"""Readers open a store that exists: a missing, empty or foreign SQLite file is refused, and nothing is
written -- not the file, not a schema, not a write-ahead log left beside it."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from search.errors import StorageError
from storage import close_storage, create_storage, open_existing_storage, require_existing_store


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<folder>"
            for p in sorted(folder.rglob("*"))}


def _foreign(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (text)")
    connection.commit()
    connection.close()


CASES = {
    "missing": (None, "does not exist"),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "not-sqlite": (lambda p: p.write_bytes(b"hello, world\n" * 10), "cannot read"),
    "foreign": (_foreign, "without studies (no Optuna tables)"),
    "folder": (lambda p: p.mkdir(), "is not a file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path: Path, case: str) -> None:
    make, needle = CASES[case]
    path = tmp_path / "studies.db"
    if make is not None:
        make(path)
    before = _files(tmp_path)
    with pytest.raises(StorageError) as info:
        open_existing_storage(f"sqlite:///{path}", source="--storage")
    message = str(info.value)
    assert message.startswith("--storage: ") and needle in message and "\n" not in message, message
    assert "expected the SQLite file of a study store" in message
    assert _files(tmp_path) == before


def test_a_store_opens_and_checking_it_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    close_storage(create_storage(url, heartbeat_interval=None))
    before = _files(tmp_path)
    require_existing_store(url)
    storage = open_existing_storage(url)
    assert storage.get_all_studies() == []
    close_storage(storage)
    assert _files(tmp_path) == before  # no -wal / -shm left beside it


def test_server_urls_are_left_to_the_server() -> None:
    require_existing_store("postgresql+psycopg://user@127.0.0.1:1/db")  # not checked here: nothing raised
