"""bench/gpu.py: skips cleanly without a GPU; its pieces run with tiny shapes on the CPU.

The full run (trials per hour with two processes, the Keras torch backend) is the slow test."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from benchhelpers import load_bench
from clihelpers import REPO

SCRIPT = REPO / "bench" / "gpu.py"


@pytest.fixture(scope="module")
def gpu() -> Iterator[ModuleType]:
    yield from load_bench("gpu")


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--cpu", "--json", str(out), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_without_a_gpu_it_says_so_and_exits_0(gpu, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(gpu, "gpu_names", lambda: [])
    assert gpu.main([]) == 0
    assert "no GPU found" in capsys.readouterr().out


def test_tiny_run_of_the_installed_keras_backend(tmp_path: Path) -> None:
    proc, result = _run(tmp_path, "--backends", "tensorflow", "--no-reference", "--no-trials")
    rows = result["rows"]
    assert [(r["backend"], r["precision"]) for r in rows] == [("tensorflow", "float32"), ("tensorflow", "mixed")]
    for r in rows:
        assert r["epoch_s"] > 0 and r["docs_per_s"] > 0 and r["cudnn"] is False  # no cuDNN on a CPU
        assert r["cudnn_calls"]["fallback"] > 0  # the probe saw the LSTMs take the generic loop
    assert rows[1]["policy"] == "mixed_float16"
    assert "| keras/tensorflow | float32 |" in proc.stdout and "n/a" in proc.stdout


def test_a_trial_is_the_services_objective(gpu) -> None:
    result = gpu.trial_child(gpu.TINY, "float32")
    assert result["trial_s"] > 0 and 0.0 <= result["value"] <= 1.0


def test_cudnn_probe_restores_what_it_patched(gpu) -> None:
    import keras.src.backend as kb

    before = kb.lstm
    with gpu.cudnn_probe("tensorflow") as counts:
        assert kb.lstm is not before and counts == {"cudnn": 0, "fallback": 0}
    assert kb.lstm is before


def test_pytorch_reference_on_the_cpu(gpu) -> None:
    pytest.importorskip("torch")  # CI does not install torch
    rows = gpu.torch_reference_child(gpu.TINY, ["float32", "mixed"], cpu=True)["rows"]
    assert [(r["name"], r["precision"]) for r in rows] == [("pytorch reference", "float32"),
                                                          ("pytorch reference", "mixed")]
    assert all(r["docs_per_s"] > 0 and r["cudnn"] is False for r in rows)
    table = gpu._table(rows + [{**rows[0], "name": "keras/x", "backend": "x", "docs_per_s": rows[0]["docs_per_s"] / 2}])
    assert "| keras/x | float32 |" in table and "0.50x" in table


@pytest.mark.slow
def test_full_tiny_run_with_trials_per_hour(tmp_path: Path) -> None:
    proc, result = _run(tmp_path, "--precisions", "float32")
    assert [t["trials_per_gpu"] for t in result["trials"]] == [1, 2]
    assert all(t["per_hour"] > 0 for t in result["trials"])
    assert "trials per hour" in proc.stdout
