"""Run a study: ``python -m search.launch --study attn``.

Creates (or resumes) the Optuna study in the SQL store, then starts and supervises the workers that run
its trials: one per listed GPU (``--gpus 0,1``; repeat an id to share a GPU), or ``--workers N`` on the
CPU. This process never imports keras or tensorflow and holds no GPU.

Flags beat environment variables, which beat defaults: the storage is ``--storage``, else
``$OPTUNA_STORAGE``, else ``sqlite:///studies.db`` in the working directory.

Every setting is stored on the study (its run configuration), where the workers read it; the same command
resumes the study. Resuming with another value of a flag that defines the study (the data and its
settings, ``--epochs``, ``--pruner``, ``--sampler``, ``--seed``, ``--set``, ``--no-save-models``) is
refused, writing nothing; ``--trials``, ``--timeout``, ``--memory-budget-gb`` and the heartbeat settings
may change, and the study then holds the new values. Without ``--pruner``, a resumed study keeps the
pruner it was created with (the default has changed between versions).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search._cli import CliParser, HelpFormatter, parse_key_values, run_main
from search.config import BUDGETED_TRIALS, DEFAULT_BUDGET_SECONDS, DEFAULT_TRIALS, PRUNERS, SAMPLERS, RunConfig
from search.errors import StudyConfigError
from search.record import INTERRUPTED_REASON, TrialRecord

if TYPE_CHECKING:
    import optuna

    from search.data import Dataset
    from spaces import SearchSpace

__all__ = ["main", "build_parser", "parse_gpus", "Supervisor", "describe_exit"]

ABLATION = "ablation"  # the space that takes its parameters from --from-study
STOP_GRACE_SECONDS = 60.0
#: CPU workers without --workers: one, with the backend's pools over every core. Measured side by side
#: on the 2-core machine (bench/cpu_workers.py, BENCHMARKS.md "CPU workers"): one pinned one-thread
#: worker per core trained 0.83x as many documents in all for the no-attention strong start and 1.38x
#: for label attention, and each of its whole-validation reports took longer: no clear gain, while one
#: trial at a time gives the pruner and TPE every result sooner.
DEFAULT_CPU_WORKERS = 1
LAUNCHER_POOL_SIZE = 1  # the launcher only counts trials and fails a dead worker's trial


def parse_gpus(text: str | None) -> list[str] | None:
    if text is None:
        return None
    ids = [p.strip() for p in text.split(",") if p.strip()]
    if not ids or not all(i.isdigit() for i in ids):
        raise StudyConfigError(f"got '{text}'; expected comma-separated GPU ids such as 0,1 or 0,0,1,1",
                               source="--gpus")
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m search.launch", description=__doc__.split("\n\n")[0],
                  formatter_class=HelpFormatter)
    p.add_argument("--study", required=True, help="study name; also the space unless --space is given "
                   "(attn, baseline, seed, ablation)")
    p.add_argument("--space", default=None, help="search space (default: the study name)")
    p.add_argument("--hypermodel", default=None, metavar="MODULE:ATTR",
                   help="run a keras-tuner HyperModel (subclass or instance) or build(hp) function as the study's "
                        "space, e.g. mypkg.tuning:MyHyperModel or tuning.py:build_model (see search.kerastuner)")
    p.add_argument("--fit", action="append", default=[], metavar="KEY=VALUE",
                   help="with --hypermodel: a fit argument as given to tuner.search(...), e.g. --fit batch_size=64")
    p.add_argument("--storage", default=None, help="storage URL (default: $OPTUNA_STORAGE, else sqlite:///studies.db)")
    p.add_argument("--data", default="debtags50", help="bundled dataset name or a .npz/.csv/.jsonl path")
    p.add_argument("--trials", type=int, default=None,
                   help=f"finished (complete or pruned) trials to reach (default: as many as --timeout allows, "
                        f"else {DEFAULT_TRIALS}; fixed designs: their own count); may change when resuming")
    p.add_argument("--timeout", type=float, default=None,
                   help="the run's wall-clock budget in seconds: workers start no trial after it and stop a "
                        "running one (at its next report in its first epoch, within a batch after it; it keeps "
                        "its best report); default "
                        f"{DEFAULT_BUDGET_SECONDS:.0f} for an open-ended study given no --trials; may change when "
                        "resuming")
    p.add_argument("--epochs", type=int, default=RunConfig.epochs,
                   help="maximum epochs per trial")
    p.add_argument("--report-every", type=int, default=RunConfig.report_every, metavar="DOCS",
                   help="training documents between two reports of whole-validation micro-F1 to the pruner "
                        "in a trial's first epoch (later epochs report once, at their end; the pruner's step is "
                        "one such interval); default: about 5,000, so a long first epoch is reported several "
                        "times and a short one once")
    p.add_argument("--patience", type=int, default=RunConfig.patience, metavar="STEPS",
                   help="report intervals (pruner steps) without a better tuned validation micro-F1 after which a "
                        "trial stops by itself; default: two epochs' worth; 0: never")
    p.add_argument("--limit", type=int, default=RunConfig.limit,
                   help="use only the first N training documents (default, or 0: all of them)")
    p.add_argument("--max-len", type=int, default=RunConfig.max_len, help="tokens per document")
    p.add_argument("--vocab-size", type=int, default=RunConfig.vocab_size, help="vocabulary size")
    p.add_argument("--pruner", choices=PRUNERS, default=None,
                   help=f"pruner (default: {RunConfig.pruner} for a new study, none for the ablation study, whose "
                        "comparison needs every trial's full budget; a resumed study keeps its own)")
    p.add_argument("--sampler", choices=SAMPLERS, default=RunConfig.sampler, help="sampler")
    p.add_argument("--seed", type=int, default=RunConfig.seed, help="base seed (trial seed = seed + trial number)")
    p.add_argument("--from-study", default=None, help="ablation: the study whose best trial fixes the parameters")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a model parameter for every trial (JSON value), e.g. --set rnn_layers=2")
    p.add_argument("--gpus", default=None,
                   help="GPU ids, one worker process each, e.g. 0,1,2,3 (repeat an id to run two trials on one "
                        "GPU: 0,0,1,1); each worker sees only its GPU (CUDA_VISIBLE_DEVICES)%(default).0s")
    p.add_argument("--workers", type=int, default=None,
                   help=f"CPU worker processes, without --gpus (default {DEFAULT_CPU_WORKERS}: one worker on every "
                        "core; one per core was no faster on a 2-core machine, see the README)%(default).0s")
    p.add_argument("--threads-per-worker", type=int, default=None, metavar="N",
                   help="CPU workers: threads for each one's numerical work, each worker pinned to cores of its "
                        "own (default: the cores divided among the workers, so they never oversubscribe "
                        "them)%(default).0s")
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                   help="Keras backend for the workers (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--max-restarts", type=int, default=3, help="restarts of a crashed worker before giving up")
    p.add_argument("--heartbeat-interval", type=int, default=RunConfig.heartbeat_interval,
                   help="seconds between heartbeats of a running trial (SQL storage); may change when resuming")
    p.add_argument("--grace-period", type=int, default=RunConfig.grace_period,
                   help="seconds without a heartbeat after which a trial (of a worker on any node) is failed and "
                        "retried; may change when resuming")
    p.add_argument("--memory-budget-gb", type=float, default=RunConfig.memory_budget / 1024**3,
                   help="refuse configurations whose attention scores need more than this per batch; may change "
                        "when resuming")
    p.add_argument("--no-save-models", action="store_true", help="do not save the best models as artifacts")
    p.add_argument("--replay", type=int, default=None, metavar="N",
                   help="re-run trial N of the study with its seed and compare its metrics, then exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


EXIT_INPUT_ERROR = 2  # run_main's status for bad input: restarting would not help
EXIT_INTERRUPTED = 130  # a worker stopped by SIGINT/SIGTERM: stopped, not crashed
EXIT_GAVE_UP = 3  # a worker whose trials kept failing for the same reason (search.worker.EXIT_GAVE_UP)
RESTART_BACKOFF_SECONDS = 1.0  # wait before the first restart of a crashed worker; doubled each time
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class _Child:
    index: int
    gpu: str | None
    argv: list[str]
    process: Any = None
    restarts: int = 0
    done: bool = False
    restart_at: float | None = None
    pids: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"worker {self.index}" + ("" if self.gpu is None else f" (gpu {self.gpu})")


def describe_exit(code: int | None) -> str:
    """``-9`` -> ``killed by SIGKILL``; ``1`` -> ``exit status 1``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Supervisor:
    """Starts the worker processes (spawn), restarts crashed ones a bounded number of times, and stops
    them all on Ctrl-C / SIGTERM.

    A worker that exits 0 is done; one that exits 2 (bad input), 3 (its trials keep failing for the same
    reason: restarted, it would fail again) or 130 (interrupted) is done and reported; any other exit, a
    signal included, is a crash: reported, ``on_crash(pid, exitcode)`` is called (the launcher fails and
    re-queues that worker's trial), and the worker is started again after a back-off, at most
    ``max_restarts`` times per worker. The first Ctrl-C / SIGTERM forwards one SIGINT
    to each worker (the trial in progress is failed with its reason, the worker exits); workers still
    alive after ``stop_grace`` seconds, or at a second Ctrl-C, are killed.
    """

    def __init__(self, children: list[_Child], max_restarts: int, on_tick: Callable[[], None] | None = None,
                 on_crash: Callable[[int, int | None], None] | None = None,
                 entry: Callable[[list[str]], None] | None = None, poll_seconds: float = 0.5,
                 stop_grace: float = STOP_GRACE_SECONDS) -> None:
        self.children = children
        self.max_restarts = max_restarts
        self.on_tick = on_tick
        self.on_crash = on_crash
        self.entry = entry
        self.poll_seconds = poll_seconds
        self.stop_grace = stop_grace
        self.stopping = False
        self.ctx = mp.get_context("spawn")

    def _start(self, child: _Child) -> None:
        entry = self.entry
        if entry is None:
            from search.worker import process_entry as entry
        child.process = self.ctx.Process(target=entry, args=(child.argv,), name=f"worker-{child.index}")
        child.process.start()
        child.pids.append(child.process.pid)

    def _alive(self) -> list[_Child]:
        return [c for c in self.children if c.process is not None and c.process.is_alive()]

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stopping:  # second Ctrl-C: do not wait for the trials to wind down
            print(f"\n{signal.Signals(signum).name} again: killing workers", file=sys.stderr, flush=True)
            self._kill_alive()
            return
        self.stopping = True
        print(f"\nstopping workers ({signal.Signals(signum).name}; again to kill them)...", file=sys.stderr,
              flush=True)
        for child in self._alive():
            with contextlib.suppress(ProcessLookupError):  # it has just exited
                os.kill(child.process.pid, signal.SIGINT)

    def _kill_alive(self) -> None:
        for child in self._alive():
            child.process.kill()

    def _reap(self, child: _Child, now: float) -> bool:
        """Handle a worker that has exited; return whether it will run again."""
        code = child.process.exitcode
        if code == EXIT_GAVE_UP and not self.stopping:  # restarted, it would fail the same way
            child.done = True
            print(f"{child.label} stopped: its trials keep failing for the same reason (above); not restarted",
                  file=sys.stderr, flush=True)
            return False
        if self.stopping or code in (0, EXIT_INPUT_ERROR, EXIT_INTERRUPTED):
            child.done = True
            if code not in (0, None) and not self.stopping:
                print(f"{child.label} exited ({describe_exit(code)})", file=sys.stderr, flush=True)
            return False
        pid = child.pids[-1]
        if child.restarts >= self.max_restarts:
            print(f"{child.label} (pid {pid}) crashed ({describe_exit(code)}); not restarted: "
                  f"{self.max_restarts} restarts used", file=sys.stderr, flush=True)
            child.done = True
        else:
            child.restarts += 1
            wait = min(RESTART_BACKOFF_SECONDS * 2 ** (child.restarts - 1), MAX_BACKOFF_SECONDS)
            child.restart_at = now + wait
            print(f"{child.label} (pid {pid}) crashed ({describe_exit(code)}); restart {child.restarts}/"
                  f"{self.max_restarts} in {wait:.0f} s", file=sys.stderr, flush=True)
        if self.on_crash is not None:
            self.on_crash(pid, code)
        return not child.done

    def run(self) -> int:
        old = {s: signal.signal(s, self._request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                self._start(child)
            stop_deadline: float | None = None
            while True:
                now = time.monotonic()
                pending = 0
                for child in self.children:
                    if child.done:
                        continue
                    if child.restart_at is not None:
                        if self.stopping:
                            child.done, child.restart_at = True, None
                            continue
                        if now >= child.restart_at:
                            child.restart_at = None
                            self._start(child)
                        pending += 1
                    elif child.process.is_alive() or self._reap(child, now):
                        pending += 1
                if self.on_tick:
                    self.on_tick()
                if pending == 0:
                    break
                if self.stopping:
                    stop_deadline = stop_deadline or time.monotonic() + self.stop_grace
                    if time.monotonic() > stop_deadline:
                        self._kill_alive()
                time.sleep(self.poll_seconds)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
        if self.stopping:
            return EXIT_INTERRUPTED
        codes = [c.process.exitcode for c in self.children]
        return EXIT_INPUT_ERROR if EXIT_INPUT_ERROR in codes else 1 if any(c != 0 for c in codes) else 0

    def all_pids(self) -> set[int]:
        return {pid for child in self.children for pid in child.pids}


def _fail_orphans(study: optuna.Study, pids: set[int], reason: str, retry: bool = False) -> list[int]:
    """Fail (and re-queue if ``retry``) the RUNNING trials that one of our stopped workers was running."""
    from search._orphans import fail_orphans

    return fail_orphans(study, reason, pids=pids, retry=retry)


def _summary(study: optuna.Study, top: int = 5) -> str:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    lines = ["trials: " + ", ".join(f"{k.lower()} {v}" for k, v in states.items() if v)]
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -(t.value or 0.0))[:top]
    if not done:
        return "\n".join([*lines, "no complete trial yet"])
    keys = sorted({k for t in done for k in t.params})
    head = ["trial", "val micro-F1", "thr", "epochs", *keys]
    records = [TrialRecord.from_trial(t) for t in done]
    rows = [[str(t.number), f"{t.value:.4f}", f"{r.threshold if r.threshold is not None else float('nan'):.2f}",
             str(r.epochs[-1]["epoch"] if r.epochs else 0), *[_fmt(t.params.get(k, "-")) for k in keys]]
            for t, r in zip(done, records, strict=True)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines.append(f"best {len(done)} trials of study '{study.study_name}':")
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _against_reference(study: optuna.Study, config: RunConfig, dataset: Dataset) -> str:
    """The best trial's validation micro-F1 beside the TF-IDF reference's on the same documents, so the
    user sees at once whether the search earned its keep (the reference takes under a minute here)."""
    from optuna.trial import TrialState

    from search.reference import fit_reference

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reference = fit_reference(config.data, config.data_settings(), dataset=dataset)
    line = (f"TF-IDF + logistic regression ({reference.input}, the reference): validation micro-F1 "
            f"{reference.valid_micro_f1:.4f}")
    if not done:
        return line
    best = max(done, key=lambda t: float(t.value or 0.0))
    gap = float(best.value or 0.0) - reference.valid_micro_f1
    verdict = "better than the reference" if gap > 0 else "not better than the reference"
    return (f"{line}; best trial {best.number}: {best.value:.4f} ({gap * 100:+.1f} points, {verdict}; "
            f"python -m search.report --study {study.study_name} scores both on the test split)")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _space_of(args: argparse.Namespace) -> SearchSpace:
    from search.kerastuner import HyperModelSpace  # keras-free until a trial runs
    from spaces import get_space

    if args.hypermodel and args.space:
        raise StudyConfigError(f"got --space {args.space} and --hypermodel {args.hypermodel}; expected one of them",
                               source="--hypermodel")
    if args.fit and not args.hypermodel:
        raise StudyConfigError("is only for --hypermodel studies", source="--fit")
    if args.hypermodel:
        space: SearchSpace = HyperModelSpace(args.hypermodel)
        if args.sampler == "grid":
            space.grid({})  # refused: a hypermodel's parameters exist only while build(hp) runs
    else:
        space = get_space(args.space or args.study, source="--space" if args.space else "--study")
    if args.from_study and space.name != ABLATION:
        raise StudyConfigError(f"got --from-study {args.from_study} for space {space.name}; expected it only with "
                               f"the {ABLATION} space, which takes its parameters from that study",
                               source="--from-study")
    return space


def _run_config(args: argparse.Namespace, space: SearchSpace) -> RunConfig:
    """The run configuration of the flags (refused where a value cannot run); nothing is opened."""
    budget = args.memory_budget_gb
    if not (math.isfinite(budget) and budget > 0):
        raise StudyConfigError(f"got {budget:g}; expected a positive number of GiB of attention scores per batch",
                               source="--memory-budget-gb")
    if args.timeout is not None and not args.timeout > 0:
        raise StudyConfigError(f"got {args.timeout:g}; expected a positive number of seconds (or no --timeout)",
                               source="--timeout")
    return RunConfig(study=args.study, space=space.name, data=args.data, vocab_size=args.vocab_size,
                     max_len=args.max_len, limit=args.limit or None, epochs=args.epochs, seed=args.seed,
                     pruner=args.pruner or ("none" if space.name == ABLATION else RunConfig.pruner),
                     sampler=args.sampler, save_models=not args.no_save_models,
                     fixed=parse_key_values(args.set, "--set"), trials=args.trials, timeout=args.timeout,
                     memory_budget=int(budget * 1024**3), heartbeat_interval=args.heartbeat_interval,
                     grace_period=args.grace_period, report_every=args.report_every, patience=args.patience)


def with_default_budget(config: RunConfig, space: SearchSpace, context: Mapping[str, Any]) -> RunConfig:
    """Neither a trial count nor a budget given: an open-ended search gets :data:`DEFAULT_BUDGET_SECONDS`,
    so the main command ends in a known time on the whole training split. A fixed design (the ablation,
    the seed's trials) runs its own count."""
    if config.timeout is not None or config.trials is not None or space.n_trials(context) is not None:
        return config
    return dataclasses.replace(config, timeout=DEFAULT_BUDGET_SECONDS)


def _check_replay(url: str, source: str, study_name: str, number: int) -> None:
    """Refuse a replay of a store, study or trial that does not exist, before a worker is started."""
    from search._study import read_study
    from search._worker._replay import check_replay
    from storage import close_storage, open_existing_storage

    storage = open_existing_storage(url, source=source)
    try:
        check_replay(number)(storage, read_study(storage, study_name))
    finally:
        close_storage(storage)


def _source_study(storage: optuna.storages.BaseStorage | None, name: str | None, url: str) -> optuna.Study | None:
    """The ablation's ``--from-study`` (None when not given: the space refuses that itself)."""
    import optuna

    from search._study import require_study
    from storage import mask_url

    if name is None:
        return None
    if storage is None:
        raise StudyConfigError(f"got '{name}': no such study ({mask_url(url)} does not exist yet); expected a study "
                               "of this storage with a complete trial", source="--from-study")
    require_study(storage, name, source=f"--from-study '{name}'", expected="a study with a complete trial")
    return optuna.load_study(study_name=name, storage=storage)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check everything that can be refused, and only then create or open the store and the study:
    a refused launch writes nothing (no SQLite file, no artifact folder, no study)."""
    args = build_parser().parse_args(argv)
    import optuna

    from search._study import (
        check_fixed_params,
        prepare_study,
        read_study,
        study_exists,
        trial_target,
        with_stored_pruner,
    )
    from search.data import embedding_matrix_for, load_dataset
    from search.kerastuner import HyperModelSpace, check_spec
    from storage import create_storage, mask_url, resolve_storage_url, sqlite_path, storage_source

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # -- everything that can be refused, checked before anything is written ---------------------------
    space = _space_of(args)
    hypermodel = isinstance(space, HyperModelSpace)
    gpus = parse_gpus(args.gpus)
    if gpus is not None and args.workers is not None:
        raise StudyConfigError(f"got --gpus {args.gpus} and --workers {args.workers}; expected one of them "
                               "(--gpus starts one worker per listed id)", source="--workers")
    workers = DEFAULT_CPU_WORKERS if args.workers is None else args.workers
    if workers < 1:
        raise StudyConfigError(f"got {workers}; expected at least 1", source="--workers")
    if args.threads_per_worker is not None and args.threads_per_worker < 1:
        raise StudyConfigError(f"got {args.threads_per_worker}; expected at least 1", source="--threads-per-worker")
    if args.max_restarts < 0:
        raise StudyConfigError(f"got {args.max_restarts}; expected 0 or more", source="--max-restarts")
    # Every setting of the run goes into the study's run configuration, where each worker reads it.
    config = _run_config(args, space)
    check_fixed_params(space, config.fixed)  # the factory's own checks on every --set value
    url = resolve_storage_url(args.storage)
    source = storage_source(args.storage)
    fit_kwargs = parse_key_values(args.fit, "--fit") if hypermodel else {}
    if args.replay is not None:  # the study's stored settings run the replay; the store must hold it
        _check_replay(url, source, args.study, args.replay)
        worker_argv = ["--study", args.study, "--storage", url, "--replay", str(args.replay)]
        worker_argv += ["--gpu", gpus[0]] if gpus else ["--cpu"]
        return _run_children([_Child(0, gpus[0] if gpus else None, worker_argv)], args)
    dataset = load_dataset(config.data, config.data_settings())

    def open_store() -> optuna.storages.BaseStorage:
        # The heartbeat settings are checked here, as every worker's storage will get them.
        return create_storage(url, heartbeat_interval=config.heartbeat_interval, grace_period=config.grace_period,
                              pool_size=LAUNCHER_POOL_SIZE, max_overflow=LAUNCHER_POOL_SIZE)

    # A SQLite file that is not a study store yet is created only once the launch is known to be good.
    existing = sqlite_path(url) is None or _is_store(url)
    reader = open_store() if existing else None
    context = None
    if reader is None or not study_exists(reader, args.study):  # a new study: its space prepares it now
        options: dict[str, Any] = {}
        if isinstance(space, HyperModelSpace):  # loaded and built once in a child (this one never imports keras)
            check_spec(space.spec, fixed=config.fixed, n_labels=dataset.n_labels)
            options["fit_kwargs"] = fit_kwargs
        if space.name == ABLATION:
            options["source_study"] = _source_study(reader, args.from_study, url)
        context = space.prepare(None, **options)
    stored = read_study(reader, args.study) if context is None and reader is not None else None
    known = context if context is not None else stored.context if stored is not None else {}
    config = with_default_budget(with_stored_pruner(config, stored, args.pruner), space, known)
    storage = reader if reader is not None else open_store()
    try:
        study, created = prepare_study(storage, config, space, dataset.fingerprint,
                                       train_documents=len(dataset.x_train), context=context)
    except optuna.exceptions.DuplicatedStudyError:  # another launcher (another container) created it first
        time.sleep(2.0)
        study, created = prepare_study(storage, config, space, dataset.fingerprint,
                                       train_documents=len(dataset.x_train), context=context)
    target = trial_target(config, space, read_study(storage, args.study).context)
    goal = (f"until its {config.timeout / 60:g}-minute budget (--timeout {config.timeout:g})"
            if target >= BUDGETED_TRIALS and config.timeout else f"target {target} finished trials")
    print(f"{'created' if created else 'resuming'} study '{args.study}' (space {space.name} v{space.version}) "
          f"in {mask_url(url)}; data {dataset.name}: {len(dataset.x_train)} train / {len(dataset.x_valid)} valid "
          f"documents, {dataset.n_labels} labels; {goal}", flush=True)
    if not hypermodel:  # a hypermodel builds its own embedding
        embedding_matrix_for(dataset, config.embedding_dim)  # trained once here, cached for every worker

    slots: list[str | None] = list(gpus) if gpus else [None] * workers
    placement = cpu_placement(len(slots), args.threads_per_worker, sorted(os.sched_getaffinity(0)),
                              on_gpus=gpus is not None)
    children = []
    for i, gpu in enumerate(slots):
        # who the worker is; how it runs (target, timeout, heartbeats, ...) it reads from the study
        worker_argv = ["--study", args.study, "--storage", url, "--worker-index", str(i)]
        worker_argv += ["--gpu", gpu] if gpu is not None else ["--cpu"]
        if args.backend:
            worker_argv += ["--backend", args.backend]
        worker_argv += placement[i]
        children.append(_Child(i, gpu, worker_argv))
    code = _run_children(children, args, study, target)
    print(_summary(study), flush=True)
    # Not after Ctrl-C: fitting the reference takes a minute on full data, and a user who stops a search
    # wants the prompt back (the report compares the two).
    if not hypermodel and code != EXIT_INTERRUPTED:
        print(_against_reference(study, config, dataset), flush=True)
    given = args.storage is not None or "OPTUNA_STORAGE" in os.environ
    storage_flag = f" --storage '{mask_url(url)}'" if given else ""
    print(f"open the dashboard: python -m search.dashboard{storage_flag}", flush=True)
    if code == EXIT_INTERRUPTED:
        print(f"stopped; run the same command again to resume study '{args.study}'", file=sys.stderr)
    return code


def cpu_placement(workers: int, threads: int | None, cores: Sequence[int], *, on_gpus: bool = False) -> list[list[str]]:
    """Each worker's ``--threads``/``--cpus`` arguments: the machine's cores shared out among the workers.

    One worker on a CPU machine gets no arguments: it uses every core, with TensorFlow's pools split
    between ops (the worker's own default, :func:`search.runtime.op_threads`; the measured best here,
    see :data:`DEFAULT_CPU_WORKERS`). Several get ``threads`` each (default: the
    cores divided among them, at least one), each pinned to cores of its own while that fits, so N
    workers never run N times every core's worth of threads. GPU workers are left alone unless
    ``threads`` is given: the GPU does their numerical work.
    """
    if (on_gpus and threads is None) or (workers == 1 and threads in (None, len(cores))):
        return [[] for _ in range(workers)]
    per = threads if threads is not None else max(1, len(cores) // workers)
    if per * workers > len(cores):  # asked to oversubscribe: the threads, but no shared-out cores
        return [["--threads", str(per)] for _ in range(workers)]
    return [["--threads", str(per), "--cpus", ",".join(map(str, cores[i * per:(i + 1) * per]))]
            for i in range(workers)]


def _is_store(url: str) -> bool:
    """Whether the SQLite file of ``url`` is a study store already (missing, empty, or other: not yet)."""
    from search.errors import StorageError
    from storage import require_existing_store

    try:
        require_existing_store(url)
    except StorageError:
        return False
    return True


def _run_children(children: list[_Child], args: argparse.Namespace, study: optuna.Study | None = None,
                  target: int = 0) -> int:
    """Supervise ``children``. With ``study``: a progress bar towards ``target`` finished trials, and the
    trials of crashed workers failed and re-queued, those of stopped ones failed."""
    if study is None:
        return Supervisor(children, args.max_restarts).run()
    from search._study import count_trials

    watched = study
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=None if target >= BUDGETED_TRIALS else target, desc=f"study {watched.study_name}",
                   unit="trial", file=sys.stderr,
                   initial=min(count_trials(watched), target), dynamic_ncols=True)
    last = [0.0]

    def tick() -> None:
        if bar is None or time.monotonic() - last[0] < 2.0:
            return
        last[0] = time.monotonic()
        bar.n = min(count_trials(watched), target)
        bar.refresh()

    def on_crash(pid: int, code: int | None) -> None:
        failed = _fail_orphans(watched, {pid}, f"its worker (pid {pid}) crashed ({describe_exit(code)}); retried",
                               retry=True)
        if failed:
            print(f"failed trial {', '.join(map(str, failed))} of the crashed worker; re-queued", file=sys.stderr,
                  flush=True)

    supervisor = Supervisor(children, args.max_restarts, on_tick=tick, on_crash=on_crash)
    try:
        code = supervisor.run()
    finally:
        if bar is not None:
            bar.n = min(count_trials(watched), target)
            bar.close()
    reason = INTERRUPTED_REASON if supervisor.stopping else "worker stopped before the trial finished"
    failed = _fail_orphans(watched, supervisor.all_pids(), reason)
    if failed:
        print(f"marked trials {failed} failed (their worker stopped)", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(run_main(main))
