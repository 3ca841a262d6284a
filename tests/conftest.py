"""Shared test fixtures: an isolated cache for every run."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test run gets its own array/embedding cache (shared by the tests of the run)."""
    os.environ["SEARCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("search-cache"))
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
