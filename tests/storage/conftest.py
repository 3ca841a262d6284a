"""Fixtures for the storage tests: a reachable PostgreSQL URL, unique study names, subprocess env."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from storage import create_storage
from workerhelpers import postgres_url_or_skip

REPO_ROOT = Path(__file__).resolve().parents[2]

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for a child Python that must import this checkout's packages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("OPTUNA_STORAGE", None)
    return env


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """``$SEARCH_TEST_POSTGRES_URL`` or the local server; unreachable: skip, or fail when CI=true."""
    return postgres_url_or_skip()


@pytest.fixture
def pg_study_name(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A study name no other test (or run) uses; the study is deleted afterwards if it exists."""
    name = f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:10]}"
    yield name
    storage = create_storage(postgres_url, heartbeat_interval=None)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    finally:
        storage.engine.dispose()
