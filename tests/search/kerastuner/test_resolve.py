"""``module:attr`` specs: what loads, and the one-line refusal of everything else."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras_tuner
import pytest

from search.errors import StudyConfigError
from search.kerastuner import HyperModelSpace, check_spec, get_space, load_hypermodel, parse_spec
from search.kerastuner._resolve import PREFIX

from clihelpers import REPO

DOC = Path(__file__).resolve().parent / "doc_hypermodels.py"


@pytest.mark.parametrize("spec, needle", [
    ("nocolon", "no ':'"),
    ("mod:", "empty module or attribute"),
    (":attr", "empty module or attribute"),
    ("mod:not an attr", "not a Python attribute name"),
    ("bad-module:attr", "neither a dotted module name nor a .py file"),
])
def test_malformed_specs_are_refused_without_importing(spec: str, needle: str) -> None:
    with pytest.raises(StudyConfigError) as info:
        parse_spec(spec)
    message = str(info.value)
    assert message.startswith("--hypermodel: got ") and needle in message and "expected module:attr" in message
    assert "\n" not in message


def test_what_loads() -> None:
    assert isinstance(load_hypermodel(f"{DOC}:build_model"), keras_tuner.HyperModel)  # a build(hp) function
    assert type(load_hypermodel(f"{DOC}:MyHyperModel")).__name__ == "MyHyperModel"  # a subclass: instantiated
    instance = load_hypermodel(f"{DOC}:hypermodel_instance")
    assert instance is load_hypermodel(f"{DOC}:hypermodel_instance")  # an instance: itself


def test_what_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('needs a GPU')\n")
    needs_args = tmp_path / "needs_args.py"
    needs_args.write_text("import keras_tuner\nclass H(keras_tuner.HyperModel):\n"
                          "    def __init__(self, n):\n        super().__init__()\n")
    cases = [
        (f"{DOC}:nothing_here", "has no attribute 'nothing_here'"),
        (f"{DOC}:not_a_hypermodel", "a int object"),
        (f"{DOC}:VOCAB", "a int object"),
        (f"{tmp_path / 'missing.py'}:x", "not found"),
        (f"{broken}:x", "raised ImportError: needs a GPU"),
        (f"{needs_args}:H", "H() needs arguments"),
        ("no_such_module_xyz.sub:thing", "no module named 'no_such_module_xyz'"),
        ("json:dumps", None),  # any callable is taken as build(hp): loads (and would fail in its trial)
        ("collections:OrderedDict", "not a keras_tuner.HyperModel subclass"),
    ]
    for spec, needle in cases:
        if needle is None:
            load_hypermodel(spec)
            continue
        with pytest.raises(StudyConfigError) as info:
            load_hypermodel(spec)
        assert needle in str(info.value) and "\n" not in str(info.value), (spec, str(info.value))


def test_check_spec_in_a_child_process_keeps_this_one_light() -> None:
    with pytest.raises(StudyConfigError, match="has no attribute 'nope'"):
        check_spec(f"{DOC}:nope", in_process=False)


def test_space_names_and_lookup() -> None:
    space = get_space(f"{PREFIX}{DOC}:build_model")
    assert isinstance(space, HyperModelSpace) and space.name == f"hypermodel:{DOC}:build_model"
    assert get_space("attn").name == "attn"
    with pytest.raises(StudyConfigError, match="unknown study space"):
        get_space("nope")


def test_import_does_not_load_keras() -> None:
    code = ("import sys, search.kerastuner as k; k.get_space('hypermodel:a.b:c'); "
            "sys.exit(int('keras' in sys.modules or 'tensorflow' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
