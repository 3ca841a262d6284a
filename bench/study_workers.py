"""Whole studies: the main command with one CPU worker against N pinned one-thread workers, trials per hour.

    python bench/study_workers.py [--minutes 20] [--workers 2] [--json out.json]
    python bench/study_workers.py --against REF [--against-args "--limit 0"] [--minutes 60]
    python bench/study_workers.py --against REF --runs against --json old.json     # one side only
    python bench/study_workers.py --table-from old.json new.json                 # their table, side by side
    python bench/study_workers.py --recount DIR --label NAME --minutes 60 --json row.json   # a kept store again

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
``--against-args`` adds launch flags to REF's run only: code from before the trials got cheap trained on
3,000 documents by default, and ``--limit 0`` makes it train on the whole split as today's code does.
Each side runs until its --timeout plus a grace of two minutes and is then stopped (the whole process
group): older launchers stop only *starting* trials at their timeout, and a trial there can last half an
hour. Both sides are counted the same way: the trials finished (complete or pruned) within the budget
from the first trial's start, plus one minute for today's launcher to stop the trial it was running
(it stops within a batch and records it complete, with its best report); trials per hour divide that
count by the same window. The two sides can run in separate invocations (``--runs``, ``--json``, kept
stores in ``--keep DIR/<side>``) and be printed together with ``--table-from``, and a kept store can be
counted again with ``--recount DIR --label NAME``: each side needs the whole machine for an hour, and a
session may not have two hours in one piece.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
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
#: Seconds past its --timeout a run may take to end by itself before its process group is stopped.
GRACE_SECONDS = 120
#: Seconds past the budget (from the first trial's start) within which a finished trial still counts:
#: today's launcher stops its running trial within a batch of the budget and records it complete.
SLACK_SECONDS = 60


def _run(folder: Path, minutes: float, workers: int | None, code: Path = ROOT,
         extra: list[str] | None = None) -> dict[str, Any]:
    url = f"sqlite:///{folder / 'studies.db'}"
    argv = [sys.executable, "-m", "search.launch", "--study", "attn", "--timeout", str(int(minutes * 60)),
            "--storage", url, "--no-progress", *(extra or [])]
    if workers is not None:
        argv += ["--workers", str(workers)]
    t0 = time.monotonic()
    env = os.environ | {"PYTHONPATH": str(code)}  # the launcher and its workers import this checkout's code
    log = folder / "launch.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            returncode: int | None = proc.wait(timeout=minutes * 60 + GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            returncode = None  # stopped at the hard end: its unfinished trial does not count
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    wall = time.monotonic() - t0
    if returncode not in (None, 0):
        raise SystemExit(f"error: {' '.join(argv[1:])} exited {returncode}: {log.read_text()[-2000:]}")
    return count(folder, minutes) | {"wall_s": wall, "stopped_at_hard_end": returncode is None}


def count(folder: Path, minutes: float) -> dict[str, Any]:
    """The row of the study in ``folder/studies.db``: trials finished within ``minutes`` (+ the slack) of
    its first trial's start, their rate over that window, the best value among them, when the study first
    reached the reference, and the share of the trials' time in whole-validation passes."""
    url = f"sqlite:///{folder / 'studies.db'}"
    trials = optuna.load_study(study_name="attn", storage=url).get_trials(deepcopy=False)
    if not any(t.datetime_start is not None for t in trials):
        raise SystemExit(f"error: the study in {folder} started no trial")
    started = min(t.datetime_start for t in trials if t.datetime_start is not None)
    window = minutes * 60 + SLACK_SECONDS
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                and t.datetime_complete is not None and (t.datetime_complete - started).total_seconds() <= window]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    # The first moment the study's best reached the reference, at most: the end of the first finished trial
    # one of whose reports (to the pruner: tuned validation micro-F1, in every version) is at or above it.
    reached = None
    for trial in finished:
        if not any(v >= REFERENCE_VALID for v in trial.intermediate_values.values()):
            continue
        assert trial.datetime_complete is not None
        minutes_in = (trial.datetime_complete - started).total_seconds() / 60
        reached = minutes_in if reached is None else min(reached, minutes_in)
    return {"finished": len(finished), "complete": len(complete), "pruned": len(finished) - len(complete),
            "window_s": window, "trials_per_hour": len(finished) / (window / 3600),
            "best": max((t.value for t in complete if t.value is not None), default=None),
            "minutes_to_reference_at_most": reached, "validation_share": _validation_share(finished)}


def _validation_share(trials: list[optuna.trial.FrozenTrial]) -> float | None:
    """The share of the trials' time in whole-validation passes: each report row records its seconds since
    the last report and the training seconds among them (code that predates those fields: None)."""
    from search.record import TrialRecord

    total = training = 0.0
    for trial in trials:
        for row in TrialRecord.from_trial(trial).epochs or []:
            if "seconds" not in row or "train_seconds" not in row:
                return None
            total, training = total + row["seconds"], training + row["train_seconds"]
    return (total - training) / total if total else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="each study's --timeout, in minutes")
    parser.add_argument("--workers", type=int, default=2, help="the CPU workers of the second run")
    parser.add_argument("--against", default=None, metavar="REF",
                        help="compare the default layout at git revision REF with today's code instead")
    parser.add_argument("--against-args", default="", metavar="FLAGS",
                        help="launch flags for REF's run only, e.g. \"--limit 0\" (its whole training split)")
    parser.add_argument("--runs", default="both", choices=("both", "against", "today"),
                        help="with --against: run both sides, or only REF's, or only today's")
    parser.add_argument("--table-from", nargs="+", default=None, metavar="JSON",
                        help="print the table of rows saved by earlier runs' --json, in this order; run nothing")
    parser.add_argument("--json", default=None, help="write the rows as JSON (after each run)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="keep each run's SQLite store and launcher log in DIR/<side>/ (default: temporary)")
    parser.add_argument("--recount", default=None, metavar="DIR",
                        help="count the kept store in DIR again (with --minutes and --label); run nothing")
    parser.add_argument("--label", default=None, help="with --recount: the row's name")
    args = parser.parse_args()
    if args.table_from:
        rows = [row for name in args.table_from for row in json.loads(Path(name).read_text())]
        _print_table(rows)
        return
    if args.recount:
        rows = [count(Path(args.recount), args.minutes) | {"workers": args.label or args.recount, "wall_s": None}]
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        _print_table(rows)
        return
    if args.runs != "both" and not args.against:
        parser.error("--runs needs --against")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="study-workers-") as tmp:
        stores = Path(args.keep) if args.keep else Path(tmp)
        old = Path(tmp) / "code"
        runs: list[tuple[str, str, int | None, Path, list[str]]] = [
            ("default", "default", None, ROOT, []),
            (f"{args.workers}-workers", str(args.workers), args.workers, ROOT, [])]
        if args.against:
            shown = f" {args.against_args}" if args.against_args else ""
            runs = [("against", f"default{shown}, code at {args.against}", None, old, shlex.split(args.against_args)),
                    ("today", "default, today's code", None, ROOT, [])]
            runs = {"both": runs, "against": runs[:1], "today": runs[1:]}[args.runs]
        checkout = any(code == old for *_, code, _ in runs)
        if checkout:
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.against], cwd=ROOT, check=True,
                           capture_output=True)
        try:
            for side, label, workers, code, extra in runs:
                folder = stores / side
                folder.mkdir(parents=True)
                rows.append(_run(folder, args.minutes, workers, code, extra) | {"workers": label})
                print(f"  {label}: {rows[-1]}", flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(rows, indent=2))
        finally:
            if checkout:
                subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    _print_table(rows)


def _print_table(rows: list[dict[str, Any]]) -> None:
    base = rows[0]["trials_per_hour"] or float("nan")
    print("\n| run | wall min | finished (complete + pruned) | trials/hour | ratio | best val micro-F1 |"
          " reached 0.685 by (min) | validation share of trial time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        best = "-" if row["best"] is None else f"{row['best']:.4f}"
        reached = "-" if row["minutes_to_reference_at_most"] is None else f"{row['minutes_to_reference_at_most']:.1f}"
        share = row.get("validation_share")
        wall = "-" if row.get("wall_s") is None else f"{row['wall_s'] / 60:.1f}"
        print(f"| {row['workers']} | {wall} | {row['finished']} ({row['complete']} + "
              f"{row['pruned']}) | {row['trials_per_hour']:.1f} | {row['trials_per_hour'] / base:.2f}x | {best} | "
              f"{reached} | {'-' if share is None else f'{100 * share:.1f}%'} |")


if __name__ == "__main__":
    main()
