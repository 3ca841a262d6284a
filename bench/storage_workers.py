"""Storage cost of parallel workers: SQLite vs PostgreSQL, 1-8 worker processes, and inside a real trial.

    python bench/storage_workers.py [--workers 1,2,4,8] [--trials 200] [--postgres URL] [--real-trials 3]

Part 1, trivial objective (``x = suggest_float``; no model): for each store and worker count, N worker
processes (spawn) run the real worker loop (``search.worker.run_trials`` on ``open_storage``: heartbeats,
two-connection pool) with Optuna's RandomSampler until the study has ``--trials`` complete trials. Prints
trials per second (all workers together, from a common start) and the storage share of the workers' time:
seconds spent inside storage calls on the trial's thread / the workers' wall time. With a trivial
objective nearly all of a trial is storage, so this is the store's throughput ceiling.

Part 2, real trials: ``--real-trials`` trials of the ``attn`` space (bundled debtags50, 3,000 training
documents, 128 tokens, 2 epochs, TPE) in this process, per store; prints the trial's storage calls (count,
seconds) and their share of the trial's duration (target: under 1%). Storage calls are timed on the
storage object the study uses (outermost calls only; the heartbeat thread's writes are shown apart, they
run beside the trial and do not delay it).

PostgreSQL: ``--postgres``, else ``$SEARCH_TEST_POSTGRES_URL``, else postgresql+psycopg://postgres@127.0.0.1/test;
skipped if unreachable.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Every call a study, trial or Optuna's heartbeat makes on its storage.
STORAGE_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id", "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial", "get_all_trials", "get_n_trials",
    "get_best_trial", "get_trial_params", "get_trial_user_attrs", "get_trial_system_attrs",
    "record_heartbeat", "_get_stale_trial_ids", "get_heartbeat_interval", "get_heartbeat_stale_trial_callback",
)


@dataclass
class StorageClock:
    """Seconds and calls inside a storage's methods, per thread kind (the trial's, the heartbeat's)."""

    main: float = 0.0
    main_calls: int = 0
    other: float = 0.0
    other_calls: int = 0
    _depth: threading.local = field(default_factory=threading.local)

    def reset(self) -> None:
        self.main = self.other = 0.0
        self.main_calls = self.other_calls = 0


def time_storage(storage: Any, main_thread: threading.Thread | None = None) -> StorageClock:
    """Wrap ``storage``'s methods (on the instance) with timers; nested calls are counted once."""
    clock = StorageClock()
    main_thread = main_thread or threading.main_thread()

    def wrap(name: str, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(clock._depth, "n", 0)
            clock._depth.n = depth + 1
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                clock._depth.n = depth
                if depth == 0:
                    spent = time.perf_counter() - t0
                    if threading.current_thread() is main_thread:
                        clock.main += spent
                        clock.main_calls += 1
                    else:
                        clock.other += spent
                        clock.other_calls += 1
        return timed

    for name in STORAGE_METHODS:
        method = getattr(storage, name, None)
        if method is not None:
            setattr(storage, name, wrap(name, method))
    return clock


# ---------------------------------------------------------------------------------------------- part 1


def _trivial_worker(url: str, study_name: str, target: int, barrier: Any, out: Any) -> None:
    import optuna

    from search.worker import open_storage, run_trials

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler())
    clock = time_storage(study._storage)
    barrier.wait()
    t0 = time.perf_counter()
    done = run_trials(study, lambda trial: trial.suggest_float("x", 0.0, 1.0), target=target, log=lambda m: None)
    wall = time.perf_counter() - t0
    out.put({"start": time.time() - wall, "end": time.time(), "wall": wall, "done": done,
             "storage": clock.main, "calls": clock.main_calls})
    getattr(storage, "engine", None) and storage.engine.dispose()


def run_trivial(url: str, workers: int, target: int) -> dict[str, float]:
    import optuna

    from search.worker import open_storage

    name = f"bench-{uuid.uuid4().hex[:10]}"
    storage = open_storage(url, heartbeat_interval=None)
    optuna.create_study(study_name=name, storage=storage)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_trivial_worker, args=(url, name, target, barrier, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    rows = [out.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join()
    study = optuna.load_study(study_name=name, storage=storage)
    complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    optuna.delete_study(study_name=name, storage=storage)
    storage.engine.dispose()
    span = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    return {"trials": complete, "per_s": complete / span,
            "share": sum(r["storage"] for r in rows) / sum(r["wall"] for r in rows),
            "ms_per_trial": 1000 * sum(r["storage"] for r in rows) / max(1, sum(r["done"] for r in rows))}


# ---------------------------------------------------------------------------------------------- part 2


@contextmanager
def _quiet() -> Iterator[None]:
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def run_real(url: str, n_trials: int, artifacts: Path) -> dict[str, float]:
    import optuna

    from search._study import make_pruner, make_sampler, prepare_study
    from search.config import RunConfig
    from search.data import embedding_matrix_for, load_dataset
    from search.errors import TrialFailure
    from search.objective import Objective
    from search.worker import open_storage
    from spaces import get_space
    from storage import artifact_store_for

    config = RunConfig(study=f"bench-real-{uuid.uuid4().hex[:8]}", space="attn", epochs=2, pruner="none")
    space = get_space("attn")
    dataset = load_dataset(config.data, config.data_settings())
    embedding = embedding_matrix_for(dataset, config.embedding_dim)
    storage = open_storage(url)
    prepare_study(storage, config, space, dataset.fingerprint, train_documents=len(dataset.x_train))
    study = optuna.load_study(study_name=config.study, storage=storage, sampler=make_sampler(config, space, {}),
                              pruner=make_pruner(config))
    objective = Objective(config, space, {}, dataset, embedding, artifact_store_for(url, str(artifacts)),
                          log=lambda m: None)
    clock = time_storage(study._storage)
    durations: list[float] = []
    with _quiet():
        study.optimize(objective, n_trials=1, catch=(TrialFailure,))  # warm-up: TensorFlow's first build
        clock.reset()
        for _ in range(n_trials):
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=1, catch=(TrialFailure,), gc_after_trial=True)
            durations.append(time.perf_counter() - t0)
    states = [t.state.name for t in study.trials[1:]]
    optuna.delete_study(study_name=config.study, storage=storage)
    storage.engine.dispose()
    total = sum(durations)
    return {"trials": n_trials, "states": ",".join(states), "trial_s": statistics.median(durations),
            "calls": clock.main_calls / n_trials, "storage_ms": 1000 * clock.main / n_trials,
            "share": clock.main / total, "heartbeat_ms": 1000 * clock.other / n_trials,
            "heartbeats": clock.other_calls / n_trials}


# ---------------------------------------------------------------------------------------------- main


def _postgres(url: str | None) -> str | None:
    import sqlalchemy

    url = url or os.environ.get("SEARCH_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        return url
    except Exception as exc:
        print(f"PostgreSQL unreachable ({type(exc).__name__}): PostgreSQL rows skipped", file=sys.stderr)
        return None
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts for part 1")
    parser.add_argument("--trials", type=int, default=200, help="complete trials per study in part 1")
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL")
    parser.add_argument("--real-trials", type=int, default=3, help="real trials per store in part 2 (0: skip)")
    args = parser.parse_args()
    from search.runtime import configure_process

    configure_process(None)  # CPU, before keras (part 2) is imported
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    counts = [int(n) for n in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    stores = {"SQLite": f"sqlite:///{tmp / 'bench.db'}"}
    pg = _postgres(args.postgres)
    if pg:
        stores["PostgreSQL"] = pg
    print(f"machine: {os.cpu_count()} CPU cores, {sys.platform}; Python {sys.version.split()[0]}")
    print(f"\n## Trivial objective: {args.trials} complete trials per study, RandomSampler, heartbeats on\n")
    print("| store | workers | trials/s | storage share of worker time | storage ms/trial |")
    print("|---|---:|---:|---:|---:|")
    for store, url in stores.items():
        for n in counts:
            row = run_trivial(url, n, args.trials)
            print(f"| {store} | {n} | {row['per_s']:.1f} | {100 * row['share']:.0f}% | {row['ms_per_trial']:.1f} |",
                  flush=True)
    if args.real_trials > 0:
        print(f"\n## Real trials: attn space, debtags50 3,000 train docs x 128 tokens, 2 epochs, TPE, "
              f"{args.real_trials} trials per store (after one warm-up trial)\n")
        print("| store | median trial s | storage calls/trial | storage ms/trial | storage share of trial time "
              "| heartbeat writes/trial (beside the trial) |")
        print("|---|---:|---:|---:|---:|---:|")
        for store, url in stores.items():
            row = run_real(url, args.real_trials, tmp / "artifacts")
            print(f"| {store} | {row['trial_s']:.1f} | {row['calls']:.0f} | {row['storage_ms']:.0f} | "
                  f"{100 * row['share']:.2f}% | {row['heartbeats']:.1f} ({row['heartbeat_ms']:.0f} ms) |", flush=True)
        print("\ntarget: storage share of a real trial under 1%")


if __name__ == "__main__":
    main()
