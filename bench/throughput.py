"""Training throughput of a trial on full debtags50: today's trial path against the code path before it, one run.

    python bench/throughput.py [--docs 4096] [--repeats 2] [--quality-epochs 2] [--json out.json]

(a) Training documents per second for three representative ``attn`` configurations (attention ``none``,
``label``, ``embedding``; BiLSTM 64, batch 64, frozen word2vec, max_len 128), three ways on the same
model, seed and documents:

- ``padded``: Keras' shuffled batches padded to ``max_len``, TensorFlow's default thread pools (every
  core in both): the code path before this issue's work;
- ``pydataset``: :class:`search.model._batching.LengthBatches` (documents of similar length together, each
  batch cut to its longest document) handed to Keras as a PyDataset, default pools: the trial path
  before tf.data's autotuning was turned off;
- ``length``: the same batches through :func:`search.model._batching.backend_input` (``tf.data``, no
  autotuning), default pools;
- ``length+split``: that, with the pools a CPU worker now gets (:func:`search.runtime.op_threads`: two
  ops at a time, each on half the cores): today's trial path.

Thread pools are fixed when TensorFlow starts, so each pool setting runs in a child process of its own;
the children alternate (default, split, default, ...) over ``--repeats`` rounds of ``--docs`` random
training documents after a warm-up, so the ratios are measured side by side on the same (shared, noisy)
machine.
(b) The share of an epoch spent outside training steps: one whole-validation prediction (4,494
documents), as every report point makes, against one full-data epoch of training at the measured rate
(the ``pydataset`` column predicts through a PyDataset too, as that trial path did).
(c) With ``--quality-epochs N``: the ``none`` configuration trained N full epochs both ways (padded and
length-aware, the split pools) from the same seed; the tuned validation micro-F1 after each epoch, and the
difference (target: within +-0.005). A third run, padded again from the same initial weights but with
the training order and dropout of another seed, measures how far the score moves by the order of the
documents alone: length-aware batches change the order, so that is the yardstick for their difference.

Prints ratios; record them in BENCHMARKS.md with the command and the machine.
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

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BASE = {"batch_size": 64, "dropout": 0.3, "batch_norm": False, "hidden_units": 64, "learning_rate": 3e-3,
        "embedding_mode": "frozen"}
CONFIGS = {"none": {"attention_position": "none"}, "label": {"attention_position": "label"},
           "embedding": {"attention_position": "embedding", "num_heads": 2}}
MODES = ("padded", "length")
#: The columns of the table, left to right.
VARIANTS = ("padded", "pydataset", "length", "length+split")
#: Which columns a child process of each thread-pool setting runs, in that order.
RUNS = {"default": ("padded", "pydataset", "length"), "split": ("length+split",)}
POOLS = tuple(RUNS)


def _load() -> tuple[Any, Any]:
    from search.config import RunConfig
    from search.data import embedding_matrix_for, load_dataset
    from search.model import InputShapes

    config = RunConfig(study="throughput", space="attn")
    ds = load_dataset(config.data, config.data_settings())
    emb = embedding_matrix_for(ds, config.embedding_dim)
    return ds, InputShapes.of(ds, emb)


def _set_pools(pools: str) -> None:
    """Before keras loads: TensorFlow's defaults, or the split pools a CPU worker gets."""
    if pools == "split":
        from search.runtime import limit_cpu_threads

        limit_cpu_threads(len(os.sched_getaffinity(0)))


def _build(params: dict[str, Any], shapes: Any, seed: int) -> Any:
    import keras

    from search.model import build_model
    from search.runtime import seed_everything

    seed_everything(seed)
    keras.backend.clear_session()
    return build_model(params, shapes)


def _train_seconds(built: Any, x: Any, y: Any, variant: str, seed: int) -> float:
    from search.model import fit_model
    from search.model._batching import LengthBatches

    t0 = time.perf_counter()
    if variant == "pydataset":
        built.model.fit(LengthBatches(x, y, int(built.params["batch_size"]), seed), epochs=1, verbose=0, shuffle=False)
    else:
        fit_model(built, x, y, epochs=1, callbacks=[], seed=seed, length_batches=variant != "padded")
    return time.perf_counter() - t0


def _predict_seconds(built: Any, x: Any, variant: str) -> float:
    import numpy as np

    from search.config import PREDICT_BATCH
    from search.model import predict_probabilities
    from search.model._batching import _SortedRows

    t0 = time.perf_counter()
    if variant == "pydataset":
        rows = _SortedRows(x, PREDICT_BATCH)
        np.asarray(built.model.predict(rows, verbose=0))
    else:
        predict_probabilities(built.model, x, PREDICT_BATCH, any_length=variant != "padded")
    return time.perf_counter() - t0


def one_round(docs: int, repeat: int, pools: str) -> dict[str, Any]:
    """One round in this process (its pools already set): every configuration, the variants of ``pools``."""
    import numpy as np

    ds, shapes = _load()
    y_train = ds.y_train.astype("float32")
    rng = np.random.default_rng([repeat])  # the same documents for both pool settings of a round
    warm = rng.choice(len(ds.x_train), size=256, replace=False)
    out: dict[str, Any] = {}
    for name, extra in CONFIGS.items():
        sample = rng.choice(len(ds.x_train), size=min(docs, len(ds.x_train)), replace=False)
        for variant in RUNS[pools]:
            built = _build(BASE | extra, shapes, seed=repeat)
            _train_seconds(built, ds.x_train[warm], y_train[warm], variant, repeat)  # compile outside the timing
            seconds = _train_seconds(built, ds.x_train[sample], y_train[sample], variant, repeat)
            predict_s = _predict_seconds(built, ds.x_valid, variant)
            out.setdefault(name, {})[variant] = {"docs_per_s": len(sample) / seconds, "predict_s": predict_s,
                                                 "train_docs": len(ds.x_train)}
            print(f"  {name:9s} {variant:12s} repeat {repeat}: {len(sample) / seconds:7.1f} docs/s, "
                  f"validation predict {predict_s:5.1f} s", flush=True)
    return out


def throughput(docs: int, repeats: int) -> dict[str, Any]:
    """Alternated child processes, one per (round, pools); per configuration and variant the medians."""
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            merged: dict[str, Any] = {}
            for pools in POOLS:
                out = Path(tmp, f"{repeat}-{pools}.json")
                subprocess.run([sys.executable, __file__, "--child", pools, "--docs", str(docs),
                                "--round", str(repeat), "--json", str(out)], check=True)
                for name, variants in json.loads(out.read_text()).items():
                    merged.setdefault(name, {}).update(variants)
            rounds.append(merged)
    rows: dict[str, Any] = {}
    for name in CONFIGS:
        row: dict[str, Any] = {}
        for variant in VARIANTS:
            rates = [r[name][variant]["docs_per_s"] for r in rounds]
            pred = statistics.median(r[name][variant]["predict_s"] for r in rounds)
            epoch_train = rounds[0][name][variant]["train_docs"] / statistics.median(rates)
            row[variant] = {"docs_per_s": statistics.median(rates), "validation_predict_s": pred,
                            "outside_training_share": pred / (epoch_train + pred)}
        for variant in VARIANTS[1:]:  # ratios within each round, then their median
            row[f"speedup_{variant}"] = statistics.median(
                r[name][variant]["docs_per_s"] / r[name]["padded"]["docs_per_s"] for r in rounds)
        rows[name] = row
    return rows


def quality(epochs: int) -> dict[str, Any]:
    from search.config import PREDICT_BATCH
    from search.metrics import tune_threshold
    from search.model import fit_model, predict_probabilities

    ds, shapes = _load()
    y_train = ds.y_train.astype("float32")
    from search.runtime import seed_everything

    curves: dict[str, list[float]] = {}
    for run in (*MODES, "padded, other order"):
        mode = run.split(",")[0]
        built = _build(BASE | CONFIGS["none"], shapes, seed=0)
        if run != mode:
            seed_everything(1)  # the same initial weights; another shuffle and other dropout masks
        curve = []
        for epoch in range(epochs):
            fit_model(built, ds.x_train, y_train, epochs=1, callbacks=[], seed=epoch, length_batches=mode == "length")
            prob = predict_probabilities(built.model, ds.x_valid, PREDICT_BATCH, any_length=mode == "length")
            curve.append(float(tune_threshold(ds.y_valid, prob)[1]))
            print(f"  quality {run:19s} epoch {epoch + 1}: tuned val micro-F1 {curve[-1]:.4f}", flush=True)
        curves[run] = curve
    return {"curves": curves, "difference": curves["length"][-1] - curves["padded"][-1],
            "order_difference": curves["padded, other order"][-1] - curves["padded"][-1]}


def _print_table(rows: dict[str, Any]) -> None:
    print("\n| configuration | padded (before) | length-aware, PyDataset | length-aware, tf.data | "
          "+ split pools (today) | validation pass per epoch, before -> PyDataset -> today |")
    print("|---|---:|---:|---:|---:|---|")
    for name, row in rows.items():
        cells = [f"{row['padded']['docs_per_s']:.0f} docs/s"] + [
            f"{row[v]['docs_per_s']:.0f} ({row[f'speedup_{v}']:.2f}x)" for v in VARIANTS[1:]]
        shares = " -> ".join(f"{100 * row[v]['outside_training_share']:.1f}%"
                             for v in ("padded", "pydataset", "length+split"))
        print(f"| {name} | {' | '.join(cells)} | {shares} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=4096, help="training documents per timed run")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the throughput table (0: only the quality)")
    parser.add_argument("--quality-epochs", type=int, default=0, help="full epochs of the quality check (0: none)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", choices=POOLS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _set_pools(args.child)
        result = one_round(args.docs, args.round, args.child)
        Path(args.json).write_text(json.dumps(result))
        return
    cores = len(os.sched_getaffinity(0))
    print(f"full debtags50, {cores} cores, backend {os.environ['KERAS_BACKEND']}; {args.docs} documents a run",
          flush=True)
    result: dict[str, Any] = {"throughput": throughput(args.docs, args.repeats) if args.repeats else {}}
    if result["throughput"]:
        _print_table(result["throughput"])
    if args.quality_epochs:
        _set_pools("split")
        result["quality"] = quality(args.quality_epochs)
        q = result["quality"]
        print(f"\nquality after {args.quality_epochs} epochs (none): padded {q['curves']['padded'][-1]:.4f}, "
              f"length-aware {q['curves']['length'][-1]:.4f}, difference {q['difference']:+.4f} (target +-0.005); "
              f"padded in another order {q['curves']['padded, other order'][-1]:.4f}, "
              f"difference {q['order_difference']:+.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
