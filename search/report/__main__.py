"""``python -m search.report --study NAME``: test-set evaluation, ablation table, plots and verdict."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from search._cli import CliParser, int_in, run_main

__all__ = ["build_parser", "main"]

PROG = "python -m search.report"


_positive = int_in(1, None, "a positive integer")


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog=PROG, description="Evaluate a finished study on the test split: the best trial, a TF-IDF "
                "reference, the attention ablation with confidence intervals, plots and a verdict, written as "
                "markdown + PNGs and printed as a table.")
    p.add_argument("--study", required=True, help="the study to report on (e.g. attn)")
    p.add_argument("--storage", metavar="URL", help="storage URL (default: $OPTUNA_STORAGE, else sqlite:///studies.db)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: reports/<study>/)")
    p.add_argument("--ablation-study", metavar="NAME",
                   help="the equal-budget ablation study to tabulate (default: the study named 'ablation' if the "
                   "storage has one; without one the report compares best-with and best-without attention)")
    p.add_argument("--artifacts", metavar="DIR", help="artifact folder with the saved models (default: as the "
                   "workers chose it: beside a SQLite file, else $SEARCH_ARTIFACTS_DIR or ./artifacts)")
    p.add_argument("--resamples", type=_positive, default=1000, help="bootstrap resamples (default: 1000)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process only, as the workers: quiet TensorFlow
    import matplotlib

    matplotlib.use("Agg")  # this command draws files only
    from search.report import make_report

    command = " ".join([PROG, shlex.join(sys.argv[1:] if argv is None else argv)])
    report = make_report(args.study, storage=args.storage, out=args.out, ablation_study=args.ablation_study,
                         artifacts=args.artifacts, resamples=args.resamples, command=command)
    print(report.terminal(), flush=True)
    print(f"({report.seconds:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
