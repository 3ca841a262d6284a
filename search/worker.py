"""One worker process: joins a study and runs trials until the study has enough.

    python -m search.worker --study attn --storage postgresql+psycopg://user@db/optuna [--gpu 0 | --cpu]

The launcher starts these for you (one per GPU, or ``--workers N`` on the CPU); run this command by hand
to add a worker on another node. The run configuration (data, epochs, pruner) is read from the study.
Without ``--gpu`` or ``--cpu`` the worker uses the GPUs its environment shows it (``CUDA_VISIBLE_DEVICES``
as given, e.g. the one GPU of a container).
"""
from __future__ import annotations

import _thread
import argparse
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

from search._cli import CliParser, run_main
from search.runtime import INHERIT_GPUS, configure_process

__all__ = ["run_worker", "run_trials", "open_storage", "replay_trial", "main", "process_entry",
           "WORKER_POOL_SIZE", "WORKER_MAX_OVERFLOW", "DEFAULT_HEARTBEAT_INTERVAL", "DEFAULT_GRACE_PERIOD",
           "MAX_STORAGE_ERRORS"]

MAX_FAILURES_FACTOR = 2  # a worker stops once failed trials exceed this many times the target
# A worker keeps one database connection. Its trial's storage calls and Optuna's heartbeat thread (one
# write a minute) rarely overlap: when they do, or while the storage starts up, an overflow connection
# is opened and closed again, never kept. So N workers hold about N connections, not 2N (or 15N: the
# SQLAlchemy default is a pool of 5 + 10 overflow).
WORKER_POOL_SIZE = 1
WORKER_MAX_OVERFLOW = 2
DEFAULT_HEARTBEAT_INTERVAL = 60  # seconds between heartbeats of a running trial
DEFAULT_GRACE_PERIOD = 180  # seconds without a heartbeat after which a trial is failed and retried
MAX_STORAGE_ERRORS = 5  # storage errors in a row (no trial finished between them) before the worker gives up
STORAGE_RETRY_SECONDS = 2.0  # first wait after a storage error; doubled each time, at most 30 s
INTERRUPTED_REASON = "interrupted (Ctrl-C or SIGTERM); the study can be resumed"
OPEN_ATTEMPTS = 4  # tries to open an unreachable database at start-up (waits 1, 2, 4 s between them)


def _log(message: str) -> None:
    print(message, flush=True)


def open_storage(url: str, *, heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
                 grace_period: int | None = DEFAULT_GRACE_PERIOD, attempts: int = OPEN_ATTEMPTS):
    """The storage of one worker process: heartbeats with retry, a one-connection pool, pre-ping.

    A database that cannot be reached (the driver's connection error) is tried ``attempts`` times over a
    few seconds before the :class:`~search.errors.StorageError` is raised: a worker (re)started while the
    server restarts, or while its connection is cut, comes up instead of exiting.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    from search.errors import StorageError
    from storage import create_storage

    for attempt in range(1, attempts + 1):
        try:
            return create_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                  pool_size=WORKER_POOL_SIZE, max_overflow=WORKER_MAX_OVERFLOW)
        except StorageError as exc:
            if attempt == attempts or not isinstance(exc.__cause__, (OperationalError, InterfaceError)):
                raise
            time.sleep(min(2.0 ** (attempt - 1), 8.0))
    raise AssertionError("unreachable")


def _storage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the store could not be reached or answered (not a bug in the trial)."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import InterfaceError, OperationalError

    errors: tuple[type[BaseException], ...] = (StorageInternalError, OperationalError, InterfaceError)
    try:
        import grpc

        errors += (grpc.RpcError,)
    except ImportError:
        pass
    return errors


class _Stopper:
    """``study.optimize`` callback: too many failures, or the launcher that started us is gone."""

    def __init__(self, target: int | None, parent_pid: int | None, log: Callable[[str], None]) -> None:
        self.target, self.parent_pid, self.log = target, parent_pid, log
        self.reason: str | None = None
        self.finished = 0  # trials this process finished (any state)

    def __call__(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        self.finished += 1
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if _STOP_REQUESTED.is_set():
            self.reason = "asked to stop (SIGINT/SIGTERM)"
        elif failed > MAX_FAILURES_FACTOR * max(self.target or 10, 10):
            self.reason = f"{failed} failed trials"
        elif self.parent_pid is not None and os.getppid() != self.parent_pid:
            self.reason = "the launcher that started this worker is gone"
        if self.reason:
            self.log(f"stopping: {self.reason}")
            study.stop()


def run_trials(study: Any, objective: Callable[[Any], Any], *, target: int | None, timeout: float | None = None,
               catch: tuple[type[Exception], ...] = (), log: Callable[[str], None] = _log,
               gc_after_trial: bool = False, parent_pid: int | None = None,
               callbacks: Sequence[Callable[[Any, Any], None]] = ()) -> int:
    """Run ``objective`` on ``study`` until it has ``target`` complete or pruned trials; keras-free.

    ``target`` None: until ``timeout`` or a stop. Before starting, fails and re-queues the RUNNING trials
    of dead workers of this machine (see :mod:`search._orphans`). A storage error (the database restarted,
    a connection was dropped mid-query) does not end the worker: its interrupted trial is failed with the
    reason and re-queued, and the loop resumes after a pause, up to :data:`MAX_STORAGE_ERRORS` in a row.
    ``callbacks`` are passed on to ``study.optimize``. Returns the number of trials this call finished.
    """
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from search._orphans import fail_orphans

    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    stopper = _Stopper(target, parent_pid, log)
    all_callbacks: list[Callable[[Any, Any], None]] = [*callbacks, stopper]
    if target is not None:
        all_callbacks.insert(0, MaxTrialsCallback(target, states=finished_states))
    reaped = fail_orphans(study, "its worker process died; retried")
    if reaped:
        log(f"failed and re-queued trials {reaped} of dead workers on this machine")
    deadline = None if timeout is None else time.monotonic() + timeout
    errors, finished_at_error = 0, 0
    storage_errors = _storage_errors()
    interrupted: str | None = None  # the reason of a storage error whose trial is not yet failed and re-queued
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        try:
            if interrupted is not None:
                lost = _fail_own_running(study, f"storage error during the trial ({interrupted}); retried")
                interrupted = None
                if lost:
                    log(f"failed and re-queued trials {lost} interrupted by the storage error")
            if remaining is not None and remaining <= 0:
                return stopper.finished
            if target is not None and len(study.get_trials(deepcopy=False, states=finished_states)) >= target:
                return stopper.finished
            study.optimize(objective, timeout=remaining, catch=catch, callbacks=all_callbacks,
                           gc_after_trial=gc_after_trial)
            return stopper.finished
        except Exception as exc:
            cause = _caused_by(exc, storage_errors)
            if cause is None:
                raise
            errors = errors + 1 if stopper.finished == finished_at_error else 1
            finished_at_error = stopper.finished
            if errors > MAX_STORAGE_ERRORS:
                raise
            interrupted = interrupted or _one_line(cause)
            wait = min(STORAGE_RETRY_SECONDS * 2 ** (errors - 1), 30.0)
            log(f"storage error ({_one_line(cause)}); retrying in {wait:.0f} s ({errors}/{MAX_STORAGE_ERRORS})")
            time.sleep(wait)


def _fail_own_running(study: Any, reason: str) -> list[int]:
    """Fail and re-queue the trials this process left RUNNING when ``study.optimize`` was cut short.

    The storage remembers the trials it started (``running_trial_ids``, see :mod:`storage._service`),
    including one created by ``study.ask()`` whose next query failed (no worker record, no heartbeat);
    trials recorded under this process's pid are added for storages that do not remember.
    """
    from optuna.trial import TrialState

    from search._orphans import fail_orphans
    from storage import fail_and_retry

    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # optuna.load_study wraps an RDB storage in a cache
    backend.remove_session()  # a session left in a failed transaction would refuse every later query
    failed = []
    for trial_id in getattr(backend, "running_trial_ids", list)():
        trial = storage.get_trial(trial_id)
        if trial.state == TrialState.RUNNING and fail_and_retry(study, trial, reason):
            failed.append(trial.number)
    return sorted(failed + fail_orphans(study, reason))


def _caused_by(exc: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``types`` in ``exc``'s chain (itself, its cause or context), else None.

    Optuna may hide a storage error: when telling the trial's result fails, ``_run_trial`` raises an
    AssertionError ("Should not reach") whose context is the StorageInternalError.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, types):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _one_line(exc: BaseException) -> str:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = " ".join(str(cause).split()).split("(Background on this error")[0].strip()
    return f"{type(cause).__name__}: {text[:300]}" if text else type(cause).__name__


def _setup(storage_url: str, study_name: str, gpu: str | None, backend: str | None, worker_index: int,
           heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
           grace_period: int | None = DEFAULT_GRACE_PERIOD, log: Callable[[str], None] = _log):
    configure_process(gpu, backend)
    from search.runtime import enable_memory_growth

    storage = open_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    gpus = enable_memory_growth()  # before TensorFlow's first op
    if gpu not in (None, INHERIT_GPUS) and not gpus and os.environ.get("KERAS_BACKEND") == "tensorflow":
        log(f"GPU {gpu} requested but TensorFlow sees no GPU (CUDA_VISIBLE_DEVICES={gpu}); running on the CPU")
    from search._study import open_study
    from search.data import embedding_matrix_for, load_dataset
    from search.kerastuner import PREFIX, get_space  # get_space also rebuilds "hypermodel:module:attr" spaces
    from storage import artifact_store_for

    study, config, context = open_study(storage, study_name, worker_index=worker_index)
    space = get_space(config.space)
    dataset = load_dataset(config.data, config.data_settings())
    # a keras-tuner hypermodel builds its own embedding: no word2vec for it
    embedding = None if config.space.startswith(PREFIX) else embedding_matrix_for(dataset, config.embedding_dim)
    return storage, study, config, context, space, dataset, embedding, artifact_store_for(storage_url)


def run_worker(storage_url: str, study_name: str, *, gpu: str | None = INHERIT_GPUS, backend: str | None = None,
               n_trials: int | None = None, timeout: float | None = None, worker_index: int = 0,
               heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
               grace_period: int | None = DEFAULT_GRACE_PERIOD, parent_pid: int | None = None) -> int:
    """Run trials of ``study_name`` until it has ``n_trials`` complete or pruned trials (None: the space's
    own count, else forever). ``gpu``: an id, None (CPU only) or INHERIT_GPUS."""
    shown = "" if gpu in (None, INHERIT_GPUS) else f" gpu {gpu}"
    prefix = f"[worker {worker_index}{shown}] "

    def log(message: str) -> None:
        _log(prefix + message)

    storage, study, config, context, space, dataset, embedding, artifacts = _setup(
        storage_url, study_name, gpu, backend, worker_index, heartbeat_interval, grace_period, log)
    import optuna

    from search._orphans import WORKER_ATTR
    from search._study import count_trials
    from storage import FAILURE_REASON_ATTR
    from search.errors import TrialFailure
    from search.objective import Objective

    target = n_trials if n_trials is not None else space.n_trials(context)
    objective = Objective(config, space, context, dataset, embedding, artifacts, log=log)
    if target is not None and count_trials(study) >= target:
        log(f"study '{study_name}' already has {target} finished trials")
        return 0
    # Optuna logs every failed trial with its traceback at WARNING; the objective logs one line instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    def recorded(trial: optuna.Trial) -> float:
        # Who runs the trial, before anything else (the objective records it again after sampling): a
        # worker that dies while the sampler works still leaves a trial the launcher can attribute to it.
        trial.set_user_attr(WORKER_ATTR, objective.environment)
        try:
            return objective(trial)
        except KeyboardInterrupt:  # the objective records this reason itself once the model is training
            if FAILURE_REASON_ATTR not in trial.user_attrs:
                trial.set_user_attr(FAILURE_REASON_ATTR, INTERRUPTED_REASON)
            raise

    run_trials(study, recorded, target=target, timeout=timeout, catch=(TrialFailure,), log=log,
               gc_after_trial=True, parent_pid=parent_pid)
    return 0


def replay_trial(storage_url: str, study_name: str, number: int, *, gpu: str | None = INHERIT_GPUS,
                 backend: str | None = None) -> int:
    """Re-run one trial with its parameters and seed; print its metrics beside the stored ones."""
    storage, study, config, context, space, dataset, embedding, _ = _setup(
        storage_url, study_name, gpu, backend, 0, heartbeat_interval=None, grace_period=None)
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


def parse_gpu(text: str | None, source: str = "--gpu") -> str | None:
    """A GPU id as given to CUDA_VISIBLE_DEVICES: a non-negative integer."""
    from search.errors import StudyConfigError

    if text is None:
        return None
    text = text.strip()
    if not text.isdigit():
        raise StudyConfigError(f"got '{text}'; expected one GPU id such as 0", source=source)
    return text


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
    parser.add_argument("--trials", type=int, default=None, help="stop when the study has this many finished trials")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("--heartbeat-interval", type=int, default=DEFAULT_HEARTBEAT_INTERVAL,
                        help="seconds between heartbeats of a running trial (SQL storage)")
    parser.add_argument("--grace-period", type=int, default=DEFAULT_GRACE_PERIOD,
                        help="seconds without a heartbeat after which a trial is failed and retried")
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=int, default=None, metavar="N", help="re-run trial N and compare")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from search.errors import StudyConfigError
    from storage import resolve_storage_url

    gpu = None if args.cpu else parse_gpu(args.gpu) if args.gpu is not None else INHERIT_GPUS
    if args.trials is not None and args.trials < 1:
        raise StudyConfigError(f"got {args.trials}; expected at least 1", source="--trials")
    url = resolve_storage_url(args.storage)
    if args.replay is not None:
        return replay_trial(url, args.study, args.replay, gpu=gpu, backend=args.backend)
    return run_worker(url, args.study, gpu=gpu, backend=args.backend, n_trials=args.trials, timeout=args.timeout,
                      worker_index=args.worker_index, heartbeat_interval=args.heartbeat_interval,
                      grace_period=args.grace_period, parent_pid=args.parent_pid)


_STOP_REQUESTED = threading.Event()
REINTERRUPT_SECONDS = 5.0  # still running this long after SIGINT/SIGTERM: interrupt again


def _interrupt(signum: int, frame: Any) -> None:
    """SIGINT/SIGTERM: KeyboardInterrupt in the main thread (Optuna fails the running trial with it).

    A KeyboardInterrupt raised while Python runs a ``__del__`` or weakref callback is printed and
    swallowed ("Exception ignored in ..."), and the trial would go on. So the request is remembered: the
    worker stops after the current trial (see ``_Stopper``), and a watchdog interrupts again every few
    seconds until the process has ended.
    """
    if not _STOP_REQUESTED.is_set():
        _STOP_REQUESTED.set()
        threading.Thread(target=_reinterrupt, name="stop-watchdog", daemon=True).start()
    raise KeyboardInterrupt


def _reinterrupt() -> None:
    while True:
        time.sleep(REINTERRUPT_SECONDS)
        _thread.interrupt_main(signal.SIGINT)


def install_stop_handlers() -> None:
    """Ctrl-C and SIGTERM (``docker stop``, the launcher) stop the worker, failing its running trial."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def process_entry(argv: list[str]) -> None:
    """Target of the launcher's spawned processes: own process group (Ctrl-C reaches the launcher,
    which stops each worker once), then the same code path as the command line. The worker stops after
    its current trial if the launcher disappears (killed without a chance to stop it)."""
    os.setpgrp()
    install_stop_handlers()
    sys.exit(run_main(main, [*argv, "--parent-pid", str(os.getppid())]))


if __name__ == "__main__":
    install_stop_handlers()
    raise SystemExit(run_main(main))
