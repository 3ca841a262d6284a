"""Which of this repository's packages may import which: stated here, checked on every run.

Allowed directions (anything else from ``storage``, ``spaces`` or the leaves into ``search`` is a back-edge):

- the leaves ``search`` (the package itself), ``search.errors``, ``search.record`` and ``search._lazy``
  import nothing of ours (``search/__init__`` only the leaves ``search.errors`` and ``search._lazy``, which
  loads its ``load_predictor`` on first use), so any package may use them;
- ``storage`` -> ``storage`` and the leaves;
- ``spaces`` -> ``spaces``, the leaves, and ``search.model``'s keras-free public names
  (:data:`KERAS_FREE_MODEL_NAMES`, taken from the package ``search.model``, never from its private
  modules); ``search.config`` is not needed by any space and so is not allowed;
- the keras-free core of the model factory (:data:`MODEL_CORE`) -> the leaves and ``search.model``;
- the rest of ``search`` may import all of the above.

An import counts wherever it is written: at module level, inside a function (a lazy import: it runs
later, but it is still a dependency), under ``TYPE_CHECKING`` and as an ``importlib.import_module`` /
``__import__`` call. A call whose module name is computed cannot be checked statically, so it is refused
unless it is one of the :data:`ALLOWANCES`, each with its reason; an allowance nothing uses any more fails
too, so the list stays exact.

Two kinds of check: static (``ast`` over every ``.py`` of ``storage/``, ``spaces/`` and ``search/``: the
rules above, no import cycle across packages, and what runs on import), and in a fresh interpreter (what
``sys.modules`` holds after importing each package, and after ``python -m search.launch --help``: no
keras, no tensorflow). The self-checks at the end feed the checker a synthetic tree with back-edges, so
it is known to fail when it should.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "spaces", "storage")
LEAVES = frozenset({"search", "search.errors", "search.record", "search._lazy"})
MODEL_CORE = frozenset({"search.model", "search.model._memory", "search.model._params", "search.model._presets"})
#: The public names of ``search.model`` that load without keras (checked in a child interpreter below).
KERAS_FREE_MODEL_NAMES = frozenset({"ATTENTION_POSITIONS", "DEFAULT_MEMORY_BUDGET_BYTES", "DEFAULT_PARAMS",
                                    "PRESETS", "InputShapes", "any_length", "estimate_attention_memory",
                                    "recorded_any_length", "resolve_params"})
#: What no keras-free process may have loaded.
KERAS_MODULES = ("keras", "tensorflow", "keras_tuner", "tf_keras")
DYNAMIC = "<computed>"  # the target of an import_module call whose module name is not a literal

TOP, LAZY, TYPE_ONLY, CALL = "top", "lazy", "type-only", "import_module"


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` (``from target import names``), at ``line``."""

    source: str
    target: str
    names: tuple[str, ...]
    kind: str  # TOP (runs on import), LAZY (in a function), TYPE_ONLY (under TYPE_CHECKING), CALL
    function: str | None  # the enclosing function, "Class.method"; None at module level
    line: int

    def __str__(self) -> str:
        what = f"{self.target} ({', '.join(self.names)})" if self.names else self.target
        where = f" in {self.function}" if self.function else ""
        return f"{self.source}:{self.line}{where}: {self.kind} import of {what}"


@dataclass(frozen=True)
class Allowance:
    """A documented exception to the rules: the edges of ``source`` it covers, and why it is right."""

    source: str
    target: str
    kind: str
    function: str | None
    names: tuple[str, ...]
    reason: str

    def covers(self, edge: Edge) -> bool:
        return (edge.source == self.source and edge.target == self.target and edge.kind == self.kind
                and (self.function is None or edge.function == self.function)
                and set(edge.names) <= set(self.names))


ALLOWANCES: tuple[Allowance, ...] = (
    Allowance("spaces", DYNAMIC, CALL, "get_space", (),
              "hypermodel: specs. The space registry imports the keras-tuner bridge's space only when such a "
              "study is asked for, by name from spaces.SPEC_SPACES (pinned in test_spec_spaces_are_the_one_"
              "dynamic_exception); a static import would be the cycle spaces -> search.kerastuner -> spaces."),
    Allowance("spaces._base", "search.model", LAZY, "SearchSpace.build", ("build_model",),
              "the contract's default build is the model factory's; it runs only in a worker, which trains "
              "with keras anyway, and search.model._factory imports nothing of spaces."),
    Allowance("spaces._base", "search.model", LAZY, "SearchSpace.fit", ("fit_model",),
              "the contract's default training is the model factory's; as with build, only a worker runs it."),
    Allowance("spaces._base", "search.model", TYPE_ONLY, None, ("BuiltModel",),
              "the annotation of build/fit; never imported at run time."),
    Allowance("search._lazy", DYNAMIC, CALL, "lazy_names.__getattr__", (),
              "PEP 562 names loaded on first use from a package's own table: search.model's keras names, all "
              "inside search.model (pinned in test_model_lazy_names_stay_in_the_model_package), "
              "search.kerastuner's, inside search.kerastuner, and the package search's load_predictor, from "
              "search._serving (pinned in test_search_lazy_names_are_the_predictor)."),
)


# -- the static analysis ------------------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path, packages: Sequence[str] = PACKAGES) -> Iterator[Path]:
    for package in packages:
        yield from sorted((root / package).rglob("*.py"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_import_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ("import_module", "__import__")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, source: str, is_package: bool, modules: frozenset[str]) -> None:
        self.source, self.is_package, self.modules = source, is_package, modules
        self.edges: list[Edge] = []
        self.scope: list[str] = []  # enclosing classes and functions
        self.in_function = 0
        self.type_only = 0

    def _kind(self) -> str:
        return TYPE_ONLY if self.type_only else LAZY if self.in_function else TOP

    def _function(self) -> str | None:
        return ".".join(self.scope) if self.in_function else None

    def _add(self, target: str, names: tuple[str, ...], line: int, kind: str | None = None) -> None:
        self.edges.append(Edge(self.source, target, names, kind or self._kind(), self._function(), line))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, (), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.source.split(".") if self.is_package else self.source.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        names = tuple(a.name for a in node.names)
        submodules = [n for n in names if f"{base}.{n}" in self.modules]  # from search import errors
        plain = tuple(n for n in names if n not in submodules)
        if plain or not submodules:
            self._add(base, plain, node.lineno)
        for name in submodules:
            self._add(f"{base}.{name}", (), node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_import_call(node):
            arg = node.args[0] if node.args else None
            target = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else DYNAMIC
            self._add(target, (), node.lineno, CALL)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_only += 1
            for child in node.body:
                self.visit(child)
            self.type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, function: bool) -> None:
        for decorator in node.decorator_list:  # decorators run where the definition is
            self.visit(decorator)
        self.scope.append(node.name)
        self.in_function += function
        for child in node.body:
            self.visit(child)
        self.in_function -= function
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, function=False)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, function=True)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scoped(node, function=True)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.in_function += 1
        self.generic_visit(node)
        self.in_function -= 1


def scan(root: Path, packages: Sequence[str] = PACKAGES) -> tuple[frozenset[str], list[Edge]]:
    """Every module of ``packages`` under ``root``, and every import written in them."""
    files = list(python_files(root, packages))
    modules = frozenset(module_name(f, root) for f in files)
    edges: list[Edge] = []
    for path in files:
        visitor = _ImportVisitor(module_name(path, root), path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        edges += visitor.edges
    return modules, edges


def is_ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _allowed(edge: Edge) -> bool:
    """The rules of the module docstring, for one edge (allowances aside)."""
    source, target = edge.source, edge.target
    if target == DYNAMIC:
        return not (source in LEAVES or source in MODEL_CORE or _in(source, "spaces") or _in(source, "storage"))
    if not is_ours(target):
        return True
    if source == "search":
        return target in ("search.errors", "search._lazy")
    if source in LEAVES:
        return False
    if _in(source, "storage"):
        return target in LEAVES or _in(target, "storage")
    if _in(source, "spaces"):
        if target in LEAVES or _in(target, "spaces"):
            return True
        return target == "search.model" and bool(edge.names) and set(edge.names) <= KERAS_FREE_MODEL_NAMES
    if source in MODEL_CORE:
        return target in LEAVES or _in(target, "search.model")
    return True  # the rest of search sits above everything


def back_edges(edges: Iterable[Edge], allowances: Sequence[Allowance] = ALLOWANCES) -> list[Edge]:
    return [e for e in edges if not _allowed(e) and not any(a.covers(e) for a in allowances)]


def _with_parents(module: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def graph(modules: frozenset[str], edges: Iterable[Edge], kinds: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (parents included), by the edges of ``kinds``."""
    kinds = set(kinds)
    out: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        if e.kind in kinds and e.target != DYNAMIC:
            out[e.source].update(m for m in _with_parents(e.target) if m in modules and m != e.source)
    return out


def closure(start: Iterable[str], out: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [m for s in start for m in _with_parents(s)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += out.get(module, ())
    return seen


def cross_package_cycles(out: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components (Tarjan) that hold modules of more than one package."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # recursion depth is bounded by the import chain length
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in out.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for v in sorted(out):
        if v not in index:
            connect(v)
    return [c for c in components if len({m.split(".")[0] for m in c}) > 1]


@pytest.fixture(scope="module")
def repo_scan() -> tuple[frozenset[str], list[Edge]]:
    return scan(REPO)


def test_the_scan_sees_every_package(repo_scan: tuple[frozenset[str], list[Edge]]) -> None:
    modules, edges = repo_scan
    assert {"storage", "spaces", "spaces._base", "search.errors", "search.record", "search.launch"} <= modules
    assert any(e.source == "spaces._base" and e.target == "search.model" for e in edges)


@pytest.mark.parametrize("package", ["storage", "spaces", "search"])
def test_no_back_edge(package: str, repo_scan: tuple[frozenset[str], list[Edge]]) -> None:
    """``storage``, ``spaces``, the leaves and the model core import only what the module docstring allows."""
    _, edges = repo_scan
    bad = back_edges(e for e in edges if _in(e.source, package))
    assert not bad, "imports against the allowed directions (see tests/test_imports.py):\n" + "\n".join(map(str, bad))


def test_every_allowance_is_used(repo_scan: tuple[frozenset[str], list[Edge]]) -> None:
    _, edges = repo_scan
    unused = [a for a in ALLOWANCES if not any(a.covers(e) for e in edges)]
    assert not unused, f"allowances nothing needs any more (remove them): {unused}"


def test_no_import_cycle_across_packages(repo_scan: tuple[frozenset[str], list[Edge]]) -> None:
    """Every import, lazy and type-only included, minus the documented dynamic ones: no cycle between
    ``search``, ``spaces`` and ``storage``."""
    modules, edges = repo_scan
    cycles = cross_package_cycles(graph(modules, edges, (TOP, LAZY, TYPE_ONLY, CALL)))
    assert not cycles, f"import cycles across packages: {cycles}"


@pytest.mark.parametrize(("root", "allowed"), [
    ("search.errors", LEAVES),
    ("search.record", LEAVES),
    ("storage", LEAVES | {"storage.*"}),
    ("search.model", LEAVES | MODEL_CORE),
    ("spaces", LEAVES | MODEL_CORE | {"spaces.*"}),
])
def test_what_runs_on_import(root: str, allowed: frozenset[str],
                             repo_scan: tuple[frozenset[str], list[Edge]]) -> None:
    """What importing ``root`` runs (module-level imports, followed): only allowed modules of ours, no keras."""
    modules, edges = repo_scan
    loaded = closure([root], graph(modules, edges, (TOP,)))
    assert ours_outside(loaded, allowed) == []
    third_party = {e.target.split(".")[0] for e in edges if e.source in loaded and e.kind == TOP}
    assert not third_party & set(KERAS_MODULES)


# -- the dynamic imports, pinned --------------------------------------------------------------------------------


def test_spec_spaces_are_the_one_dynamic_exception() -> None:
    """The registry's computed import reaches exactly the keras-tuner bridge's space, and only on demand."""
    import spaces

    assert spaces.SPEC_SPACES == {"hypermodel:": "search.kerastuner._space:HyperModelSpace"}
    for target in spaces.SPEC_SPACES.values():
        module = target.partition(":")[0]
        assert (REPO / Path(*module.split("."))).with_suffix(".py").is_file()


def test_model_lazy_names_stay_in_the_model_package() -> None:
    import search.model

    lazy = search.model._LAZY
    assert all(_in(module, "search.model") for module in lazy.values())
    assert set(lazy) | KERAS_FREE_MODEL_NAMES == set(search.model.__all__)
    assert not set(lazy) & KERAS_FREE_MODEL_NAMES


def test_search_lazy_names_are_the_predictor() -> None:
    import search

    assert search._LAZY == {"load_predictor": "search._serving"}
    assert set(search._LAZY) <= set(search.__all__)


# -- in a fresh interpreter -----------------------------------------------------------------------------------

CHILD = """
import json, runpy, sys
code, argv = sys.argv[1], sys.argv[2:]
if argv:
    sys.argv = argv
    try:
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
else:
    exec(code)
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def loaded_modules(code: str = "", argv: Sequence[str] = ()) -> tuple[list[str], str]:
    """``sys.modules`` of a fresh interpreter after running ``code`` (or ``python -m argv...``), and its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-c", CHILD, code, *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    head, _, tail = done.stdout.rpartition("MODULES ")
    return json.loads(tail), head


def keras_loaded(modules: Iterable[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in KERAS_MODULES)


def assert_no_keras(modules: Iterable[str]) -> None:
    loaded = keras_loaded(modules)
    assert not loaded, f"{len(loaded)} keras/tensorflow modules loaded, e.g. {loaded[:5]}"


def matches(module: str, allowed: Iterable[str]) -> bool:
    """``module`` is one of ``allowed``: a module by name, or ``package.*`` (the package and its modules)."""
    return any(module == a or (a.endswith(".*") and _in(module, a[:-2])) for a in allowed)


def ours_outside(modules: Iterable[str], allowed: Iterable[str]) -> list[str]:
    allowed = tuple(allowed)
    return sorted(m for m in modules if is_ours(m) and not matches(m, allowed))


SUGGEST_EVERY_SPACE = """
import optuna, spaces
optuna.logging.set_verbosity(optuna.logging.ERROR)
contexts = {"ablation": {"base_params": {"batch_size": 32}, "replicates": 2}}
for name in spaces.SPACES:
    study = optuna.create_study()
    space = spaces.get_space(name)
    space.suggest(study.ask(), contexts.get(name, {}))
"""


@pytest.mark.parametrize(("code", "allowed"), [
    ("import search.errors, search.record", LEAVES),
    ("import storage", LEAVES | {"storage.*"}),
    ("import search.model", LEAVES | MODEL_CORE),
    (f"from search.model import {', '.join(sorted(KERAS_FREE_MODEL_NAMES))}", LEAVES | MODEL_CORE),
    ("import spaces", LEAVES | MODEL_CORE | {"spaces.*"}),
    (SUGGEST_EVERY_SPACE, LEAVES | MODEL_CORE | {"spaces.*"}),
], ids=["leaves", "storage", "model", "model-names", "spaces", "spaces-suggest"])
def test_import_loads_only_allowed_modules(code: str, allowed: frozenset[str]) -> None:
    modules, _ = loaded_modules(code)
    assert ours_outside(modules, allowed) == []
    assert_no_keras(modules)


def test_launch_help_imports_no_keras() -> None:
    modules, out = loaded_modules(argv=["search.launch", "--help"])
    assert out.startswith("usage: python -m search.launch")
    assert_no_keras(modules)


# -- self-checks: the checker fails when it should ---------------------------------------------------------------

SYNTHETIC = {
    "search/__init__.py": "from search.errors import SearchError\n",
    "search/errors.py": "class SearchError(Exception):\n    pass\n",
    "search/record.py": "from search.objective import run\n",  # a leaf reaching up
    "search/objective.py": "import spaces.bad\n",
    "search/model/__init__.py": "from search.model._params import InputShapes\n",
    "search/model/_params.py": "class InputShapes:\n    pass\n",
    "search/kerastuner/__init__.py": "import spaces.bad\n",
    "storage/__init__.py": "from search.errors import SearchError\n",
    "storage/bad.py": "def f():\n    from search.objective import run\n",  # lazy, still a back-edge
    "spaces/__init__.py": "import importlib\n\ndef load(name):\n    return importlib.import_module(name)\n",
    "spaces/ok.py": ("from typing import TYPE_CHECKING\nfrom search.errors import SearchError\n"
                     "from search.model import InputShapes\n"
                     "if TYPE_CHECKING:\n    from search.model import BuiltModel\n"),
    "spaces/bad.py": ("from search import kerastuner\nfrom search.model._params import InputShapes\n"
                      "class Space:\n    def build(self):\n        from search.model import build_model\n"),
}


@pytest.fixture
def synthetic_scan(tmp_path: Path) -> tuple[frozenset[str], list[Edge]]:
    for name, text in SYNTHETIC.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return scan(tmp_path)


def test_self_check_back_edges_are_found(synthetic_scan: tuple[frozenset[str], list[Edge]]) -> None:
    _, edges = synthetic_scan
    found = {(e.source, e.target, e.kind) for e in back_edges(edges)}
    assert found == {
        ("search.record", "search.objective", TOP),
        ("storage.bad", "search.objective", LAZY),
        ("spaces", DYNAMIC, CALL),  # a computed import outside get_space
        ("spaces.bad", "search.kerastuner", TOP),  # `from search import kerastuner` is the submodule
        ("spaces.bad", "search.model._params", TOP),  # a private module of the factory
        ("spaces.bad", "search.model", LAZY),  # build_model outside SearchSpace.build in spaces._base
        ("spaces.ok", "search.model", TYPE_ONLY),  # BuiltModel is allowed in spaces._base only
    }


def test_self_check_cycles_are_found(synthetic_scan: tuple[frozenset[str], list[Edge]]) -> None:
    modules, edges = synthetic_scan
    cycles = cross_package_cycles(graph(modules, edges, (TOP, LAZY, TYPE_ONLY, CALL)))
    assert ["search.kerastuner", "spaces.bad"] in cycles
    assert ["search.kerastuner", "spaces.bad"] in cross_package_cycles(graph(modules, edges, (TOP,)))
    assert cross_package_cycles(graph(modules, edges, (LAZY,))) == []


def test_self_check_closure_and_modules(synthetic_scan: tuple[frozenset[str], list[Edge]]) -> None:
    modules, edges = synthetic_scan
    loaded = closure(["search.record"], graph(modules, edges, (TOP,)))
    assert {"search.objective", "spaces.bad", "search.kerastuner"} <= loaded
    assert ours_outside(["search.errors", "search.objective", "os", "storage._url"], LEAVES | {"storage.*"}) == [
        "search.objective"]
    assert keras_loaded(["keras.src", "optuna", "tensorflow", "kerastuner_x"]) == ["keras.src", "tensorflow"]
