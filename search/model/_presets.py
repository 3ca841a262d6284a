"""Named parameter sets that rebuild the seed's three models (shared/seed/README.md) exactly.

Built with the seed's shapes (``InputShapes(3000, 50000, 50, 100, embedding_matrix)``) each preset has
the same trainable and non-trainable parameter counts as the seed's code, and the same computation: the
seed masks nothing, so the presets set ``mask_padding=False`` (its convolutions are then 'valid', as in
the seed). The seed does not give a batch size; the presets use 64.
"""
from __future__ import annotations

from typing import Any

from search.model._params import DEFAULT_PARAMS

__all__ = ["PRESETS"]

_SEED_RCNN: dict[str, Any] = {
    **DEFAULT_PARAMS,
    # The question's model 1: frozen 100-d embedding -> Dropout(0.5) -> 2 x BiLSTM(128) -> Conv1D(128, k,
    # relu) for k = 1..5, each with GlobalAveragePooling1D + GlobalMaxPooling1D -> Dense(50, sigmoid).
    "preset": "seed_rcnn",
    "architecture": "rcnn",
    "embedding_mode": "frozen",
    "dropout": 0.5,
    "rnn_layers": 2,
    "bidirectional": True,
    "hidden_units": 128,
    "conv_kernel_sizes": (1, 2, 3, 4, 5),
    "conv_filters": 128,
    "batch_norm": False,
    "attention_position": "none",
    "kernel_l1": 0.0,
    "mask_padding": False,
}

_SEED_RCNN_ATTENTION: dict[str, Any] = {
    **_SEED_RCNN,
    # The question's model 2: the same, then Reshape([1, 1280]) -> the Raffel attention layer (over ONE
    # step: an identity) -> BatchNormalization -> Dense(50, sigmoid).
    "preset": "seed_rcnn_attention",
    "attention_position": "pooled",
    "batch_norm": True,
}

_SEED_ANSWER_MHA: dict[str, Any] = {
    **DEFAULT_PARAMS,
    # The answer's model 3: MultiHeadAttention(8, key_dim=100, dropout=0.1, kernel_regularizer=L1(0.1)) as
    # self-attention over the (frozen) embeddings -> 2 x LSTM(128) -> five residual blocks of Conv1D(128, 1)
    # + BatchNorm + ReLU (the fifth block reads z1, not z4, as in the answer) -> MaxPooling1D ->
    # GlobalAveragePooling1D -> Dropout(0.5) -> Dense(50, sigmoid, L1(0.1)).
    "preset": "seed_answer_mha",
    "architecture": "residual_mha",
    "embedding_mode": "frozen",
    "dropout": 0.5,
    "rnn_layers": 2,
    "bidirectional": False,
    "hidden_units": 128,
    "conv_kernel_sizes": (1, 1, 1, 1, 1),
    "conv_filters": 128,
    "batch_norm": True,
    "attention_position": "embedding",
    "num_heads": 8,
    "key_dim": 100,
    "attention_dropout": 0.1,
    "kernel_l1": 0.1,
    "mask_padding": False,
}

#: Preset name -> full params dict. Treat as read-only: ``{**PRESETS[name], "batch_size": 8}`` to vary one.
PRESETS: dict[str, dict[str, Any]] = {
    "seed_rcnn": _SEED_RCNN,
    "seed_rcnn_attention": _SEED_RCNN_ATTENTION,
    "seed_answer_mha": _SEED_ANSWER_MHA,
}
