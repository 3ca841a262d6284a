"""Memory estimates: refuse a self-attention configuration before training, size a batch's activations.

The attention estimate is pure Python so a configuration is refused before keras is imported. Multi-head
self-attention keeps a ``(batch, heads, T, T)`` score tensor (and its softmax) per layer: at the seed's
length 3000, batch 64 and 8 heads that is 64 x 8 x 3000^2 x 4 bytes = 18.4 GB for one copy.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from search.errors import ModelConfigError
from search.model._params import InputShapes, resolve_params, rnn_output_dim

__all__ = [
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "activation_memory_bytes",
    "check_attention_memory",
    "dtype_bytes",
    "estimate_attention_memory",
]

#: Default budget for one copy of the self-attention scores of a batch. A worker that knows its device
#: passes its own (``build_model(..., memory_budget_bytes=...)``).
DEFAULT_MEMORY_BUDGET_BYTES: int = 4 * 1024**3


def dtype_bytes(params: Mapping[str, Any]) -> int:
    """Bytes per activation element: 2 under mixed_float16, else 4."""
    return 2 if params["mixed_precision"] else 4


def _self_attention_layers(params: Mapping[str, Any]) -> int:
    return 1 if params["attention_position"] in ("embedding", "rnn") else 0


def estimate_attention_memory(params: Mapping[str, Any], shapes: InputShapes) -> int:
    """Bytes of ``batch_size x num_heads x seq_len^2`` attention scores (x dtype bytes); 0 without self-attention."""
    resolved = resolve_params(params)
    layers = _self_attention_layers(resolved)
    return layers * resolved["batch_size"] * resolved["num_heads"] * shapes.seq_len**2 * dtype_bytes(resolved)


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_attention_memory(params: Mapping[str, Any], shapes: InputShapes, budget_bytes: int | None) -> int:
    """Return the attention estimate, or raise ModelConfigError when it exceeds ``budget_bytes``."""
    budget = DEFAULT_MEMORY_BUDGET_BYTES if budget_bytes is None else int(budget_bytes)
    needed = estimate_attention_memory(params, shapes)
    if needed > budget:
        p = resolve_params(params)
        raise ModelConfigError(
            f"refused before training: {p['attention_position']!r} self-attention needs batch_size "
            f"{p['batch_size']} x {p['num_heads']} heads x seq_len {shapes.seq_len}^2 x {dtype_bytes(p)} bytes = "
            f"{_format_bytes(needed)} of attention scores per batch, over the budget of {_format_bytes(budget)}; "
            "lower batch_size or num_heads, shorten the sequences, or use attention_position 'label' or 'conv' "
            "(linear in the length)",
            source="model params", field="attention_position",
        )
    return needed


def _internal_attention_elements(params: Mapping[str, Any], shapes: InputShapes) -> int:
    """Per-example elements held inside attention layers (not visible as layer outputs)."""
    position = params["attention_position"]
    t = shapes.seq_len
    if position in ("embedding", "rnn"):
        return 2 * params["num_heads"] * t * t  # scores and their softmax
    if position == "label":
        units = params["attention_units"] or rnn_output_dim(params)
        return t * (units + 2 * shapes.n_labels)  # tanh(WH), scores, softmax
    if position == "conv":
        units = params["attention_units"] or params["conv_filters"]
        return len(params["conv_kernel_sizes"]) * t * (units + 2)
    return 0


def activation_memory_bytes(model: Any, params: Mapping[str, Any], shapes: InputShapes) -> int:
    """Rough forward activation memory of one batch: every graph node's output plus attention internals.

    Training keeps these for the backward pass and needs gradients of the same size, so plan on about
    2-3x this figure (plus the weights and the optimizer's slots).
    """
    elements = 0
    for operation in model.operations:
        for node in getattr(operation, "_inbound_nodes", [])[:1]:
            for tensor in node.outputs:
                dims = list(tensor.shape[1:])
                if all(isinstance(d, int) for d in dims):
                    elements += math.prod(dims)
    elements += _internal_attention_elements(params, shapes)
    return int(elements * params["batch_size"] * dtype_bytes(params))
