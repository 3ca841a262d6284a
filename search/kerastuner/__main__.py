"""Run a keras-tuner hypermodel as a study of this service, in this process (one worker).

    python -m search.kerastuner --hypermodel mypkg.tuning:MyHyperModel --study mine --trials 20 --fit batch_size=64

``--hypermodel`` names a ``keras_tuner.HyperModel`` subclass or instance, or a ``build(hp)`` function, as
``module:attr`` (importable from the working directory) or ``path/to/file.py:attr``. The storage is
``--storage``, else ``$OPTUNA_STORAGE``, else ``sqlite:///studies.db``; run it again to resume; watch it
with ``python -m search.dashboard``.
"""
from __future__ import annotations

import argparse
import sys
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
    p.add_argument("--pruner", choices=PRUNERS, default=None,
                   help=f"pruner (default: {RunConfig.pruner} for a new study; a resumed study keeps its own)")
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
    """Check every input (the hypermodel loaded and built once in a child process), then train here.

    Everything that can be refused is refused before this process imports keras, so a refusal is one
    line; a run whose every trial failed exits 1 with the reason.
    """
    args = build_parser().parse_args(argv)
    from search.data import load_dataset
    from search.kerastuner._resolve import PREFIX, check_spec, parse_spec
    from storage import resolve_storage_url

    parse_spec(args.hypermodel)  # a malformed spec is refused before anything loads
    if args.trials < 1:
        raise StudyConfigError(f"got {args.trials}; expected at least 1", source="--trials")
    if args.timeout is not None and not args.timeout > 0:
        raise StudyConfigError(f"got {args.timeout:g}; expected a positive number of seconds", source="--timeout")
    fixed = parse_key_values(args.set, "--set")
    fit_kwargs = parse_key_values(args.fit, "--fit") or None  # None: a resumed study keeps its own
    # the flags as run() will store them: refused here, before keras loads, if they cannot run
    config = RunConfig(study=args.study, space=PREFIX + args.hypermodel.strip(), data=args.data,
                       vocab_size=args.vocab_size, max_len=args.max_len, limit=args.limit or None, epochs=args.epochs,
                       seed=args.seed, pruner=args.pruner or RunConfig.pruner, sampler=args.sampler,
                       save_models=not args.no_save_models,
                       fixed=fixed, trials=args.trials, timeout=args.timeout)
    resolve_storage_url(args.storage)
    dataset = load_dataset(config.data, config.data_settings())
    check_spec(args.hypermodel, in_process=False, fixed=fixed, n_labels=dataset.n_labels)  # keras in a child
    from search.runtime import configure_process

    configure_process(args.gpu, args.backend)
    import optuna
    from optuna.trial import TrialState

    from search._worker._loop import TrialsKeepFailing
    from search.kerastuner._run import run, summary

    # Optuna logs every failed trial with its traceback at WARNING; the objective logs one line per epoch and
    # trial instead, a failed one with its reason
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    log = lambda m: print(m, flush=True)  # noqa: E731
    try:
        study = run(args.hypermodel, study_name=args.study, storage=args.storage, n_trials=args.trials,
                    epochs=args.epochs, data=args.data, vocab_size=args.vocab_size, max_len=args.max_len,
                    limit=args.limit or None, seed=args.seed, pruner=args.pruner, sampler=args.sampler, fixed=fixed,
                    fit_kwargs=fit_kwargs, timeout=args.timeout, save_models=not args.no_save_models, log=log)
    except TrialsKeepFailing as exc:
        print(f"stopped: {exc}", file=sys.stderr, flush=True)
        return 1
    print(summary(study), flush=True)
    print("open the dashboard: python -m search.dashboard" + (f" --storage '{args.storage}'" if args.storage else ""))
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        print(f"every trial of study '{args.study}' failed; see their reasons above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
