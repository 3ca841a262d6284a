"""Shared test fixtures: an isolated cache for every run; a reachable PostgreSQL and unique study names."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workerhelpers import delete_study, postgres_url_or_skip


TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (what scripts/test.sh runs): the tests of one file
    run in one worker, so a module's fixture (a launched study, say) is built once; the report tests
    share one session fixture (a study of every attention position), so their folder is one group."""
    for item in items:
        relative = item.path.resolve().relative_to(TESTS)
        group = "report" if relative.parts[:2] == ("search", "report") else relative.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test run gets its own array/embedding cache (shared by the tests of the run)."""
    os.environ["SEARCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("search-cache"))
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """``$SEARCH_TEST_POSTGRES_URL`` or the local server; unreachable: skip, or fail when CI=true."""
    return postgres_url_or_skip()


@pytest.fixture
def pg_study_name(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A study name no other test (or run) uses; the study is deleted afterwards if it exists."""
    name = f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:10]}"
    yield name
    delete_study(postgres_url, name)
