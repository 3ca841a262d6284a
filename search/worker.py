"""One worker process: joins a study and runs trials until the study has enough.

    python -m search.worker --study attn --storage postgresql+psycopg://user@db/optuna [--gpu 0 | --cpu]

The launcher starts these for you (one per GPU, or ``--workers N`` on the CPU); run this command by hand
to add a worker on another node. Its command line says who it is (study, storage, device); how to run --
data, epochs, pruner, target, timeout, heartbeats -- is read from the study. Without ``--gpu`` or
``--cpu`` the worker uses the GPUs its environment shows it (``CUDA_VISIBLE_DEVICES`` as given, e.g. the
one GPU of a container).

The parts live in :mod:`search._worker`: signals, storage, the optimisation loop, set-up, replay.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from search._cli import CliParser, run_main
from search._worker._loop import MAX_STORAGE_ERRORS, TrialsKeepFailing, run_objective, run_trials
from search._worker._replay import check_replay, replay_trial
from search._worker._setup import WorkerIdentity, WorkerSetup, set_up
from search._worker._signals import StopRequest
from search._worker._storage import WORKER_MAX_OVERFLOW, WORKER_POOL_SIZE, open_storage
from search.runtime import INHERIT_GPUS

__all__ = ["main", "process_entry", "run_worker", "replay_trial", "run_trials", "run_objective", "open_storage",
           "set_up", "WorkerIdentity", "WorkerSetup", "StopRequest", "WORKER_POOL_SIZE", "WORKER_MAX_OVERFLOW",
           "MAX_STORAGE_ERRORS", "EXIT_TRIALS_FAILING", "EXIT_GAVE_UP"]

EXIT_TRIALS_FAILING = 1  # the command's status when it stopped because its trials keep failing
#: The same stop, as a launcher's worker reports it to its launcher: a status no crash has, so that the
#: launcher does not restart a worker whose next trials would fail the same way.
EXIT_GAVE_UP = 3


def run_worker(identity: WorkerIdentity, *, trials: int | None = None, timeout: float | None = None,
               stop: StopRequest | None = None) -> int:
    """Run trials of the identity's study until it has its target of complete or pruned trials.

    The target and timeout are the study's (``--trials`` / ``--timeout`` of its latest launch);
    ``trials`` and ``timeout`` given here replace them for this worker only.
    """
    setup = set_up(identity)
    import optuna

    from search._study import trial_target
    from search.objective import Objective

    config = setup.config
    target = trials or trial_target(config, setup.space, setup.context)
    # Optuna logs every failed trial with its traceback at WARNING; the objective logs one line instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    budget = config.timeout if timeout is None else timeout
    objective = Objective(config, setup.space, setup.context, setup.dataset, setup.embedding, setup.artifacts,
                          log=setup.log, deadline=None if budget is None else time.monotonic() + budget)
    run_objective(setup.study, objective, target=target, timeout=budget,
                  log=setup.log, stop=stop, parent_pid=identity.parent_pid)
    return 0


def parse_gpu(text: str | None, source: str = "--gpu") -> str | None:
    """A GPU id as given to CUDA_VISIBLE_DEVICES: a non-negative integer."""
    from search.errors import StudyConfigError

    if text is None:
        return None
    text = text.strip()
    if not text.isdigit():
        raise StudyConfigError(f"got '{text}'; expected one GPU id such as 0", source=source)
    return text


def parse_cpus(text: str | None, source: str = "--cpus") -> tuple[int, ...] | None:
    """CPU core ids such as ``0`` or ``2,3``: ones this process may run on."""
    from search.errors import StudyConfigError

    if text is None:
        return None
    ids = [p.strip() for p in text.split(",") if p.strip()]
    allowed = os.sched_getaffinity(0)
    if not ids or not all(i.isdigit() for i in ids) or not {int(i) for i in ids} <= allowed:
        raise StudyConfigError(f"got '{text}'; expected comma-separated core ids among "
                               f"{','.join(map(str, sorted(allowed)))}", source=source)
    return tuple(sorted({int(i) for i in ids}))


def build_parser() -> CliParser:
    parser = CliParser(prog="python -m search.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True, help="study name (created by search.launch)")
    parser.add_argument("--storage", default=None,
                        help="storage URL (else $OPTUNA_STORAGE, else sqlite:///studies.db); "
                             "grpc://HOST:PORT for a gRPC storage proxy (python -m search.proxy)")
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--gpu", default=None, help="run on this GPU id only (sets CUDA_VISIBLE_DEVICES)")
    device.add_argument("--cpu", action="store_true", help="run on the CPU (hides every GPU)")
    parser.add_argument("--backend", default=None, choices=("tensorflow", "jax", "torch"),
                        help="Keras backend (else $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the model's numerical work (default with --cpu: every core it may use, "
                             "TensorFlow's pools split between ops; else the backend's own)")
    parser.add_argument("--cpus", default=None, metavar="LIST",
                        help="run on these CPU cores only, e.g. 0 or 2,3 (default: every core it may use)")
    parser.add_argument("--trials", type=int, default=None,
                        help="stop when the study has this many finished trials (default: the study's target)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop starting trials after this many seconds (default: the study's)")
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=int, default=None, metavar="N", help="re-run trial N and compare")
    return parser


def main(argv: Sequence[str] | None = None, stop: StopRequest | None = None) -> int:
    """The command line; ``stop``: the process's stop request (see :func:`process_entry`)."""
    args = build_parser().parse_args(argv)
    from search.errors import StudyConfigError
    from storage import require_existing_store, resolve_storage_url, storage_source

    gpu = None if args.cpu else parse_gpu(args.gpu) if args.gpu is not None else INHERIT_GPUS
    if args.trials is not None and args.trials < 1:
        raise StudyConfigError(f"got {args.trials}; expected at least 1", source="--trials")
    if args.threads is not None and args.threads < 1:
        raise StudyConfigError(f"got {args.threads}; expected at least 1", source="--threads")
    cpus = parse_cpus(args.cpus)
    if args.timeout is not None and not args.timeout > 0:
        raise StudyConfigError(f"got {args.timeout:g}; expected a positive number of seconds", source="--timeout")
    url = resolve_storage_url(args.storage)
    require_existing_store(url, source=storage_source(args.storage))  # a worker joins a study: it creates no store
    identity = WorkerIdentity(study=args.study, storage_url=url, gpu=gpu, backend=args.backend,
                              threads=args.threads, cpus=cpus, index=args.worker_index, parent_pid=args.parent_pid)
    if args.replay is not None:
        setup = set_up(identity, trials=False, heartbeats=False, artifacts=False, log=print,
                       check=check_replay(args.replay))
        return replay_trial(setup, args.replay)
    return run_worker(identity, trials=args.trials, timeout=args.timeout, stop=stop)


def _run_command(argv: Sequence[str] | None, stop: StopRequest, gave_up: int) -> int:
    """:func:`main` as a process runs it: bad input is one line and status 2; trials that keep failing end
    the process with status ``gave_up`` and their reason on stderr."""

    def command(args: Sequence[str] | None) -> int:
        try:
            return main(args, stop)
        except TrialsKeepFailing as exc:
            print(f"worker stopped: {exc}", file=sys.stderr, flush=True)
            return gave_up

    return run_main(command, argv)


def process_entry(argv: list[str]) -> None:
    """Target of the launcher's spawned processes: own process group (Ctrl-C reaches the launcher,
    which stops each worker once), then the same code path as the command line. The worker stops after
    its current trial if the launcher disappears (killed without a chance to stop it)."""
    os.setpgrp()
    stop = StopRequest().install()
    sys.exit(_run_command([*argv, "--parent-pid", str(os.getppid())], stop, EXIT_GAVE_UP))


if __name__ == "__main__":
    raise SystemExit(_run_command(None, StopRequest().install(), EXIT_TRIALS_FAILING))
