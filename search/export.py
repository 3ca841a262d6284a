"""``python -m search.export --study NAME --out DIR``: a study's model as a self-contained folder.

The folder holds the Keras model, the vocabulary and tokeniser settings, ``max_len``, the tuned threshold,
the label names and a model card; ``python -m search.predict DIR`` and ``search.load_predictor(DIR)`` use
it without the study, its store or the data cache. ``--final`` exports what ``search.finalize`` made
instead: the greedy ensemble (its models, their weights, the TF-IDF reference where it joined), the
refit model, or the ensemble with its members refit.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from search._cli import CliParser, HelpFormatter, int_in, run_main

__all__ = ["build_parser", "main"]

PROG = "python -m search.export"


_trial_number = int_in(0, None, "a trial number (0, 1, ...)")


def _final_model(text: str) -> str:
    from search._final import FINAL_CHOICES  # here, not at the top: --help needs no optuna

    if text not in FINAL_CHOICES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(FINAL_CHOICES)}, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog=PROG, formatter_class=HelpFormatter,
                  description="Export a study's model as a folder that needs nothing of the study: the Keras model, "
                  "vocabulary and tokeniser settings, max_len, threshold, label names and a model card (README.md).")
    p.add_argument("--study", required=True, help="the study to export from (e.g. attn)")
    p.add_argument("--storage", metavar="URL", help="storage URL (default: $OPTUNA_STORAGE, else sqlite:///studies.db)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=_trial_number, metavar="N",
                       help="the trial to export (default: the best trial)")
    # const True (not a string) marks a bare --final: argparse checks only string values with the type
    which.add_argument("--final", nargs="?", const=True, type=_final_model, metavar="{ensemble,refit,refit-ensemble}",
                       help="the study's final model, made by python -m search.finalize: its ensemble, its refit or "
                       "its ensemble refit on train + valid (a bare --final: the ensemble refit where it has one, else "
                       "the ensemble, else the refit)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to create (new or empty)")
    p.add_argument("--force", action="store_true", help="replace DIR when it holds an earlier export")
    p.add_argument("--artifacts", metavar="DIR", help="artifact folder with the saved models (default: as the "
                   "workers chose it: beside a SQLite file, else $SEARCH_ARTIFACTS_DIR or ./artifacts)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process only, as the workers: quiet TensorFlow
    from search._serving._export import export_study

    command = " ".join([PROG, shlex.join(sys.argv[1:] if argv is None else argv)])
    final = args.final is not None
    result = export_study(args.study, args.out, storage=args.storage, trial=args.trial, final=final,
                          final_model=args.final if isinstance(args.final, str) else None,
                          artifacts=args.artifacts, force=args.force, command=command)
    if result.recorded_value is None:
        recorded = "it trained on validation too"
    else:
        recorded = f"{'search.finalize' if final else 'the trial'} recorded {result.recorded_value:.4f}"
    per_label = ("" if result.valid_micro_f1_per_label is None else
                 f"; at its per-label thresholds, what it decides with: {result.valid_micro_f1_per_label:.4f}")
    print(f"exported {result.name} of study '{args.study}' to {result.folder} (validation micro-F1 "
          f"{result.valid_micro_f1:.4f}; {recorded}{per_label})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
