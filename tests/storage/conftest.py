"""Fixtures for the storage tests: the environment of a child Python (PostgreSQL ones are in tests/conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest


REPO_ROOT = Path(__file__).resolve().parents[2]

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for a child Python that must import this checkout's packages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("OPTUNA_STORAGE", None)
    return env
