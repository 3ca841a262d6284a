"""``python -m search.finalize --study NAME``: the final models of a finished study.

(a) The greedy ensemble of its best trials' saved models, selected on the validation split (forward
selection over averaged probabilities, one global tuned threshold; the TF-IDF reference may join it;
then per-label thresholds: the global one shrunk toward each label's best by the factor whose
cross-fitted micro-F1 on validation is best), (b) its best configuration refit on train + validation for
the trial's best number of epochs, and (c) the ensemble with each deep member refit so, its picks and
thresholds kept. All are recorded on the study (the refit models as study artifacts);
``python -m search.report`` scores them on the test split beside the best single trial and the TF-IDF
reference. Running it again replaces them.
The test split is never read.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from search._cli import CliParser, HelpFormatter, int_in, run_main

__all__ = ["build_parser", "main"]

PROG = "python -m search.finalize"


def build_parser() -> argparse.ArgumentParser:
    from search._final._ensemble import MAX_SIZE
    from search.config import ENSEMBLE_CANDIDATES

    p = CliParser(prog=PROG, formatter_class=HelpFormatter, description=__doc__.split("\n\n")[1].strip())
    p.add_argument("--study", required=True, help="the finished study (e.g. attn)")
    p.add_argument("--storage", metavar="URL", help="storage URL (default: $OPTUNA_STORAGE, else sqlite:///studies.db)")
    p.add_argument("--artifacts", metavar="DIR", help="artifact folder with the saved models (default: as the "
                   "workers chose it: beside a SQLite file, else $SEARCH_ARTIFACTS_DIR or ./artifacts)")
    p.add_argument("--candidates", type=int_in(1, None, "a number of trials (1 or more)"), default=ENSEMBLE_CANDIDATES,
                   metavar="N", help="the best N complete trials with a saved model the ensemble selects from")
    p.add_argument("--ensemble-size", type=int_in(1, None, "a number of picks (1 or more)"), default=MAX_SIZE,
                   metavar="N", help="at most N picks (a trial picked twice weighs twice)")
    p.add_argument("--no-reference", action="store_true", help="the ensemble selects from the deep trials only "
                   "(default: the TF-IDF + logistic regression reference is a candidate too, picked when it raises "
                   "the validation score)")
    p.add_argument("--one-threshold", action="store_true", help="the ensemble decides with its global threshold "
                   "alone (default: per-label thresholds, shrunk toward it by cross-fitting on validation)")
    p.add_argument("--no-ensemble", action="store_true", help="no ensemble selection (the ensemble refit, if any, "
                   "refits the ensemble recorded earlier)")
    p.add_argument("--no-refit", action="store_true", help="no refit of the best trial")
    p.add_argument("--no-refit-ensemble", action="store_true", help="no refit of the ensemble's members (each trains "
                   "about as long as the refit)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process only, as the workers: quiet TensorFlow
    from search._final._finalize import finalize_study
    from search.errors import StudyConfigError

    if args.no_ensemble and args.no_refit and args.no_refit_ensemble:
        raise StudyConfigError("with --no-refit and --no-refit-ensemble leaves nothing to do; expected at most two "
                               "of them", source="--no-ensemble")
    done = finalize_study(args.study, storage=args.storage, artifacts=args.artifacts, ensemble=not args.no_ensemble,
                          refit=not args.no_refit, refit_ensemble=not args.no_refit_ensemble,
                          candidates=args.candidates, max_size=args.ensemble_size,
                          with_reference=not args.no_reference, label_thresholds=not args.one_threshold)
    for line in done.skipped:
        print(f"left out of the ensemble: {line}")
    if done.ensemble is not None:
        print(f"study '{args.study}': {done.ensemble.name}, validation micro-F1 {done.ensemble.valid_micro_f1:.4f} "
              f"(best single {done.ensemble.best_single_valid_micro_f1:.4f})")
    if done.refit is not None:
        print(f"study '{args.study}': {done.refit.name}, {done.refit.seconds:.0f} s")
    if done.refit_ensemble is not None:
        print(f"study '{args.study}': {done.refit_ensemble.name}, {done.refit_ensemble.seconds:.0f} s")
    print(f"score them on the test split: python -m search.report --study {args.study}")
    made = [name for name, final in (("ensemble", done.ensemble), ("refit", done.refit),
                                     ("refit-ensemble", done.refit_ensemble)) if final is not None]
    print(f"use one on new text: python -m search.export --study {args.study} --final {'|'.join(made)} --out DIR")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
