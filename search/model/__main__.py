"""``python -m search.model describe``: build a model without training and describe it.

    python -m search.model describe --preset seed_rcnn
    python -m search.model describe --param attention_position=label --param hidden_units=64 --seq-len 512
    python -m search.model describe --preset seed_answer_mha --param batch_size=2 --json

Prints the layer summary, the trainable and non-trainable parameter counts, the attention diagnostics
(degenerate or not) and the estimated activation memory per batch. The shapes default to the seed's
(length 3000, vocabulary 50,000, 50 labels, 100-d embedding); the pretrained embedding modes are built
with a zero placeholder matrix (same parameter counts). A refused configuration, or a bad ``--param``,
prints one ``error: ...`` line on stderr and exits 2; it is refused before keras is imported.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from search._cli import CliParser, parse_key_values, run_main
from search.errors import InputError
from search.model._memory import check_attention_memory
from search.model._params import InputShapes, check_shapes, parse_param_value, resolve_params
from search.model._presets import PRESETS

__all__ = ["main"]

_SEED_SHAPES = {"seq_len": 3000, "vocab": 50_000, "labels": 50, "embedding_dim": 100}


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="python -m search.model", description="Keras model factory tools.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    describe = commands.add_parser(
        "describe", help="build a model without training and print its summary, parameters and diagnostics"
    )
    describe.add_argument("--preset", choices=sorted(PRESETS), help="start from a named preset")
    describe.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="set one parameter (repeatable), e.g. attention_position=label or conv_kernel_sizes=1,2,3",
    )
    describe.add_argument("--seq-len", type=int, default=_SEED_SHAPES["seq_len"], help="padded sequence length")
    describe.add_argument("--vocab", type=int, default=_SEED_SHAPES["vocab"], help="vocabulary size")
    describe.add_argument("--labels", type=int, default=_SEED_SHAPES["labels"], help="number of labels")
    describe.add_argument("--embedding-dim", type=int, default=_SEED_SHAPES["embedding_dim"], help="embedding width")
    describe.add_argument("--memory-budget", type=int, default=None, metavar="BYTES",
                          help="attention score budget per batch (default 4 GiB)")
    describe.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _params_from(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = dict(PRESETS[args.preset]) if args.preset else {}
    params.update(parse_key_values(args.param, "--param", parse_param_value))
    return params


def _layer_rows(model: Any) -> list[dict[str, Any]]:
    rows = []
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            shape = None
        rows.append({
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": list(shape) if shape is not None else None,
            "params": int(layer.count_params()),
        })
    return rows


def _describe(args: argparse.Namespace) -> int:
    if args.memory_budget is not None and args.memory_budget <= 0:
        raise InputError(f"got {args.memory_budget}; expected a positive number of bytes", source="--memory-budget")
    params = resolve_params(_params_from(args))
    matrix = None
    if params["embedding_mode"] != "random" and args.vocab > 0 and args.embedding_dim > 0:
        matrix = np.zeros((args.vocab, args.embedding_dim), dtype="float32")  # placeholder: same counts
    shapes = InputShapes(args.seq_len, args.vocab, args.labels, args.embedding_dim, matrix)
    check_shapes(params, shapes)
    check_attention_memory(params, shapes, args.memory_budget)  # refused here, before keras is imported

    from search.model._factory import build_model

    built = build_model(params, shapes, memory_budget_bytes=args.memory_budget)
    d = built.diagnostics
    if args.json:
        json.dump({"params": built.params, "diagnostics": d, "layers": _layer_rows(built.model)}, sys.stdout, indent=2)
        print()
        return 0
    built.model.summary(print_fn=lambda line, *a, **k: print(line))
    gib = 1024**3
    print(f"trainable params:       {d['trainable_params']:,}")
    print(f"non-trainable params:   {d['non_trainable_params']:,}")
    print(f"attention position:     {d['attention_position']} ({d['architecture']})")
    for layer in d["attention_layers"]:
        state = "DEGENERATE (identity)" if layer["degenerate"] else "ok"
        steps = f"{layer['steps']} step" + ("" if layer["steps"] == 1 else "s")
        print(f"  {layer['name']}: {layer['type']} over {steps}: {state}")
    if d["degenerate_reason"]:
        print(f"degenerate attention:   {d['degenerate_reason']}")
    print(f"attention scores/batch: {d['attention_memory_bytes'] / gib:.3f} GiB "
          f"(budget {d['attention_memory_budget_bytes'] / gib:.1f} GiB)")
    print(f"activations/batch:      {d['activation_memory_bytes_per_batch'] / gib:.3f} GiB "
          f"(forward, batch_size {d['batch_size']}, {d['dtype_policy']}; training needs about 2-3x)")
    print(f"cuDNN-eligible LSTMs:   {d['cudnn_eligible']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "describe":
        return _describe(args)
    raise InputError(f"unknown command {args.command!r}")  # pragma: no cover (argparse refuses first)


if __name__ == "__main__":
    sys.exit(run_main(main))
