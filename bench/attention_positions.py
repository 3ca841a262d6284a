"""Training time per 1,000 documents for each attention position, relative to ``none``, in one run.

    python bench/attention_positions.py [--docs 512] [--batch-size 32] [--max-len 128] [--hidden-units 32]

Every position gets the same documents (the first ``--docs`` of the bundled ``debtags50`` training split,
vocabulary 20,000, padded to ``--max-len``), the same batch size and the same small model (1 BiLSTM
layer, Conv1D kernels 1-3, frozen 100-d embedding as in the seed: the dataset's vectors when it has
them, else a fixed random matrix); only ``attention_position`` changes. One untimed epoch per model
first (graph tracing), then ``--repeats`` timed epochs per position, round robin; the fastest epoch
counts (the least disturbed by anything else on the machine). Prints a markdown table.

Without the data module (or the bundled file) it falls back to random data of the same shapes, and says so.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import numpy as np


def _data(docs: int, max_len: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    try:
        from search.data import DataSettings, load_dataset

        ds = load_dataset("debtags50", DataSettings(vocab_size=vocab_size, max_len=max_len))
        x, y = ds.x_train[:docs].astype("int32"), ds.y_train[:docs].astype("float32")
        return x, y, ds.embedding_matrix, f"debtags50 training split, first {len(x)} documents"
    except Exception as exc:  # the bench must run while the data module is unavailable
        print(f"note: bundled data unavailable ({type(exc).__name__}: {exc}); using random data of the same shapes")
        rng = np.random.default_rng(0)
        x = rng.integers(1, vocab_size, size=(docs, max_len)).astype("int32")
        lengths = rng.integers(10, max_len + 1, size=docs)
        x[np.arange(max_len)[None, :] >= lengths[:, None]] = 0
        y = (rng.random((docs, 50)) < 0.07).astype("float32")
        return x, y, None, f"random ids (vocabulary {vocab_size}), {docs} documents, 50 labels"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=20000)
    parser.add_argument("--hidden-units", type=int, default=32)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per position (the fastest counts)")
    parser.add_argument("--embedding-mode", choices=("frozen", "trainable", "random"), default="frozen")
    args = parser.parse_args(argv)

    import keras

    from search.model import ATTENTION_POSITIONS, InputShapes, build_model

    x, y, matrix, source = _data(args.docs, args.max_len, args.vocab_size)
    if matrix is None and args.embedding_mode != "random":
        matrix = np.random.default_rng(1).normal(0.0, 0.1, size=(args.vocab_size, 100)).astype("float32")
    shapes = InputShapes(seq_len=x.shape[1], vocab_size=args.vocab_size, n_labels=y.shape[1],
                         embedding_dim=int(matrix.shape[1]) if matrix is not None else 100, embedding_matrix=matrix)
    common: dict[str, Any] = {
        "embedding_mode": args.embedding_mode, "rnn_layers": 1, "bidirectional": True,
        "hidden_units": args.hidden_units,
        "conv_kernel_sizes": (1, 2, 3), "conv_filters": args.hidden_units, "num_heads": args.num_heads,
        "batch_size": args.batch_size,
    }
    models = {}
    for position in ATTENTION_POSITIONS:
        keras.utils.set_random_seed(0)
        models[position] = build_model({**common, "attention_position": position}, shapes)
        models[position].model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)  # warm-up
    times: dict[str, list[float]] = {position: [] for position in ATTENTION_POSITIONS}
    for _ in range(args.repeats):  # round robin, so a busy moment on the machine hits every position alike
        for position, built in models.items():
            start = time.perf_counter()
            built.model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
            times[position].append(time.perf_counter() - start)
    rows = [(position, models[position].diagnostics["trainable_params"], min(times[position]) / len(x) * 1000,
             statistics.median(times[position]) / len(x) * 1000) for position in ATTENTION_POSITIONS]

    base = rows[0][2]
    print(f"attention positions: training time per 1,000 documents, {source}, length {x.shape[1]}, batch "
          f"{args.batch_size}, 1 BiLSTM({args.hidden_units}), Conv1D k=1,2,3 x {args.hidden_units}, "
          f"{args.num_heads} heads, {args.embedding_mode} embedding; "
          f"keras {keras.__version__} ({keras.backend.backend()}), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print()
    print("| attention_position | trainable params | s / 1,000 docs (fastest) | relative to none | median s / 1,000 |")
    print("|---|---:|---:|---:|---:|")
    for position, params, fastest, median in rows:
        print(f"| {position} | {params:,} | {fastest:.2f} | {fastest / base:.2f}x | {median:.2f} |")


if __name__ == "__main__":
    main()
