"""The recipe inside a trial: variants of one configuration trained side by side on full debtags50.

    python bench/recipe.py [--epochs 3] [--base none] [--variant NAME=JSON ...] [--json out.json]

Each variant is the strong start's configuration of the ``attn`` space (``--base``: its attention
position) with some parameters changed (``--variant adamw='{"weight_decay": 0.01}'``, or a learning rate
decayed every epoch, ``--variant decay07='{"lr_decay": 0.7}'``: each epoch trains at the rate its trial
would; default: plain Adam,
AdamW with weight decay 0.01, and BiLSTM 256 per direction, the width of the literature's LAAT), trained
from the same seed on every training document for ``--epochs`` epochs, the way a trial trains
(length-aware batches, max_len 128); after each epoch the whole validation split's tuned micro-F1 (the
value a trial reports) and the epoch's training seconds. Variants run one after the other, so compare
their curves (the quality does not depend on the machine's load), and their seconds only as ratios
measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from search.config import PREDICT_BATCH, RunConfig
from search.data import embedding_matrix_for, load_dataset
from search.metrics import tune_threshold
from search.model import InputShapes, build_model, fit_model, predict_probabilities
from search.runtime import seed_everything
from spaces.attn import COMMON_FIXED, STRONG_START

DEFAULT_VARIANTS = {"adam": {}, "adamw": {"weight_decay": 0.01}, "bilstm256": {"hidden_units": 256}}


def _variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, value = text.partition("=")
    overrides = json.loads(value or "{}")
    if not name or not isinstance(overrides, dict):
        raise SystemExit(f"--variant: got '{text}'; expected NAME=JSON object, e.g. adamw='{{\"weight_decay\": 0.01}}'")
    return name, overrides


def train_curve(ds: Any, shapes: InputShapes, params: dict[str, Any], epochs: int, seed: int) -> dict[str, Any]:
    seed_everything(seed)
    keras.backend.clear_session()
    built = build_model(params, shapes)
    y_train = ds.y_train.astype("float32")
    curve, seconds = [], []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        fit_model(built, ds.x_train, y_train, epochs=epoch + 1, initial_epoch=epoch, callbacks=[], seed=seed + epoch)
        seconds.append(time.perf_counter() - t0)
        prob = predict_probabilities(built.model, ds.x_valid, PREDICT_BATCH, any_length=built.any_length)
        curve.append(float(tune_threshold(ds.y_valid, prob)[1]))
        print(f"    epoch {epoch + 1}: tuned val micro-F1 {curve[-1]:.4f} ({seconds[-1]:.0f} s training)", flush=True)
    return {"params": params, "curve": curve, "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--base", default="none", help="the strong start's configuration with this attention position")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    variants = dict(_variant(v) for v in args.variant) or DEFAULT_VARIANTS
    starts = {dict(p)["attention_position"]: dict(p) for p in STRONG_START}
    if args.base not in starts:
        raise SystemExit(f"--base: got '{args.base}'; expected one of {', '.join(starts)}")
    base = dict(COMMON_FIXED) | starts[args.base]
    config = RunConfig(study="recipe", space="attn")
    ds = load_dataset(config.data, config.data_settings())
    emb = embedding_matrix_for(ds, config.embedding_dim)
    shapes = InputShapes.of(ds, emb)
    print(f"debtags50: {len(ds.x_train)} training / {len(ds.x_valid)} validation documents, max_len {ds.seq_len}; "
          f"backend {keras.backend.backend()}; base {base}", flush=True)
    results: dict[str, Any] = {}
    for name, overrides in variants.items():
        print(f"  {name}: {overrides}", flush=True)
        results[name] = train_curve(ds, shapes, base | overrides, args.epochs, args.seed)
    first = next(iter(results.values()))
    print(f"\n| variant | changes | tuned val micro-F1 by epoch | best | "
          f"training s an epoch, ratio to {next(iter(results))} |")
    print("|---|---|---|---:|---:|")
    for name, row in results.items():
        ratio = (sum(row["train_seconds"]) / len(row["train_seconds"])) / (
            sum(first["train_seconds"]) / len(first["train_seconds"]))
        print(f"| {name} | {json.dumps(variants[name]) if variants[name] else '-'} | "
              f"{' / '.join(f'{v:.4f}' for v in row['curve'])} | {max(row['curve']):.4f} | {ratio:.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"base": base, "epochs": args.epochs, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
