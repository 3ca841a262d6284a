"""CPU workers: one multi-threaded worker or one one-thread worker per core, which trains more per hour?

    python bench/cpu_workers.py [--docs 3072] [--repeats 2] [--configs none,label] [--json out.json]

Each layout runs real worker-sized processes side by side on this machine, alternated over
``--repeats`` rounds so the (shared, noisy) machine's load falls on every layout alike:

- ``1x<cores>``: one process with every core (TensorFlow's default pools): the launcher's default before;
- ``<cores>x1``: one process per core, each pinned to its core with one-thread pools
  (:func:`search.runtime.limit_cpu_threads`, what ``search.launch --threads-per-worker 1`` does);
- ``<cores>x<cores>``: one process per core, each with the default pools (oversubscribed);
- ``1x<cores> split``: one process with every core, TensorFlow's pools split between ops
  (:func:`search.runtime.op_threads`: two ops at a time, each on half the cores; what
  ``search.worker --threads <cores>`` does).

Every process loads full debtags50, builds the same strong-start configuration of the ``attn`` space,
warms up (compiles) on 256 documents, waits at a barrier, then trains one epoch over ``--docs`` random
training documents (length-aware batches, as a trial does) and predicts the whole validation split.
The figure that decides the launcher's default is the **aggregate** rate: all processes' training
documents over the wall time from the barrier to the last one's end (a trial's training and its
whole-validation reports both scale with it). Prints ratios to the ``1x<cores>`` layout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _child(args: argparse.Namespace) -> None:
    from search.runtime import configure_process, limit_cpu_threads

    if args.threads:
        limit_cpu_threads(args.threads, {args.cpu} if args.cpu is not None else None)
    configure_process(None, args.backend)
    import numpy as np

    from search.config import PREDICT_BATCH, RunConfig
    from search.data import embedding_matrix_for, load_dataset
    from search.model import InputShapes, build_model, fit_model, predict_probabilities
    from search.runtime import seed_everything
    from spaces.attn import COMMON_FIXED, STRONG_START

    config = RunConfig(study="cpu_workers", space="attn")
    ds = load_dataset(config.data, config.data_settings())
    emb = embedding_matrix_for(ds, config.embedding_dim)
    shapes = InputShapes.of(ds, emb)
    start = {dict(p)["attention_position"]: dict(p) for p in STRONG_START}
    params = dict(COMMON_FIXED) | start[args.config]
    seed_everything(args.seed)
    built = build_model(params, shapes)
    rng = np.random.default_rng(args.seed)
    y = ds.y_train.astype("float32")
    warm = rng.choice(len(ds.x_train), size=256, replace=False)
    fit_model(built, ds.x_train[warm], y[warm], epochs=1, callbacks=[], seed=args.seed)
    predict_probabilities(built.model, ds.x_valid[:256], PREDICT_BATCH, any_length=built.any_length)
    Path(args.ready).touch()
    while not Path(args.go).exists():
        time.sleep(0.05)
    sample = rng.choice(len(ds.x_train), size=min(args.docs, len(ds.x_train)), replace=False)
    t0 = time.time()
    fit_model(built, ds.x_train[sample], y[sample], epochs=1, callbacks=[], seed=args.seed)
    t1 = time.time()
    predict_probabilities(built.model, ds.x_valid, PREDICT_BATCH, any_length=built.any_length)
    t2 = time.time()
    Path(args.out).write_text(json.dumps({"docs": len(sample), "train_start": t0, "train_end": t1,
                                          "predict_end": t2, "affinity": sorted(os.sched_getaffinity(0))}))


def _run_layout(name: str, processes: int, threads: int | None, config: str, docs: int, seed: int,
                backend: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp, "go")
        children = []
        for i in range(processes):
            argv = [sys.executable, __file__, "--child", "--config", config, "--docs", str(docs),
                    "--seed", str(seed + i), "--backend", backend, "--ready", str(Path(tmp, f"ready{i}")),
                    "--go", str(go), "--out", str(Path(tmp, f"out{i}.json"))]
            if threads == 1:
                argv += ["--threads", "1", "--cpu", str(i % (os.cpu_count() or 1))]
            elif threads:
                argv += ["--threads", str(threads)]
            children.append(subprocess.Popen(argv, cwd=ROOT))
        while not all(Path(tmp, f"ready{i}").exists() for i in range(processes)):
            if any(c.poll() not in (None, 0) for c in children):
                raise SystemExit(f"{name}: a child process failed")
            time.sleep(0.1)
        t_go = time.time()
        go.touch()
        for c in children:
            if c.wait() != 0:
                raise SystemExit(f"{name}: a child process exited {c.returncode}")
        outs = [json.loads(Path(tmp, f"out{i}.json").read_text()) for i in range(processes)]
    train_wall = max(o["train_end"] for o in outs) - t_go
    total_wall = max(o["predict_end"] for o in outs) - t_go
    total_docs = sum(o["docs"] for o in outs)
    predict_s = statistics.mean(o["predict_end"] - o["train_end"] for o in outs)
    return {"layout": name, "docs_per_s": total_docs / train_wall, "predict_s": predict_s,
            "trial_work_per_s": processes / total_wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=3072, help="training documents per process per round")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--configs", default="none,label", help="strong-start configurations (attention position)")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--layouts", default=None, help="comma-separated layout names (default: all)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--config", "--ready", "--go", "--out"):
        parser.add_argument(name, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    cores = len(os.sched_getaffinity(0))
    layouts = [(f"1x{cores}", 1, None), (f"{cores}x1", cores, 1), (f"{cores}x{cores}", cores, None),
               (f"1x{cores} split", 1, cores)]
    if args.layouts:
        wanted = args.layouts.split(",")
        unknown = sorted(set(wanted) - {name for name, _, _ in layouts})
        if unknown:
            parser.error(f"--layouts: got {', '.join(unknown)}; expected names among "
                         f"{', '.join(name for name, _, _ in layouts)}")
        layouts = [layout for layout in layouts if layout[0] in wanted]
    print(f"{cores} cores; backend {args.backend}; {args.docs} training documents per process per round", flush=True)
    results: dict[str, Any] = {}
    for config in args.configs.split(","):
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in layouts}
        for repeat in range(args.repeats):
            for name, processes, threads in layouts:
                row = _run_layout(name, processes, threads, config, args.docs, 100 * repeat, args.backend)
                rounds[name].append(row)
                print(f"  {config:6s} {name:10s} round {repeat}: {row['docs_per_s']:6.1f} training docs/s in all, "
                      f"whole-validation predict {row['predict_s']:5.1f} s a process", flush=True)
        base = statistics.median(r["docs_per_s"] for r in rounds[layouts[0][0]])
        results[config] = {name: {"docs_per_s": statistics.median(r["docs_per_s"] for r in rs),
                                  "predict_s": statistics.median(r["predict_s"] for r in rs),
                                  "ratio": statistics.median(r["docs_per_s"] for r in rs) / base}
                           for name, rs in rounds.items()}
    print("\n| configuration | layout | training docs/s, all processes | ratio to 1 worker | "
          "whole-validation predict, s a process |")
    print("|---|---|---:|---:|---:|")
    for config, rows in results.items():
        for name, row in rows.items():
            print(f"| {config} | {name} | {row['docs_per_s']:.0f} | {row['ratio']:.2f}x | {row['predict_s']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": cores, "backend": args.backend, "docs": args.docs,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
