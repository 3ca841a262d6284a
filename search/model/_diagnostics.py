"""Attention diagnostics: which layers attend over what, their weights, entropy, and a uniform ablation.

Every function here works on any model the factory built, also after a ``.keras`` round trip: the
attention layers are found by type, and their inputs are read back from the functional graph (each
layer's call node), run through a probe model, and given to the layer again eagerly.
"""
from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from search.metrics import micro_f1
from search.model._layers import AdditiveAttentionPooling, LabelWiseAttention, RaffelAttention

__all__ = [
    "attention_entropy",
    "attention_layer_report",
    "attention_layers",
    "attention_weights",
    "cudnn_eligible",
    "uniform_attention_delta",
]

_CUSTOM = (AdditiveAttentionPooling, LabelWiseAttention, RaffelAttention)
_ATTENTION_TYPES = (keras.layers.MultiHeadAttention, *_CUSTOM)


def attention_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's attention layers, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, _ATTENTION_TYPES)]


def _call_node(layer: keras.layers.Layer) -> Any:
    # The functional graph's record of ``layer(...)``: its positional and keyword arguments (KerasTensors).
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1:
        raise ValueError(f"attention layer {layer.name!r} is called {len(nodes)} times; expected once")
    return nodes[0]


def _attended_steps(layer: keras.layers.Layer) -> int | None:
    args = _call_node(layer).arguments.args
    sequence = args[1] if isinstance(layer, keras.layers.MultiHeadAttention) and len(args) > 1 else args[0]
    steps = sequence.shape[1]
    return int(steps) if steps is not None else None


def attention_layer_report(model: keras.Model) -> list[dict[str, Any]]:
    """One entry per attention layer: name, type, steps attended over, and whether that is degenerate (1 step)."""
    return [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "steps": _attended_steps(layer),
            "degenerate": _attended_steps(layer) == 1,
        }
        for layer in attention_layers(model)
    ]


def cudnn_eligible(model: keras.Model) -> bool:
    """Whether every LSTM meets cuDNN's conditions (tanh, sigmoid, bias, no recurrent dropout, not unrolled)."""
    lstms: list[Any] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            lstms += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.RNN):
            lstms.append(layer)
    for rnn in lstms:
        if not isinstance(rnn, keras.layers.LSTM):
            return False
        if (
            getattr(rnn.activation, "__name__", "") != "tanh"
            or getattr(rnn.recurrent_activation, "__name__", "") != "sigmoid"
            or not rnn.use_bias
            or rnn.recurrent_dropout
            or rnn.unroll
            or rnn.use_cudnn is False
        ):
            return False
    return True


# ----------------------------------------------------------------------------------------------------
# attention distributions of a batch


def _distributions(model: keras.Model, x: Any, batch_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Layer name -> (weights ``(batch, rows, ..., T)`` float32, valid rows ``(batch, rows)`` bool).

    Rows are heads for multi-head attention (weights ``(batch, heads, T_query, T)``; valid rows are then
    ``(batch, T_query)``), labels for label-wise attention, and one row for the pooling attentions.
    """
    layers = attention_layers(model)
    if not layers:
        return {}
    wanted: dict[int, Any] = {}
    for layer in layers:
        for tensor in _call_node(layer).arguments.keras_tensors:
            wanted[id(tensor)] = tensor
    tensors = list(wanted.values())
    probe = keras.Model(model.inputs, tensors)
    values = probe.predict(x, batch_size=batch_size, verbose=0)
    if len(tensors) == 1:
        values = [values]
    n = int(np.shape(values[0])[0])

    chunks: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {layer.name: [] for layer in layers}
    for start in range(0, n, batch_size):  # the layers run eagerly: one batch at a time
        tensor_dict = {key: ops.convert_to_tensor(value[start:start + batch_size])
                       for key, value in zip(wanted, values, strict=True)}
        for layer in layers:
            chunks[layer.name].append(_layer_distribution(layer, tensor_dict))
    return {
        name: (np.concatenate([w for w, _ in parts]), np.concatenate([v for _, v in parts]))
        for name, parts in chunks.items()
    }


def _layer_distribution(layer: keras.layers.Layer, tensor_dict: dict[int, Any]) -> tuple[np.ndarray, np.ndarray]:
    args, kwargs = _call_node(layer).arguments.fill_in(tensor_dict)
    if isinstance(layer, keras.layers.MultiHeadAttention):
        _, scores = layer(*args, **kwargs, return_attention_scores=True, training=False)
        weights = np.asarray(ops.convert_to_numpy(scores), dtype="float32")  # (batch, heads, Tq, Tk)
        query_mask = kwargs.get("query_mask")
        if query_mask is not None:
            valid = np.asarray(ops.convert_to_numpy(query_mask), dtype=bool)
        else:
            valid = np.ones(weights.shape[:1] + weights.shape[2:3], dtype=bool)
        return weights, valid
    weights = np.asarray(ops.convert_to_numpy(layer.attention_distribution(args[0], kwargs.get("mask"))),
                         dtype="float32")
    if weights.ndim == 2:
        weights = weights[:, None, :]
    return weights, np.ones(weights.shape[:2], dtype=bool)


def attention_weights(model: keras.Model, x: Any, *, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Attention weights of a batch per attention layer: ``(batch, labels_or_heads, T)`` float32.

    Label-wise attention: one distribution per label. Additive pooling (``conv``) and the seed's attention
    (``pooled``): one row. Multi-head self-attention: per head, the attention each token receives averaged
    over the real (unmasked) query tokens. Masked steps have weight 0. Keys are the layer names.
    """
    out: dict[str, np.ndarray] = {}
    for name, (weights, valid) in _distributions(model, x, batch_size).items():
        if weights.ndim == 4:
            v = valid[:, None, :, None].astype("float32")
            weights = (weights * v).sum(axis=2) / np.maximum(v.sum(axis=2), 1.0)
        out[name] = weights.astype("float32")
    return out


def _entropy(weights: np.ndarray) -> np.ndarray:
    p = weights.astype("float64")
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def attention_entropy(model: keras.Model, x: Any, *, batch_size: int = 64) -> float:
    """Mean entropy (nats) of the attention distributions on a batch; NaN when the model has no attention.

    Each distribution (a label's, a query token's per head, a pooling's) counts once within its layer;
    the result is the mean over attention layers. Uniform attention over n steps scores log(n); a one-step
    (degenerate) attention scores 0.
    """
    per_layer = []
    for weights, valid in _distributions(model, x, batch_size).values():
        entropy = _entropy(weights)  # (batch, rows) or (batch, heads, Tq)
        if entropy.ndim == 3:
            mask = np.broadcast_to(valid[:, None, :], entropy.shape)
        else:
            mask = valid
        per_layer.append(float(entropy[mask].mean()) if mask.any() else 0.0)
    return float(np.mean(per_layer)) if per_layer else math.nan


# ----------------------------------------------------------------------------------------------------
# learnt versus uniform attention


def _score_variables(layer: keras.layers.Layer) -> list[Any]:
    if isinstance(layer, keras.layers.MultiHeadAttention):
        # A zero query makes every score 0: softmax is then uniform over the unmasked keys.
        dense = layer.query_dense
        return [v for v in (dense.kernel, getattr(dense, "bias", None)) if v is not None]
    return list(layer.score_variables())


def uniform_attention_delta(
    model: keras.Model, x: Any, y: Any, threshold: float = 0.5, *, batch_size: int = 64,
    learnt: np.ndarray | None = None, any_length: bool = False,
) -> dict[str, Any]:
    """Micro-F1 on ``(x, y)`` with the learnt attention and with every attention made uniform, and the change.

    Uniform attention is obtained by zeroing, for the duration of one ``predict``, the weights that score
    the steps (the query projection of multi-head attention, the context / label query vectors of the
    custom layers); everything else is the trained model. The weights are restored afterwards, also on
    error. A large positive ``delta`` means the model uses where it attends; about 0 means it does not
    (the seed's ``pooled`` attention gives exactly that). ``learnt``: the model's probabilities on ``x``
    when the caller has them already (the report scores the test split first), else predicted here;
    ``any_length``: predict in batches of similar length (:func:`~search.model.predict_probabilities`).
    """
    from search.model._training import predict_probabilities

    layers = attention_layers(model)
    if learnt is None:
        learnt = predict_probabilities(model, x, batch_size, any_length=any_length)
    saved: list[tuple[Any, np.ndarray]] = []
    try:
        for layer in layers:
            for variable in _score_variables(layer):
                value = np.asarray(ops.convert_to_numpy(variable))
                saved.append((variable, value))
                variable.assign(np.zeros_like(value))
        uniform = predict_probabilities(model, x, batch_size, any_length=any_length) if layers else learnt
    finally:
        for variable, value in saved:
            variable.assign(value)
    f1 = micro_f1(y, learnt, threshold)  # the objective's and the report's micro-F1
    f1_uniform = micro_f1(y, uniform, threshold)
    return {
        "micro_f1": f1,
        "micro_f1_uniform": f1_uniform,
        "delta": f1 - f1_uniform,
        "threshold": float(threshold),
        "layers": [layer.name for layer in layers],
    }
