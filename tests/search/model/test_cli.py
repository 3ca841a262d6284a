"""``python -m search.model describe``: good input describes the model; bad input is one line and exit 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from search._cli import run_main
from search.model.__main__ import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")

SMALL = ["--seq-len", "20", "--vocab", "100", "--labels", "5", "--embedding-dim", "8"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "search.model", *args], capture_output=True, text=True, timeout=120)


def test_describe_a_preset_prints_summary_counts_diagnostics_and_memory(capsys) -> None:
    assert run_main(main, ["describe", "--preset", "seed_rcnn_attention", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "pooled_attention" in out and "RaffelAttention" in out  # the layer summary
    assert "trainable params:" in out and "non-trainable params:" in out
    assert "DEGENERATE" in out and "over 1 step" in out
    assert "activations/batch:" in out and "attention scores/batch:" in out


def test_describe_json_with_params(capsys) -> None:
    argv = ["describe", "--param", "attention_position=label", "--param", "hidden_units=8",
            "--param", "embedding_mode=random", "--param", "conv_kernel_sizes=1,2", "--json", *SMALL]
    assert run_main(main, argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"]["attention_position"] == "label" and report["params"]["hidden_units"] == 8
    d = report["diagnostics"]
    assert d["degenerate_attention"] is False and d["trainable_params"] > 0
    assert d["attention_layers"][0]["name"] == "label_attention" and d["attention_layers"][0]["steps"] == 20
    assert {"name": "output", "type": "EinsumDense", "output_shape": [None, 5], "params": 16 * 5 + 5} \
        in report["layers"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["describe", "--preset", "seed_answer_mha"], "refused before training"),  # 17.2 GiB of scores
        (["describe", "--param", "hidden_units=lots"], "field 'hidden_units'"),
        (["describe", "--param", "attention_place=label"], "field 'attention_place'"),
        (["describe", "--param", "attention_position=after"], "expected one of none, embedding"),
        (["describe", "--param", "rnn_layers"], "expected KEY=VALUE"),
        (["describe", "--preset", "nope"], "invalid choice"),
        (["describe", "--param", "embedding_mode=random", "--seq-len", "0"], "field 'seq_len'"),
        (["describe", "--memory-budget", "-1"], "--memory-budget: got -1; expected a positive number of bytes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, expected) -> None:
    result = _run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_good_input_in_a_fresh_process() -> None:
    result = _run("describe", "--param", "embedding_mode=random", "--param", "attention_position=conv", "--json",
                  *SMALL)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["diagnostics"]["attention_position"] == "conv"
