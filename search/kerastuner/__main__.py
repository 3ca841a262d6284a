"""Run a keras-tuner hypermodel as a study of this service, in this process (one worker).

    python -m search.kerastuner --hypermodel mypkg.tuning:MyHyperModel --study mine --trials 20 --fit batch_size=64

``--hypermodel`` names a ``keras_tuner.HyperModel`` subclass or instance, or a ``build(hp)`` function, as
``module:attr`` (importable from the working directory) or ``path/to/file.py:attr``. The storage is
``--storage``, else ``$OPTUNA_STORAGE``, else ``sqlite:///studies.db``; run it again to resume; watch it
with ``python -m search.dashboard``.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from search._cli import CliParser, HelpFormatter, parse_key_values, run_main
from search.config import PRUNERS, RunConfig
from search.errors import StudyConfigError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m search.kerastuner", description=__doc__.split("\n\n")[0],
                  formatter_class=HelpFormatter)
    p.add_argument("--hypermodel", required=True, metavar="MODULE:ATTR",
                   help="keras_tuner.HyperModel subclass/instance or build(hp) function, e.g. tuning.py:build_model")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", default=None, help="storage URL (default: $OPTUNA_STORAGE, else sqlite:///studies.db)")
    p.add_argument("--data", default="debtags50", help="bundled dataset name or a .npz/.csv/.jsonl path")
    p.add_argument("--trials", type=int, default=12, help="finished (complete or pruned) trials to reach")
    p.add_argument("--timeout", type=float, default=None, help="stop starting new trials after this many seconds")
    p.add_argument("--epochs", type=int, default=RunConfig.epochs, help="maximum epochs per trial")
    p.add_argument("--limit", type=int, default=RunConfig.limit,
                   help="use only the first N training documents (0: all)")
    p.add_argument("--max-len", type=int, default=RunConfig.max_len, help="tokens per document")
    p.add_argument("--vocab-size", type=int, default=RunConfig.vocab_size, help="vocabulary size")
    p.add_argument("--pruner", choices=PRUNERS, default=RunConfig.pruner, help="pruner")
    p.add_argument("--sampler", choices=("tpe", "random"), default=RunConfig.sampler, help="sampler")
    p.add_argument("--seed", type=int, default=RunConfig.seed, help="base seed (trial seed = seed + trial number)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a hyperparameter of the hypermodel for every trial (JSON value)")
    p.add_argument("--fit", action="append", default=[], metavar="KEY=VALUE",
                   help="a fit argument, as given to tuner.search(...), e.g. --fit batch_size=64 (JSON value)")
    p.add_argument("--gpu", default=None, help="GPU id (default: CPU, as search.worker)")
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--no-save-models", action="store_true", help="do not save the best models as artifacts")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from search.kerastuner._resolve import parse_spec

    parse_spec(args.hypermodel)  # a malformed spec is refused before anything loads
    if args.trials < 1:
        raise StudyConfigError(f"got {args.trials}; expected at least 1", source="--trials")
    fixed = parse_key_values(args.set, "--set")
    fit_kwargs = parse_key_values(args.fit, "--fit") or None  # None: a resumed study keeps its own
    from search.runtime import configure_process

    configure_process(args.gpu, args.backend)
    from search.kerastuner._hypermodel import load_hypermodel  # imports keras: the spec is checked here
    from search.kerastuner._run import run, summary

    load_hypermodel(args.hypermodel)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the objective logs one line per epoch and trial
    study = run(args.hypermodel, study_name=args.study, storage=args.storage, n_trials=args.trials,
                epochs=args.epochs, data=args.data, vocab_size=args.vocab_size, max_len=args.max_len,
                limit=args.limit or None, seed=args.seed, pruner=args.pruner, sampler=args.sampler, fixed=fixed,
                fit_kwargs=fit_kwargs, timeout=args.timeout, save_models=not args.no_save_models,
                log=lambda m: print(m, flush=True))
    print(summary(study), flush=True)
    print("open the dashboard: python -m search.dashboard" + (f" --storage '{args.storage}'" if args.storage else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
