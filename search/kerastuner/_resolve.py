"""``module:attr`` -> a keras-tuner hypermodel, with one-line errors for every bad spec.

Importing a user's module imports keras, so :func:`check_spec` can run the import in a child process:
the launcher (which must not import keras) still refuses a bad spec before it writes to the store.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search.errors import StudyConfigError

__all__ = ["PREFIX", "EXPECTED", "parse_spec", "load_object", "spec_of", "check_spec", "spec_error"]

PREFIX = "hypermodel:"  # a study space named "hypermodel:<spec>" runs a keras-tuner hypermodel
EXPECTED = ("expected module:attr naming a keras_tuner.HyperModel (subclass or instance) or a build(hp) "
            "function, e.g. mypkg.tuning:MyHyperModel or tuning.py:build_model")
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ATTR = _MODULE
_SOURCE = "--hypermodel"


def spec_error(spec: str, why: str, expected: str = EXPECTED) -> StudyConfigError:
    return StudyConfigError(f"got '{spec}'{': ' + why if why else ''}; {expected}", source=_SOURCE)


def parse_spec(spec: Any) -> tuple[str, str]:
    """Split ``module:attr`` (or ``path/to/file.py:attr``) without importing anything."""
    if not isinstance(spec, str):
        raise spec_error(repr(spec), f"a {type(spec).__name__}, not a string")
    module, sep, attr = spec.strip().rpartition(":")
    if not sep or not module or not attr:
        raise spec_error(spec, "no ':' between module and attribute" if not sep else "empty module or attribute")
    if not _ATTR.match(attr):
        raise spec_error(spec, f"'{attr}' is not a Python attribute name")
    if not (module.endswith(".py") or _MODULE.match(module)):
        raise spec_error(spec, f"'{module}' is neither a dotted module name nor a .py file")
    return module, attr


def _import_module(spec: str, module: str) -> Any:
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise spec_error(spec, f"file {module} not found")
        name = f"_search_hypermodel_{path.stem}"
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise spec_error(spec, f"cannot load {module}")
        mod = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = mod
        try:
            loader_spec.loader.exec_module(mod)
        except (Exception, SystemExit) as exc:  # the user's module failed to import: say why, in one line
            sys.modules.pop(name, None)
            raise spec_error(spec, f"importing {module} raised {type(exc).__name__}: {_first_line(exc)}") from None
        return mod
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m`: the working directory is importable
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise spec_error(spec, f"no module named '{exc.name}'") from None
        raise spec_error(spec, f"importing {module} raised ModuleNotFoundError: {_first_line(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise spec_error(spec, f"importing {module} raised {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def load_object(spec: str) -> Any:
    """Import ``module`` and return ``attr`` (dotted attributes allowed)."""
    module, attr = parse_spec(spec)
    obj = _import_module(spec, module)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise spec_error(spec, f"module '{module}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


def spec_of(obj: Any) -> str:
    """``module:qualname`` of a hypermodel object (its class for an instance), for the study's space name."""
    target = obj if isinstance(obj, type) or inspect.isroutine(obj) else type(obj)
    module = getattr(target, "__module__", None) or "__main__"
    name = str(getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or type(target).__name__)
    return f"{module}:{name.replace('<locals>.', '').replace('<', '').replace('>', '')}"


#: Specs (with their --set values and label count) this process has checked: a launcher checks the spec
#: with the study's values first, and the space's own check then finds it done.
_CHECKED: set[str] = set()


def check_spec(spec: str, *, in_process: bool | None = None, timeout: float = 300,
               fixed: Mapping[str, Any] | None = None, n_labels: int | None = None) -> None:
    """Refuse a bad spec with a one-line :class:`StudyConfigError`: one that cannot be loaded, or whose
    ``build(hp)`` fails (or returns no compiled model) on keras-tuner's default values and ``fixed``.

    In a process that has not imported keras (the launcher), the check runs in a child process so that
    this one stays light; elsewhere it runs here. A spec this process checked already passes at once.
    """
    module, _ = parse_spec(spec)
    if spec in _CHECKED:
        return
    if module.endswith(".py") and not Path(module).expanduser().is_file():
        raise spec_error(spec, f"file {module} not found")  # no need to start a child process to say so
    if in_process is None:
        in_process = "keras" in sys.modules
    if in_process:
        from search.kerastuner._check import check_build

        check_build(spec, fixed, n_labels)
        _CHECKED.add(spec)
        return
    options = json.dumps({"fixed": dict(fixed or {}), "n_labels": n_labels})
    proc = subprocess.run([sys.executable, "-m", "search.kerastuner._check", spec, options], capture_output=True,
                          text=True, timeout=timeout, cwd=os.getcwd(), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if proc.returncode == 0:
        _CHECKED.add(spec)
        return
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    if lines:
        raise StudyConfigError(lines[-1][len("error: "):].split(": ", 1)[-1], source=_SOURCE)
    raise spec_error(spec, f"checking it failed (exit status {proc.returncode}): {proc.stderr.strip()[-300:]}")
