"""Names a package loads on first use (PEP 562), so importing the package never imports keras.

``search.model`` and ``search.kerastuner`` are imported by keras-free processes (the launcher, a
configuration check) that use only their pure-Python names; what needs keras or keras-tuner is loaded
the first time it is asked for. A leaf: imports only the standard library.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, table: Mapping[str, str], namespace: dict[str, Any]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``: ``table`` maps each lazy name to the
    module that defines it; a loaded value is kept in ``namespace`` (the package's globals)."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
