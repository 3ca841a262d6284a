"""One worker process: joins a study and runs trials until the study has enough.

    python -m search.worker --study attn --storage postgresql+psycopg://user@db/optuna [--gpu 0]

The launcher starts these for you (one per GPU, or ``--workers N`` on the CPU); run this command by hand
to add a worker on another node. The run configuration (data, epochs, pruner) is read from the study.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Sequence

from search._cli import run_main
from search.runtime import configure_process

__all__ = ["run_worker", "replay_trial", "main"]

MAX_FAILURES_FACTOR = 2  # a worker stops once failed trials exceed this many times the target


def _log(message: str) -> None:
    print(message, flush=True)


def _setup(storage_url: str, study_name: str, gpu: str | None, backend: str | None, worker_index: int):
    configure_process(gpu, backend)
    from search._study import open_study
    from search.data import embedding_matrix_for, load_dataset
    from spaces import get_space
    from storage import artifact_store_for, create_storage

    storage = create_storage(storage_url)
    study, config, context = open_study(storage, study_name, worker_index=worker_index)
    space = get_space(config.space)
    dataset = load_dataset(config.data, config.data_settings())
    embedding = embedding_matrix_for(dataset, config.embedding_dim)
    return storage, study, config, context, space, dataset, embedding, artifact_store_for(storage_url)


def run_worker(storage_url: str, study_name: str, *, gpu: str | None = None, backend: str | None = None,
               n_trials: int | None = None, timeout: float | None = None, worker_index: int = 0) -> int:
    """Run trials of ``study_name`` until it has ``n_trials`` complete or pruned trials (None: forever)."""
    storage, study, config, context, space, dataset, embedding, artifacts = _setup(
        storage_url, study_name, gpu, backend, worker_index)
    import optuna
    from optuna.trial import TrialState

    from search._study import count_trials
    from search.errors import TrialFailure
    from search.objective import Objective

    target = n_trials if n_trials is not None else space.n_trials(context)
    objective = Objective(config, space, context, dataset, embedding, artifacts, log=_log)
    prefix = f"[worker {worker_index}{'' if gpu is None else f' gpu {gpu}'}] "
    objective.log = lambda m: _log(prefix + m)

    def enough(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if target is not None and count_trials(study) >= target:
            study.stop()
        failed = count_trials(study, (TrialState.FAIL,))
        if failed > MAX_FAILURES_FACTOR * max(target or 10, 10):
            _log(prefix + f"stopping: {failed} failed trials")
            study.stop()

    if target is not None and count_trials(study) >= target:
        _log(prefix + f"study '{study_name}' already has {target} finished trials")
        return 0
    # Optuna logs every failed trial with its traceback at WARNING; the objective logs one line instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, timeout=timeout, catch=(TrialFailure,), callbacks=[enough], gc_after_trial=True)
    return 0


def replay_trial(storage_url: str, study_name: str, number: int, *, gpu: str | None = None,
                 backend: str | None = None) -> int:
    """Re-run one trial with its parameters and seed; print its metrics beside the stored ones."""
    storage, study, config, context, space, dataset, embedding, _ = _setup(storage_url, study_name, gpu, backend, 0)
    import optuna

    from search.errors import StudyConfigError
    from search.objective import MONITOR, Objective

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise StudyConfigError(f"no trial {number} (the study has {len(trials)}); expected a trial number",
                               source="--replay")
    frozen = trials[number]
    fixed = optuna.trial.FixedTrial(frozen.params, number=number)
    params = space.suggest(fixed, context)
    seed = frozen.user_attrs.get("seed", config.seed + number)
    objective = Objective(config, space, context, dataset, embedding, None, log=_log)
    result = objective.run(None, params, int(seed))
    stored = {r["epoch"]: r for r in frozen.user_attrs.get("epochs", [])}
    print(f"replay of trial {number} (seed {seed}): value {result.value:.4f}; stored value {frozen.value}")
    for row in result.history:
        old = stored.get(row["epoch"], {}).get(MONITOR)
        print(f"  epoch {row['epoch']}: {row[MONITOR]:.4f}  stored {old if old is None else round(old, 4)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True, help="study name (created by search.launch)")
    parser.add_argument("--storage", default=None,
                        help="storage URL (else $OPTUNA_STORAGE, else sqlite:///studies.db)")
    parser.add_argument("--gpu", default=None, help="GPU id for this worker (default: CPU)")
    parser.add_argument("--backend", default=None, choices=("tensorflow", "jax", "torch"),
                        help="Keras backend (else $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--trials", type=int, default=None, help="stop when the study has this many finished trials")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=int, default=None, metavar="N", help="re-run trial N and compare")
    args = parser.parse_args(argv)
    from storage import resolve_storage_url

    url = resolve_storage_url(args.storage)
    if args.replay is not None:
        return replay_trial(url, args.study, args.replay, gpu=args.gpu, backend=args.backend)
    return run_worker(url, args.study, gpu=args.gpu, backend=args.backend, n_trials=args.trials,
                      timeout=args.timeout, worker_index=args.worker_index)


def process_entry(argv: list[str]) -> None:
    """Target of the launcher's spawned processes: own process group (Ctrl-C reaches the launcher,
    which stops each worker once), then the same code path as the command line."""
    os.setpgrp()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM -> KeyboardInterrupt -> trial FAIL
    sys.exit(run_main(main, argv))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    raise SystemExit(run_main(main))
