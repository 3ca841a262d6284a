"""64 simulated workers on PostgreSQL, directly vs through Optuna's gRPC storage proxy (search.proxy).

    python bench/grpc_proxy.py [--workers 64] [--processes 8] [--trials 640] [--threads 16] [--postgres URL]

Each simulated worker is a thread with its own storage object -- its own SQLAlchemy engine and pool
(direct) or its own gRPC channel (proxy) -- so it holds its own connections exactly as a worker process
would; ``--processes`` processes share the threads out. Every worker runs the real worker loop
(``search.worker.run_trials``) with a trivial objective and RandomSampler until the study has ``--trials``
complete trials. Heartbeats are off in both modes: they cannot pass the proxy, and a direct worker with
heartbeats holds up to two connections instead of one (``--heartbeats`` turns them on for direct).

Prints, per mode: the peak number of database connections the run held (pg_stat_activity, sampled every
0.1 s, by application_name), trials per second, and the trial accounting: complete trials in the study,
completions the workers reported, duplicates (a trial completed by two workers), lost (reported complete
but not COMPLETE in the study) and stuck (RUNNING/WAITING left) trials.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HEADROOM = 10  # connections left free on the server for everyone else


def _with_app(url: str, app: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict({"application_name": app}).render_as_string(hide_password=False)


def _connections(engine: Any, app: str) -> int:
    import sqlalchemy

    with engine.connect() as connection:
        return int(connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"), {"app": app}).scalar())


def _worker_thread(url: str, name: str, target: int, heartbeats: bool, opening: threading.Lock,
                   ready: threading.Semaphore, start: threading.Event, completed: list[int], errors: list[str]
                   ) -> None:
    import optuna
    from optuna.trial import TrialState

    from search.worker import open_storage, run_trials
    from storage import create_storage

    try:
        with opening:  # one at a time: start-up is not what is measured, and spares the server a burst
            try:
                if url.startswith("grpc://"):
                    storage = create_storage(url)
                else:
                    storage = open_storage(url, heartbeat_interval=60 if heartbeats else None,
                                           grace_period=180 if heartbeats else None)
                study = optuna.load_study(study_name=name, storage=storage,
                                          sampler=optuna.samplers.RandomSampler())
            finally:
                ready.release()
        start.wait()

        def record(study: Any, trial: Any) -> None:
            if trial.state == TrialState.COMPLETE:
                completed.append(trial._trial_id)

        run_trials(study, lambda t: t.suggest_float("x", 0.0, 1.0), target=target, callbacks=[record],
                   log=lambda m: errors.append(m))
    except Exception as exc:  # reported, not hidden: a worker that could not run
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def _process(url: str, name: str, target: int, threads: int, heartbeats: bool, barrier: Any, out: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start, opening, ready = threading.Event(), threading.Lock(), threading.Semaphore(0)
    completed: list[int] = []
    errors: list[str] = []
    pool = [threading.Thread(target=_worker_thread,
                             args=(url, name, target, heartbeats, opening, ready, start, completed, errors))
            for _ in range(threads)]
    for thread in pool:
        thread.start()
    for _ in pool:  # every thread has opened its storage (or failed to)
        ready.acquire()
    barrier.wait()
    t0 = time.time()
    start.set()
    for thread in pool:
        thread.join()
    out.put({"start": t0, "end": time.time(), "completed": completed, "errors": errors})


def run_mode(mode: str, url: str, db_url: str, app: str, args: argparse.Namespace) -> dict[str, Any]:
    import optuna
    import sqlalchemy
    from optuna.trial import TrialState

    from storage import create_storage

    name = f"bench-proxy-{uuid.uuid4().hex[:10]}"
    optuna.create_study(study_name=name, storage=create_storage(db_url, heartbeat_interval=None))
    ctx = mp.get_context("spawn")
    per_process = [args.workers // args.processes + (i < args.workers % args.processes) for i in range(args.processes)]
    barrier, out = ctx.Barrier(args.processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_process, args=(url, name, args.trials, n, args.heartbeats and mode == "direct",
                                                barrier, out)) for n in per_process]
    for proc in procs:
        proc.start()
    admin = sqlalchemy.create_engine(db_url, pool_size=1)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _connections(admin, app))
            time.sleep(0.1)

    barrier.wait()
    sampler = threading.Thread(target=sample)
    sampler.start()
    rows = [out.get(timeout=1800) for _ in procs]
    done.set()
    sampler.join()
    for proc in procs:
        proc.join()
    study = optuna.load_study(study_name=name, storage=create_storage(db_url, heartbeat_interval=None))
    trials = study.get_trials(deepcopy=False)
    complete = {t._trial_id for t in trials if t.state == TrialState.COMPLETE}
    reported = [tid for r in rows for tid in r["completed"]]
    optuna.delete_study(study_name=name, storage=study._storage)
    admin.dispose()
    span = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    errors = [e for r in rows for e in r["errors"]]
    return {"mode": mode, "peak": peak, "per_s": len(complete) / span, "complete": len(complete),
            "reported": len(reported), "duplicated": len(reported) - len(set(reported)),
            "lost": len(set(reported) - complete),
            "stuck": sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials),
            "numbers_ok": sorted(t.number for t in trials) == list(range(len(trials))),
            "errors": errors}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--trials", type=int, default=640, help="complete trials per study")
    parser.add_argument("--threads", type=int, default=16, help="the proxy's --threads (its connections)")
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--heartbeats", action="store_true", help="heartbeats on for the direct workers")
    args = parser.parse_args()
    import sqlalchemy

    db_url = args.postgres or os.environ.get("SEARCH_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    engine = sqlalchemy.create_engine(db_url)
    with engine.connect() as connection:
        limit = int(connection.execute(sqlalchemy.text("SHOW max_connections")).scalar())
        used = int(connection.execute(sqlalchemy.text("SELECT count(*) FROM pg_stat_activity")).scalar())
    engine.dispose()
    wanted = args.workers * (2 if args.heartbeats else 1)
    print(f"machine: {os.cpu_count()} CPU cores; PostgreSQL max_connections {limit}, {used} in use before the run")
    print(f"{args.workers} simulated workers ({args.processes} processes x threads), {args.trials} complete trials "
          f"per study, trivial objective, RandomSampler\n")
    results = []
    if used + wanted + HEADROOM > limit:
        print(f"direct: skipped, {args.workers} workers would need up to {wanted} connections and the server has "
              f"{limit - used} free (a worker past the limit gets 'too many clients')\n")
    else:
        app = f"bench-direct-{uuid.uuid4().hex[:6]}"
        results.append(run_mode("direct", _with_app(db_url, app), db_url, app, args))
    app = f"bench-proxy-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    proxy = subprocess.Popen([sys.executable, "-m", "search.proxy", "--storage", _with_app(db_url, app),
                              "--port", str(port), "--threads", str(args.threads)],
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proxy.stdout is not None and proxy.stdout.readline().startswith("gRPC storage proxy")
        results.append(run_mode(f"proxy ({args.threads} threads)", f"grpc://127.0.0.1:{port}", db_url, app, args))
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(timeout=30)
    print("| mode | peak DB connections | trials/s | complete | reported by workers | duplicated | lost | stuck |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['mode']} | {r['peak']} | {r['per_s']:.1f} | {r['complete']} | {r['reported']} | "
              f"{r['duplicated']} | {r['lost']} | {r['stuck']} |")
    for r in results:
        if r["errors"] or not r["numbers_ok"]:
            print(f"\n{r['mode']}: trial numbers contiguous: {r['numbers_ok']}; worker messages "
                  f"({len(r['errors'])}): {json.dumps(sorted(set(r['errors']))[:5])}")


if __name__ == "__main__":
    main()
