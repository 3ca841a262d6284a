"""Usage errors of the smaller entry points are one ``error:`` line naming the flag, exit status 2.

argparse's own handling prints the whole usage block before its message; these commands report a bad
flag the way every other refusal of the project is reported. Each case runs ``main(argv)`` as
``python -m`` does (through ``run_main``), so nothing heavier than argument parsing is imported.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from clihelpers import run_cli
from search._cli import parse_key_values, run_main
from search.data.__main__ import main as data_main
from search.data.debtags import main as debtags_main
from search.errors import InputError, ModelConfigError
from search.kerastuner.__main__ import main as kerastuner_main
from search.model.__main__ import main as model_main
from search.model._params import parse_param_value

Main = Callable[[Sequence[str] | None], int]

SPEC = ["--hypermodel", "tuning:build_model", "--study", "s"]

CASES: list[tuple[str, Main, list[str], list[str]]] = [
    # (case id, main, argv, what the one line must name)
    ("kerastuner-required", kerastuner_main, ["--study", "s"], ["--hypermodel", "required"]),
    ("kerastuner-int", kerastuner_main, [*SPEC, "--trials", "many"], ["--trials", "'many'"]),
    ("kerastuner-choice", kerastuner_main, [*SPEC, "--pruner", "sometimes"], ["--pruner", "'sometimes'"]),
    ("kerastuner-unknown", kerastuner_main, [*SPEC, "--trails", "3"], ["--trails"]),
    ("kerastuner-set", kerastuner_main, [*SPEC, "--set", "units"], ["--set", "'units'", "KEY=VALUE"]),
    ("kerastuner-fit", kerastuner_main, [*SPEC, "--fit", "=64"], ["--fit", "'=64'", "KEY=VALUE"]),
    ("data-no-command", data_main, [], ["command", "required"]),
    ("data-command", data_main, ["inspect", "debtags50"], ["'inspect'", "info"]),
    ("data-no-dataset", data_main, ["info"], ["dataset", "required"]),
    ("data-int", data_main, ["info", "debtags50", "--max-len", "long"], ["--max-len", "'long'"]),
    ("data-unknown", data_main, ["info", "debtags50", "--words", "9"], ["--words"]),
    ("debtags-command", debtags_main, ["make"], ["'make'", "build"]),
    ("debtags-no-value", debtags_main, ["build", "--lists"], ["--lists", "expected one argument"]),
    ("debtags-unknown", debtags_main, ["build", "--output", "x.json.gz"], ["--output"]),
    ("model-int", model_main, ["describe", "--seq-len", "3k"], ["--seq-len", "'3k'"]),
    ("model-param", model_main, ["describe", "--param", "dropout"], ["--param", "'dropout'", "KEY=VALUE"]),
]


@pytest.mark.parametrize(("main", "argv", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_usage_error_is_one_line_and_exit_2(main: Main, argv: list[str], needles: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(main, argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err  # no usage block before the message
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert captured.out == ""


@pytest.mark.parametrize(
    ("module", "argv"),
    [("search.kerastuner", SPEC), ("search.data", ["info", "debtags50"]), ("search.data.debtags", ["build"]),
     ("search.model", ["describe"])],
)
def test_a_fresh_process_reports_an_unknown_flag_in_one_line(module: str, argv: list[str]) -> None:
    result = run_cli(module, *argv, "--no-such-flag", timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--no-such-flag" in lines[0], result.stderr
    assert result.stdout == ""


def test_key_values_are_json_where_they_parse_and_a_later_key_wins() -> None:
    got = parse_key_values(["units=64", " rate =0.5", "act=relu", "sizes=[1, 2]", "units=32"], "--set")
    assert got == {"units": 32, "rate": 0.5, "act": "relu", "sizes": [1, 2]}


def test_key_values_with_a_value_parser_keep_its_refusal() -> None:
    assert parse_key_values(["hidden_units=8"], "--param", parse_param_value) == {"hidden_units": 8}
    with pytest.raises(ModelConfigError, match="hidden_units"):
        parse_key_values(["hidden_units=lots"], "--param", parse_param_value)
    with pytest.raises(InputError, match="--param: got '=8'; expected KEY=VALUE"):
        parse_key_values(["=8"], "--param", parse_param_value)
