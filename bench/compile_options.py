"""Keras' compile options on this CPU, side by side: XLA (``jit_compile``), ``steps_per_execution``, and
TensorFlow's op determinism.

    python bench/compile_options.py [--docs 2048] [--repeats 2] [--config none] [--json out.json]

One configuration of the ``attn`` space (BiLSTM 64, batch 64, frozen word2vec, max_len 128; attention
``--config``), the same seed and the same random training documents, built afresh and trained two epochs
per variant: the trial's own path (length-aware batches, Keras' defaults: no XLA on a CPU-only machine,
one step per execution; TensorFlow's op determinism on, which a trial turns on so that its replay gives
the same numbers), the same with op determinism off, with ``steps_per_execution=8``, with
``jit_compile=True``, and XLA on padded batches (one shape, so one compilation: XLA's best case). Keras
refuses XLA while op determinism is on, so both XLA variants run with it off. The first epoch includes the
compilations a trial pays for (XLA compiles once per batch shape); the second is the steady state.
Variants alternate within each repeat, so the ratios are measured on the same (shared, noisy) machine.
Prints documents per second and ratios to the trial's path; record them in BENCHMARKS.md.
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

from search.config import RunConfig  # noqa: E402
from search.data import embedding_matrix_for, load_dataset  # noqa: E402
from search.model import InputShapes, build_model, fit_model  # noqa: E402
from search.runtime import seed_everything  # noqa: E402
from throughput import BASE, CONFIGS  # noqa: E402  (bench/: the configurations bench/throughput.py times)

#: name -> (length-aware batches, jit_compile, steps_per_execution, op determinism); the first is the
#: trial's own path.
VARIANTS = {
    "trial path": (True, False, 1, True),
    "op determinism off": (True, False, 1, False),
    "steps_per_execution 8": (True, False, 8, True),
    "jit_compile": (True, True, 1, False),
    "jit_compile, padded": (False, True, 1, False),
}


def _epochs(params: dict[str, Any], shapes: InputShapes, x: np.ndarray, y: np.ndarray, variant: str,
            seed: int) -> list[float]:
    """Seconds of each of two epochs of a freshly built model compiled with ``variant``'s options."""
    length, jit, steps, deterministic = VARIANTS[variant]
    seed_everything(seed)  # turns op determinism on, as in a trial
    if not deterministic:
        # TensorFlow has no public switch back; this bench alone uses the private one.
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    keras.backend.clear_session()
    built = build_model(params, shapes)
    optimizer = type(built.model.optimizer).from_config(built.model.optimizer.get_config())
    built.model.compile(optimizer=optimizer, loss="binary_crossentropy", jit_compile=jit, steps_per_execution=steps)
    seconds = []
    for epoch in range(2):
        t0 = time.perf_counter()
        fit_model(built, x, y, epochs=1, callbacks=[], seed=seed + epoch, length_batches=length)
        seconds.append(time.perf_counter() - t0)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2048, help="training documents per epoch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="none")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    config = RunConfig(study="compile-options", space="attn")
    ds = load_dataset(config.data, config.data_settings())
    shapes = InputShapes.of(ds, embedding_matrix_for(ds, config.embedding_dim))
    print(f"debtags50: {len(ds.x_train)} training documents, max_len {ds.seq_len}; backend "
          f"{keras.backend.backend()}; {args.docs} documents an epoch, configuration {args.config}", flush=True)
    rng = np.random.default_rng(0)
    params = BASE | CONFIGS[args.config]
    rates: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for repeat in range(args.repeats):
        sample = rng.choice(len(ds.x_train), size=min(args.docs, len(ds.x_train)), replace=False)
        x, y = ds.x_train[sample], ds.y_train[sample].astype("float32")
        for variant in VARIANTS:
            first, second = _epochs(params, shapes, x, y, variant, seed=repeat)
            rates[variant].append((len(x) / first, len(x) / second))
            print(f"  {variant:22s} repeat {repeat}: epoch 1 {rates[variant][-1][0]:6.1f} docs/s, "
                  f"epoch 2 {rates[variant][-1][1]:6.1f} docs/s", flush=True)
    base = rates["trial path"]
    rows = {}
    print("\n| variant | epoch 1 docs/s (with compilation) | epoch 2 docs/s | epoch 1 ratio | epoch 2 ratio |")
    print("|---|---:|---:|---:|---:|")
    for variant, runs in rates.items():
        row = {f"epoch{e + 1}_docs_per_s": statistics.median(r[e] for r in runs) for e in range(2)}
        for e in range(2):
            row[f"epoch{e + 1}_ratio"] = statistics.median(r[e] / b[e] for r, b in zip(runs, base, strict=True))
        rows[variant] = row
        print(f"| {variant} | {row['epoch1_docs_per_s']:.0f} | {row['epoch2_docs_per_s']:.0f} | "
              f"{row['epoch1_ratio']:.2f}x | {row['epoch2_ratio']:.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"config": args.config, "docs": args.docs, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
