"""The benchmark scripts under bench/ are files, not modules of a package: load one by name."""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

from clihelpers import REPO


def load_bench(name: str) -> Iterator[ModuleType]:
    """``bench/<name>.py`` as module ``bench_<name>`` for the duration of a fixture."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
