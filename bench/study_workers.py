"""Whole studies: the main command with one CPU worker against N pinned one-thread workers, trials per hour.

    python bench/study_workers.py [--minutes 20] [--workers 2] [--json out.json]

Runs ``python -m search.launch --study attn --timeout MINUTES*60`` on full debtags50 twice, one after the
other, each into a fresh SQLite store: once with the launcher's default CPU layout (one worker over every
core) and once with ``--workers N`` (the cores shared out: each worker pinned to cores of its own, pools of
that size). Then reads both stores and prints, side by side: finished trials (complete, pruned), trials
per hour, the best tuned validation micro-F1, and the minutes until the study first reached 0.685 (the
TF-IDF + logistic regression validation score on this split). Unlike bench/cpu_workers.py (documents per
second of one fixed configuration) this counts what a user gets: trials of the sampled configurations,
with pruning and early stopping. The two runs are sequential, not interleaved (each needs the whole
machine), so a load change between them shows in the ratio; record the machine's state beside it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_VALID = 0.685


def _run(folder: Path, minutes: float, workers: int | None) -> dict[str, Any]:
    url = f"sqlite:///{folder / 'studies.db'}"
    argv = [sys.executable, "-m", "search.launch", "--study", "attn", "--timeout", str(int(minutes * 60)),
            "--storage", url, "--no-progress"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    t0 = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[1:])} exited {done.returncode}: {done.stderr[-2000:]}")
    study = optuna.load_study(study_name="attn", storage=url)
    trials = study.get_trials(deepcopy=False)
    started = min(t.datetime_start for t in trials if t.datetime_start is not None)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    # The first moment the study's best reached the reference: a report of any trial at or above it.
    reached = None
    for trial in finished:
        epochs = trial.user_attrs.get("epochs") or []
        if trial.datetime_start is None or not any(e.get("val_micro_f1_tuned", 0) >= REFERENCE_VALID for e in epochs):
            continue
        end = trial.datetime_complete or trial.datetime_start
        minutes_in = (end - started).total_seconds() / 60
        reached = minutes_in if reached is None else min(reached, minutes_in)
    return {"workers": workers or "default", "wall_s": wall, "finished": len(finished), "complete": len(complete),
            "pruned": len(finished) - len(complete), "trials_per_hour": len(finished) / (wall / 3600),
            "best": max((t.value for t in complete), default=None),
            "minutes_to_reference_at_most": reached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="each study's --timeout, in minutes")
    parser.add_argument("--workers", type=int, default=2, help="the CPU workers of the second run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="study-workers-") as tmp:
        for index, workers in enumerate((None, args.workers)):
            folder = Path(tmp) / str(index)
            folder.mkdir()
            rows.append(_run(folder, args.minutes, workers))
            print(f"  workers {rows[-1]['workers']}: {rows[-1]}", flush=True)
    base = rows[0]["trials_per_hour"]
    print("\n| CPU workers | wall min | finished (complete + pruned) | trials/hour | ratio | best val micro-F1 |"
          " reached 0.685 by (min) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        best = "-" if row["best"] is None else f"{row['best']:.4f}"
        reached = "-" if row["minutes_to_reference_at_most"] is None else f"{row['minutes_to_reference_at_most']:.1f}"
        print(f"| {row['workers']} | {row['wall_s'] / 60:.1f} | {row['finished']} ({row['complete']} + "
              f"{row['pruned']}) | {row['trials_per_hour']:.1f} | {row['trials_per_hour'] / base:.2f}x | {best} | "
              f"{reached} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
