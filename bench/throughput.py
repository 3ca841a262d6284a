"""Training throughput of a trial on full debtags50: length-aware batches vs the padded batches, one run.

    python bench/throughput.py [--docs 4096] [--repeats 2] [--quality-epochs 2] [--json out.json]

(a) Training documents per second for three representative ``attn`` configurations (attention ``none``,
``label``, ``embedding``; BiLSTM 64, batch 64, frozen word2vec, max_len 128): the same model, seed and
documents trained once with Keras' shuffled batches padded to ``max_len`` (today's code path before
length-aware batches) and once with :class:`search.model._batching.LengthBatches`; alternated
(padded, length, padded, ...) over ``--repeats`` runs of ``--docs`` random training documents each after
a warm-up, so the ratio is measured side by side on the same (shared, noisy) machine.
(b) The share of an epoch spent outside training steps: one whole-validation prediction (4,494
documents), as every report point makes, against one full-data epoch of training at the measured rate.
(c) With ``--quality-epochs N``: the ``none`` configuration trained N full epochs both ways from the same
seed; the tuned validation micro-F1 after each epoch, and the difference (target: within +-0.005).

Prints ratios; record them in BENCHMARKS.md with the command and the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from search.config import PREDICT_BATCH, RunConfig  # noqa: E402
from search.data import embedding_matrix_for, load_dataset  # noqa: E402
from search.metrics import tune_threshold  # noqa: E402
from search.model import InputShapes, build_model, fit_model, predict_probabilities  # noqa: E402
from search.runtime import seed_everything  # noqa: E402

BASE = {"batch_size": 64, "dropout": 0.3, "batch_norm": False, "hidden_units": 64, "learning_rate": 3e-3,
        "embedding_mode": "frozen"}
CONFIGS = {"none": {"attention_position": "none"}, "label": {"attention_position": "label"},
           "embedding": {"attention_position": "embedding", "num_heads": 2}}
MODES = ("padded", "length")


def _build(params: dict[str, Any], shapes: InputShapes, seed: int) -> Any:
    seed_everything(seed)
    keras.backend.clear_session()
    return build_model(params, shapes)


def _train_seconds(built: Any, x: np.ndarray, y: np.ndarray, mode: str, seed: int) -> float:
    t0 = time.perf_counter()
    fit_model(built, x, y, epochs=1, callbacks=[], seed=seed, length_batches=mode == "length")
    return time.perf_counter() - t0


def throughput(ds: Any, shapes: InputShapes, docs: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    y_train = ds.y_train.astype("float32")
    warm = rng.choice(len(ds.x_train), size=256, replace=False)
    rows: dict[str, Any] = {}
    for name, extra in CONFIGS.items():
        params = BASE | extra
        rates: dict[str, list[float]] = {m: [] for m in MODES}
        predict_s: dict[str, list[float]] = {m: [] for m in MODES}
        for repeat in range(repeats):
            sample = rng.choice(len(ds.x_train), size=min(docs, len(ds.x_train)), replace=False)
            for mode in MODES:
                built = _build(params, shapes, seed=repeat)
                _train_seconds(built, ds.x_train[warm], y_train[warm], mode, repeat)  # compile outside the timing
                seconds = _train_seconds(built, ds.x_train[sample], y_train[sample], mode, repeat)
                rates[mode].append(len(sample) / seconds)
                t0 = time.perf_counter()
                predict_probabilities(built.model, ds.x_valid, PREDICT_BATCH, any_length=mode == "length")
                predict_s[mode].append(time.perf_counter() - t0)
                print(f"  {name:9s} {mode:6s} repeat {repeat}: {rates[mode][-1]:7.1f} docs/s, "
                      f"validation predict {predict_s[mode][-1]:5.1f} s", flush=True)
        row: dict[str, Any] = {}
        for mode in MODES:
            rate, pred = statistics.median(rates[mode]), statistics.median(predict_s[mode])
            epoch_train = len(ds.x_train) / rate
            row[mode] = {"docs_per_s": rate, "validation_predict_s": pred,
                         "outside_training_share": pred / (epoch_train + pred)}
        row["speedup"] = statistics.median(b / a for a, b in zip(rates["padded"], rates["length"], strict=True))
        rows[name] = row
    return rows


def quality(ds: Any, shapes: InputShapes, epochs: int) -> dict[str, Any]:
    y_train = ds.y_train.astype("float32")
    curves: dict[str, list[float]] = {}
    for mode in MODES:
        built = _build(BASE | CONFIGS["none"], shapes, seed=0)
        curve = []
        for epoch in range(epochs):
            fit_model(built, ds.x_train, y_train, epochs=1, callbacks=[], seed=epoch, length_batches=mode == "length")
            prob = predict_probabilities(built.model, ds.x_valid, PREDICT_BATCH, any_length=mode == "length")
            curve.append(float(tune_threshold(ds.y_valid, prob)[1]))
            print(f"  quality {mode:6s} epoch {epoch + 1}: tuned val micro-F1 {curve[-1]:.4f}", flush=True)
        curves[mode] = curve
    return {"curves": curves, "difference": curves["length"][-1] - curves["padded"][-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=4096, help="training documents per timed run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quality-epochs", type=int, default=0, help="full epochs of the quality check (0: none)")
    parser.add_argument("--limit", type=int, default=None, help="training documents loaded (default: all)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    config = RunConfig(study="throughput", space="attn", limit=args.limit)
    ds = load_dataset(config.data, config.data_settings())
    emb = embedding_matrix_for(ds, config.embedding_dim)
    shapes = InputShapes.of(ds, emb)
    print(f"debtags50: {len(ds.x_train)} training / {len(ds.x_valid)} validation documents, max_len {ds.seq_len}; "
          f"backend {keras.backend.backend()}", flush=True)
    result: dict[str, Any] = {"throughput": throughput(ds, shapes, args.docs, args.repeats)}
    print("\n| configuration | padded docs/s | length-aware docs/s | speed-up | outside training, padded -> length |")
    print("|---|---|---|---|---|")
    for name, row in result["throughput"].items():
        print(f"| {name} | {row['padded']['docs_per_s']:.0f} | {row['length']['docs_per_s']:.0f} | "
              f"{row['speedup']:.2f}x | {100 * row['padded']['outside_training_share']:.1f}% -> "
              f"{100 * row['length']['outside_training_share']:.1f}% |")
    if args.quality_epochs:
        result["quality"] = quality(ds, shapes, args.quality_epochs)
        q = result["quality"]
        print(f"\nquality after {args.quality_epochs} epochs (none): padded {q['curves']['padded'][-1]:.4f}, "
              f"length-aware {q['curves']['length'][-1]:.4f}, difference {q['difference']:+.4f} (target +-0.005)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
