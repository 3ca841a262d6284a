"""bench/search_efficiency.py: the budget is exact for both peers, and the table's arithmetic."""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from benchhelpers import load_bench
from clihelpers import REPO

SCRIPT = REPO / "bench" / "search_efficiency.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    yield from load_bench("search_efficiency")


@pytest.mark.parametrize("contender", ["service", "kt-hyperband"])
def test_one_contender_spends_exactly_the_budget(bench, contender: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    out = tmp_path / "r.json"
    args = argparse.Namespace(child=contender, seed=0, result=str(out), budget=4, max_epochs=3, limit=64,
                              max_len=16, vocab_size=800)
    bench.child(args)
    result = json.loads(out.read_text())
    assert result["epochs"] == 4 and [t[0] for t in result["timeline"]] == [1, 2, 3, 4]
    assert 0.0 < result["best"] <= 1.0 and result["trials"] >= 2  # 4 epochs cannot fit in one 3-epoch trial
    assert result["best"] == max(t[1] for t in result["timeline"])


def test_table_ratios_and_epochs_to_target(bench) -> None:
    def run(name: str, seed: int, values: list[float], wall: float) -> dict:
        return {"contender": name, "seed": seed, "wall_s": wall, "trials": 2, "epochs": len(values),
                "best": max(values), "timeline": [(i + 1, v, float(i)) for i, v in enumerate(values)]}

    results = [run("service", 0, [0.1, 0.5, 0.6], 10), run("service", 1, [0.6, 0.2], 20),
               run("kt-hyperband", 0, [0.1, 0.2, 0.58], 30), run("kt-hyperband", 1, [0.3, 0.3], 30)]
    assert bench._epochs_to(results[0]["timeline"], 0.595) == 3
    assert bench._epochs_to(results[3]["timeline"], 0.595) is None
    text = bench.table(results, ["service", "kt-hyperband"])
    assert "any contender and repeat: 0.6000; target = overall best - 0.005 = 0.5950" in text
    assert "| service | 0.6000 [0.6000, 0.6000] | 0.3500 | 0.3500 | 2.0 (2/2) | 15 [10, 20] |" in text
    assert "| kt-hyperband | 0.4400 [0.3000, 0.5800] | 0.2000 | 0.2000 | not reached (0/2) |" in text
    assert "| service | 1.364x | 1.750x | n/a | 0.50x |" in text  # best, best after 1 epoch, -, wall
