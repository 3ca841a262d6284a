"""Whole studies: the main command with one CPU worker against N pinned one-thread workers, trials per hour.

    python bench/study_workers.py [--minutes 20] [--workers 2] [--json out.json]
    python bench/study_workers.py --against REF [--minutes 15]    # the same command, code at REF vs today's

Runs ``python -m search.launch --study attn --timeout MINUTES*60`` on full debtags50 twice, one after the
other, each into a fresh SQLite store: once with the launcher's default CPU layout (one worker over every
core) and once with ``--workers N`` (the cores shared out: each worker pinned to cores of its own, pools of
that size). Then reads both stores and prints, side by side: finished trials (complete, pruned), trials
per hour, the best tuned validation micro-F1, and the minutes until the study first reached 0.685 (the
TF-IDF + logistic regression validation score on this split). Unlike bench/cpu_workers.py (documents per
second of one fixed configuration) this counts what a user gets: trials of the sampled configurations,
with pruning and early stopping. The two runs are sequential, not interleaved (each needs the whole
machine), so a load change between them shows in the ratio; record the machine's state beside it.

With ``--against REF`` the two runs are instead the default layout with the code at git revision REF
(checked out into a temporary worktree, which the launcher and its workers import) and the default
layout with the code here: what a change of the trial path buys a user of the main command.
"""
from __future__ import annotations

import argparse
import json
import os
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


def _run(folder: Path, minutes: float, workers: int | None, code: Path = ROOT) -> dict[str, Any]:
    url = f"sqlite:///{folder / 'studies.db'}"
    argv = [sys.executable, "-m", "search.launch", "--study", "attn", "--timeout", str(int(minutes * 60)),
            "--storage", url, "--no-progress"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    t0 = time.monotonic()
    env = os.environ | {"PYTHONPATH": str(code)}  # the launcher and its workers import this checkout's code
    done = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True)
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
    parser.add_argument("--against", default=None, metavar="REF",
                        help="compare the default layout at git revision REF with today's code instead")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="study-workers-") as tmp:
        runs: list[tuple[str, int | None, Path]] = [("default", None, ROOT), (str(args.workers), args.workers, ROOT)]
        if args.against:
            old = Path(tmp) / "code"
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.against], cwd=ROOT, check=True,
                           capture_output=True)
            runs = [(f"default, code at {args.against}", None, old), ("default, today's code", None, ROOT)]
        try:
            for index, (label, workers, code) in enumerate(runs):
                folder = Path(tmp) / str(index)
                folder.mkdir()
                rows.append(_run(folder, args.minutes, workers, code) | {"workers": label})
                print(f"  {label}: {rows[-1]}", flush=True)
        finally:
            if args.against:
                subprocess.run(["git", "worktree", "remove", "--force", str(Path(tmp) / "code")], cwd=ROOT,
                               capture_output=True)
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
