"""The three attention layers Keras does not provide, written in Keras' own style.

``build`` / ``call`` / ``get_config``, ``keras.ops`` only, registered for ``.keras`` saving, so a saved
trial model reloads under TensorFlow, JAX or PyTorch. Multi-head self-attention, layer normalisation and
the per-label output (``EinsumDense``) come from Keras itself.

Each layer also offers, for the diagnostics in :mod:`search.model._diagnostics`:

* ``attention_distribution(inputs, mask=None)`` -> the attention weights (float32, zero at masked steps);
* ``score_variables()`` -> the variables that score the steps: set them to zero and the attention becomes
  uniform over the unmasked steps (the learnt values are kept elsewhere and put back).

Softmaxes run in float32 under mixed precision; a masked step gets exactly zero weight.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["AdditiveAttentionPooling", "LabelWiseAttention", "RaffelAttention", "masked_softmax"]

_PACKAGE = "search"


def masked_softmax(scores: Any, mask: Any | None, axis: int = -1) -> Any:
    """Softmax in float32 over ``axis``; masked entries get exactly 0 (a fully masked row is all 0)."""
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=axis)
    mask = ops.cast(mask, "bool")
    weights = ops.softmax(ops.where(mask, scores, -1e9), axis=axis)
    return weights * ops.cast(mask, "float32")


def _feature_width(layer: keras.layers.Layer, input_shape: tuple[int | None, ...]) -> int:
    """The last axis of ``input_shape``: the weights' size depends on it, so it must be known."""
    features = input_shape[-1]
    if features is None:
        raise ValueError(f"{type(layer).__name__} needs a known feature width; got input shape {input_shape}")
    return int(features)


class _AttentionPooling(keras.layers.Layer):
    """A weighted sum over time, ``(batch, T, F) -> (batch, F)``, with the weights a subclass's
    ``attention_distribution`` gives (float32, one per step; masked steps get none). The sum is taken in
    the inputs' dtype, so a mixed-precision model stays in float16 but for the weights."""

    def attention_distribution(self, inputs: Any, mask: Any | None = None) -> Any:
        raise NotImplementedError

    def call(self, inputs: Any, mask: Any | None = None) -> Any:
        weights = ops.cast(self.attention_distribution(inputs, mask), inputs.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs: Any, mask: Any | None = None) -> None:
        return None  # one vector per document: no time axis left to mask

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AdditiveAttentionPooling(_AttentionPooling):
    """Additive attention pooling over time: ``(batch, T, F) -> (batch, F)``.

    ``score_t = v . tanh(W h_t + b)``, ``a = softmax_t(score)`` over the unmasked steps,
    ``output = sum_t a_t h_t``. Used by ``attention_position='conv'`` in place of average pooling.

    Why a custom layer: ``keras.layers.AdditiveAttention`` is query-value attention that needs a query
    sequence and returns a sequence; pooling one sequence into one vector with a learnt context vector
    ``v`` is not in Keras.
    """

    def __init__(self, units: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = _feature_width(self, input_shape)
        units = self.units or features
        self.kernel = self.add_weight(name="kernel", shape=(features, units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros")
        self.context = self.add_weight(name="context", shape=(units, 1), initializer="glorot_uniform")

    def attention_distribution(self, inputs: Any, mask: Any | None = None) -> Any:
        """Weights over time, ``(batch, T)``, float32."""
        hidden = ops.tanh(ops.matmul(inputs, self.kernel) + self.bias)
        scores = ops.squeeze(ops.matmul(hidden, self.context), axis=-1)
        return masked_softmax(scores, mask, axis=-1)

    def score_variables(self) -> list[Any]:
        return [self.context]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RaffelAttention(_AttentionPooling):
    """The seed's attention layer (Raffel & Ellis, feed-forward attention), kept to reproduce the seed.

    ``e = tanh(x W + b)`` with ``W`` of size features and ``b`` of size steps, ``a = exp(e)`` (times the
    mask), ``a /= sum(a) + epsilon``, output ``sum_t a_t x_t``: ``(batch, steps, F) -> (batch, F)``.
    Identical arithmetic to the seed, epsilon included. Over one step (the seed's ``Reshape([1, 1280])``)
    ``a = 1 / (1 + epsilon e^-e)``, i.e. the layer is an identity to within 3e-7.

    Why a custom layer: the seed defines it with the Keras 2 backend module (``K.dot``, ``K.epsilon``), gone
    in Keras 3; its bias per step (not per unit) is in no Keras layer.
    """

    def __init__(self, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_bias = use_bias
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(f"RaffelAttention needs (batch, steps, features) with known steps; got {input_shape}")
        self.kernel = self.add_weight(name="kernel", shape=(_feature_width(self, input_shape),),
                                      initializer="glorot_uniform")
        self.bias = (
            self.add_weight(name="bias", shape=(int(input_shape[1]),), initializer="zeros") if self.use_bias else None
        )

    def attention_distribution(self, inputs: Any, mask: Any | None = None) -> Any:
        """Weights over the steps, ``(batch, steps)``, float32 (the seed's formula)."""
        x = ops.cast(inputs, "float32")
        e = ops.squeeze(ops.matmul(x, ops.expand_dims(ops.cast(self.kernel, "float32"), -1)), axis=-1)
        if self.bias is not None:
            e = e + ops.cast(self.bias, "float32")
        a = ops.exp(ops.tanh(e))
        if mask is not None:
            a = a * ops.cast(mask, "float32")
        return a / (ops.sum(a, axis=1, keepdims=True) + keras.config.epsilon())

    def score_variables(self) -> list[Any]:
        return [self.kernel] + ([self.bias] if self.bias is not None else [])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LabelWiseAttention(keras.layers.Layer):
    """Label-wise attention (LAAT, Vu et al. 2020; CAML, Mullenbach et al. 2018): one distribution per label.

    ``H`` is ``(batch, T, D)``: ``Z = tanh(H W)`` ``(batch, T, units)``; ``A = softmax_T(Z U)``, one
    distribution over the unmasked steps per label ``(batch, L, T)``; output ``V = A H`` ``(batch, L, D)``.
    The factory follows it with ``EinsumDense('bld,ld->bl')``: ``logit_l = <beta_l, v_l> + b_l``.

    Why a custom layer: Keras' attention layers share one distribution across outputs (or per head over a
    query sequence); a learnt query per label attending over time is not in Keras.
    """

    def __init__(self, n_labels: int, units: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_labels = int(n_labels)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = _feature_width(self, input_shape)
        units = self.units or features
        self.kernel = self.add_weight(name="kernel", shape=(features, units), initializer="glorot_uniform")
        self.label_queries = self.add_weight(
            name="label_queries", shape=(units, self.n_labels), initializer="glorot_uniform"
        )

    def attention_distribution(self, inputs: Any, mask: Any | None = None) -> Any:
        """Weights ``(batch, n_labels, T)``, float32, zero at masked steps."""
        hidden = ops.tanh(ops.matmul(inputs, self.kernel))
        scores = ops.transpose(ops.matmul(hidden, self.label_queries), (0, 2, 1))
        if mask is not None:
            mask = ops.expand_dims(mask, 1)
        return masked_softmax(scores, mask, axis=-1)

    def call(self, inputs: Any, mask: Any | None = None) -> Any:
        weights = ops.cast(self.attention_distribution(inputs, mask), inputs.dtype)
        return ops.matmul(weights, inputs)

    def score_variables(self) -> list[Any]:
        return [self.label_queries]

    def compute_mask(self, inputs: Any, mask: Any | None = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.n_labels, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_labels": self.n_labels, "units": self.units}
