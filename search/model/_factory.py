"""Build a compiled Keras model from a plain params dict and the dataset's shapes.

Two architectures, one graph builder each:

* ``rcnn`` (the seed's question): embedding -> dropout -> 1-2 (Bi)LSTM -> Conv1D per kernel size ->
  average + max pooling -> [batch norm] -> ``Dense(n_labels, sigmoid, float32)``, with the attention
  placed by ``attention_position`` (none / embedding / rnn / conv / pooled / label);
* ``residual_mha`` (the seed's answer): embedding -> [self-attention] -> LSTMs -> residual Conv1D blocks
  -> MaxPooling1D -> GlobalAveragePooling1D -> dropout -> ``Dense``.

Padding (``mask_padding=True``; ids are post-padded with 0) is handled with one explicit boolean mask
``(batch, T)`` built from the token ids and passed by keyword to every layer that reads a sequence:

* the LSTMs get it, so the TensorFlow backend can run them on cuDNN (a right-padded mask is the one kind
  cuDNN accepts). The first step is never masked: an empty document would otherwise be a fully masked
  row, which cuDNN refuses and over which a softmax is undefined;
* multi-head attention gets it as query and value mask; the additive and label-wise attention as ``mask``;
* ``Conv1D`` takes no mask, so with masking the convolutions use ``padding='same'`` (the feature map
  stays aligned with the tokens), the RNN outputs are zeroed at padded steps before the convolution (so a
  window that runs past the text sees zeros, exactly like 'same' padding of the unpadded text), and the
  feature maps are zeroed at padded steps after it. Average pooling and batch norm take the mask; max
  pooling then needs none, because the feature maps are ReLU outputs (>= 0). The prediction for a text is
  thus independent of how much padding follows it.

With ``mask_padding=False`` nothing is masked and the convolutions are 'valid': the seed's computation.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from search.model._diagnostics import attention_layer_report, cudnn_eligible
from search.model._layers import AdditiveAttentionPooling, LabelWiseAttention, RaffelAttention
from search.model._memory import DEFAULT_MEMORY_BUDGET_BYTES, activation_memory_bytes, check_attention_memory
from search.model._params import InputShapes, any_length, check_shapes, effective_embedding_dim, resolve_params

__all__ = ["BuiltModel", "build_model"]

logger = logging.getLogger("search.model")


@dataclass
class BuiltModel:
    """A compiled model, the fully resolved params it was built from, and its diagnostics (JSON-ready).

    ``any_length``: the model takes token ids of any length and predicts the same whatever padding follows
    a text, so it may be trained and asked in batches cut to their longest document.
    """

    model: keras.Model
    params: dict[str, Any]
    diagnostics: dict[str, Any]
    any_length: bool = field(default=False, kw_only=True)


def build_model(
    params: Mapping[str, Any], shapes: InputShapes, *, memory_budget_bytes: int | None = None
) -> BuiltModel:
    """Build and compile (binary cross-entropy; Adam(learning_rate), or AdamW with ``weight_decay`` > 0)
    the model ``params`` describe.

    Raises :class:`~search.errors.ModelConfigError` for an unknown key or bad value, for shapes the params
    cannot be built for, and, before building anything, when the self-attention scores of one batch
    (``batch_size x num_heads x seq_len^2 x dtype bytes``) exceed ``memory_budget_bytes`` (default
    :data:`~search.model._memory.DEFAULT_MEMORY_BUDGET_BYTES`).
    """
    resolved = resolve_params(params)
    check_shapes(resolved, shapes)
    attention_bytes = check_attention_memory(resolved, shapes, memory_budget_bytes)

    graph = _Graph(resolved, shapes)
    model = graph.build()
    optimizer: keras.optimizers.Optimizer = (
        keras.optimizers.AdamW(learning_rate=resolved["learning_rate"], weight_decay=resolved["weight_decay"])
        if resolved["weight_decay"] > 0 else keras.optimizers.Adam(learning_rate=resolved["learning_rate"]))
    if resolved["mixed_precision"]:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss="binary_crossentropy")

    # A model that takes any length attends over each text's own tokens: at most the padded length.
    report = [entry | {"steps": shapes.seq_len} if entry["steps"] is None else entry
              for entry in attention_layer_report(model)]
    degenerate = [entry for entry in report if entry["degenerate"]]
    reason = None
    if degenerate:
        reason = "; ".join(
            f"{entry['name']} ({entry['type']}) attends over {entry['steps']} step: its softmax is 1, so the layer "
            "is an identity and its score weights get no gradient"
            for entry in degenerate
        )
        logger.warning("degenerate attention in model %r: %s", model.name, reason)

    diagnostics: dict[str, Any] = {
        "architecture": resolved["architecture"],
        "attention_position": resolved["attention_position"],
        "attention_layers": report,
        "degenerate_attention": bool(degenerate),
        "degenerate_reason": reason,
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
        "attention_memory_bytes": int(attention_bytes),
        "attention_memory_budget_bytes": int(
            DEFAULT_MEMORY_BUDGET_BYTES if memory_budget_bytes is None else memory_budget_bytes
        ),
        "activation_memory_bytes_per_batch": activation_memory_bytes(model, resolved, shapes),
        "batch_size": resolved["batch_size"],
        "embedding_dim": graph.embedding_dim,
        "dtype_policy": graph.policy,
        "mask_padding": resolved["mask_padding"],
        "cudnn_eligible": cudnn_eligible(model),
        "backend": keras.backend.backend(),
    }
    return BuiltModel(model=model, params=resolved, diagnostics=diagnostics, any_length=any_length(resolved))


def _count(variables: list[Any]) -> int:
    return int(sum(int(np.prod(v.shape)) for v in variables))


def _padding_mask(token_ids: Any) -> Any:
    """True at real tokens (id != 0) and always at the first step (see the module docstring)."""
    real = ops.not_equal(token_ids, 0)
    first = ops.equal(ops.cumsum(ops.ones_like(token_ids), axis=1), 1)
    return ops.logical_or(real, first)


class _Graph:
    """Builds the functional graph for one resolved params dict (one use)."""

    def __init__(self, params: dict[str, Any], shapes: InputShapes) -> None:
        self.p = params
        self.shapes = shapes
        self.policy = "mixed_float16" if params["mixed_precision"] else "float32"
        self.embedding_dim = effective_embedding_dim(params, shapes)
        self.l1 = keras.regularizers.L1(params["kernel_l1"]) if params["kernel_l1"] > 0 else None
        self.mask: Any = None

    # --- pieces ---------------------------------------------------------------------------------------

    def _zero_padding(self, x: Any) -> Any:
        if self.mask is None:
            return x
        return x * ops.expand_dims(ops.cast(self.mask, x.dtype), -1)

    def _embedding(self, token_ids: Any) -> Any:
        mode = self.p["embedding_mode"]
        kwargs: dict[str, Any] = {"name": "embedding", "dtype": self.policy}
        if mode == "random":
            layer = layers.Embedding(self.shapes.vocab_size, self.embedding_dim, **kwargs)
        else:
            matrix = np.asarray(self.shapes.embedding_matrix, dtype="float32")
            layer = layers.Embedding(
                self.shapes.vocab_size, self.embedding_dim, weights=[matrix], trainable=(mode == "trainable"), **kwargs
            )
        return layer(token_ids)

    def _rnn(self, x: Any) -> Any:
        for i in range(1, self.p["rnn_layers"] + 1):
            # cuDNN-eligible: tanh / sigmoid, bias, no recurrent dropout, not unrolled.
            lstm = layers.LSTM(
                self.p["hidden_units"],
                activation="tanh",
                recurrent_activation="sigmoid",
                use_bias=True,
                recurrent_dropout=0.0,
                unroll=False,
                return_sequences=True,
                dtype=self.policy,
                name=f"lstm_{i}",
            )
            rnn = layers.Bidirectional(lstm, dtype=self.policy, name=f"rnn_{i}") if self.p["bidirectional"] else lstm
            x = rnn(x, mask=self.mask) if self.mask is not None else rnn(x)
        return x

    def _self_attention(self, x: Any, name: str, *, residual: bool) -> Any:
        features = int(x.shape[-1])
        key_dim = self.p["key_dim"] or max(1, features // self.p["num_heads"])
        mha = layers.MultiHeadAttention(
            num_heads=self.p["num_heads"],
            key_dim=key_dim,
            dropout=self.p["attention_dropout"],
            kernel_regularizer=self.l1,
            dtype=self.policy,
            name=name,
        )
        masks = {} if self.mask is None else {"query_mask": self.mask, "value_mask": self.mask}
        attended = mha(x, x, **masks)
        if not residual:
            return attended
        added = layers.Add(dtype=self.policy, name=f"{name}_residual")([x, attended])
        return layers.LayerNormalization(dtype=self.policy, name=f"{name}_norm")(added)

    def _output_dense(self, x: Any) -> Any:
        return layers.Dense(
            self.shapes.n_labels, activation="sigmoid", kernel_regularizer=self.l1, dtype="float32", name="output"
        )(x)

    # --- architectures --------------------------------------------------------------------------------

    def build(self) -> keras.Model:
        length = None if any_length(self.p) else self.shapes.seq_len
        token_ids = keras.Input(shape=(length,), dtype="int32", name="token_ids")
        if self.p["mask_padding"]:
            self.mask = _padding_mask(token_ids)
        x = self._embedding(token_ids)
        if self.p["architecture"] == "residual_mha":
            outputs = self._residual_mha(x)
        else:
            outputs = self._rcnn(x)
        name = f"{self.p['architecture']}_attention_{self.p['attention_position']}"
        return keras.Model(token_ids, outputs, name=name)

    def _rcnn(self, x: Any) -> Any:
        p = self.p
        position = p["attention_position"]
        x = layers.Dropout(p["dropout"], dtype=self.policy, name="embedding_dropout")(x)
        if position == "embedding":
            # On the embeddings, before the RNN, as the seed's answer (no residual there).
            x = self._self_attention(x, "embedding_attention", residual=False)
        h = self._rnn(x)
        if position == "rnn":
            h = self._self_attention(h, "rnn_attention", residual=True)

        if position == "label":
            label_attention = LabelWiseAttention(
                self.shapes.n_labels, units=p["attention_units"], dtype=self.policy, name="label_attention"
            )
            v = label_attention(h, mask=self.mask) if self.mask is not None else label_attention(h)
            if p["batch_norm"]:
                v = layers.BatchNormalization(dtype=self.policy, name="label_batch_norm")(v)
            # logit_l = <beta_l, v_l> + b_l: one weight vector per label.
            return layers.EinsumDense(
                "bld,ld->bl",
                output_shape=(self.shapes.n_labels,),
                bias_axes="l",
                activation="sigmoid",
                kernel_regularizer=self.l1,
                dtype="float32",
                name="output",
            )(v)

        h = self._zero_padding(h)
        padding = "same" if self.mask is not None else "valid"
        features = []
        for i, kernel_size in enumerate(p["conv_kernel_sizes"], start=1):
            c = layers.Conv1D(
                p["conv_filters"], kernel_size, activation="relu", padding=padding, dtype=self.policy,
                name=f"conv_{i}_k{kernel_size}",
            )(h)
            c = self._zero_padding(c)
            masks = {} if self.mask is None else {"mask": self.mask}
            if position == "conv":
                pooled = AdditiveAttentionPooling(
                    units=p["attention_units"], dtype=self.policy, name=f"attention_pool_{i}"
                )(c, **masks)
            else:
                pooled = layers.GlobalAveragePooling1D(dtype=self.policy, name=f"avg_pool_{i}")(c, **masks)
            features += [pooled, layers.GlobalMaxPooling1D(dtype=self.policy, name=f"max_pool_{i}")(c)]
        z = layers.Concatenate(dtype=self.policy, name="features")(features)

        if position == "pooled":
            # The seed's placement: a sequence of ONE step, so the attention is an identity (kept to reproduce).
            width = int(z.shape[-1])
            z = layers.Reshape((1, width), dtype=self.policy, name="features_as_sequence")(z)
            z = RaffelAttention(dtype=self.policy, name="pooled_attention")(z)
        if p["batch_norm"]:
            z = layers.BatchNormalization(dtype=self.policy, name="features_batch_norm")(z)
        return self._output_dense(z)

    def _residual_mha(self, x: Any) -> Any:
        p = self.p
        if p["attention_position"] == "embedding":
            x = self._self_attention(x, "embedding_attention", residual=False)
        h = self._rnn(x)
        if p["attention_position"] == "rnn":
            h = self._self_attention(h, "rnn_attention", residual=True)
        b = self._zero_padding(h)

        blocks = p["conv_kernel_sizes"]
        zs: list[Any] = []
        z = b
        for i, kernel_size in enumerate(blocks, start=1):
            # The seed's answer feeds its last block from z1, not z4 ("c5 = Conv1D(...)(z1)"); kept exactly.
            source = zs[0] if (i == len(blocks) and len(blocks) > 1) else z
            c = layers.Conv1D(
                p["conv_filters"], kernel_size, padding="same", dtype=self.policy, name=f"block_{i}_conv"
            )(source)
            if p["batch_norm"]:
                bn = layers.BatchNormalization(dtype=self.policy, name=f"block_{i}_batch_norm")
                c = bn(c, mask=self.mask) if self.mask is not None else bn(c)
            c = layers.ReLU(dtype=self.policy, name=f"block_{i}_relu")(c)
            z = self._zero_padding(layers.Add(dtype=self.policy, name=f"block_{i}_residual")([z, c]))
            zs.append(z)

        pool_mask = None
        if self.mask is not None:
            # Padded steps must not win the max: fill them with the lowest value first. A pooled step is
            # real when its window starts on a real token (post-padding).
            lowest = float(np.finfo(np.float16 if p["mixed_precision"] else np.float32).min)
            z = ops.where(ops.expand_dims(self.mask, -1), z, lowest)
            pooled_len = self.shapes.seq_len // 2
            pool_mask = self.mask[:, : 2 * pooled_len : 2]
        z = layers.MaxPooling1D(dtype=self.policy, name="max_pool")(z)
        gap = layers.GlobalAveragePooling1D(dtype=self.policy, name="avg_pool")
        z = gap(z, mask=pool_mask) if pool_mask is not None else gap(z)
        z = layers.Dropout(p["dropout"], dtype=self.policy, name="dropout")(z)
        return self._output_dense(z)
