"""Tiny data and parameters for the model factory tests (seq_len 12, vocabulary 50, 5 labels)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

SEQ_LEN, VOCAB, LABELS, DIM = 12, 50, 5, 8


def tiny_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "embedding_mode": "random",
        "embedding_dim": DIM,
        "rnn_layers": 1,
        "hidden_units": 4,
        "conv_kernel_sizes": (1, 2, 3),
        "conv_filters": 4,
        "num_heads": 2,
        "attention_units": 6,
        "batch_size": 8,
    }
    params.update(overrides)
    return params


@pytest.fixture
def tiny_params_factory():
    return tiny_params


@pytest.fixture
def tiny_shapes():
    from search.model import InputShapes

    return InputShapes(seq_len=SEQ_LEN, vocab_size=VOCAB, n_labels=LABELS, embedding_dim=DIM)


@pytest.fixture
def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    """16 post-padded documents of 1..SEQ_LEN tokens (ids 1..VOCAB-1, padding 0) and 0/1 labels."""
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCAB, size=(16, SEQ_LEN)).astype("int32")
    lengths = np.concatenate([[1, SEQ_LEN], rng.integers(1, SEQ_LEN, size=14)])
    for row, length in zip(x, lengths):
        row[length:] = 0
    y = (rng.random((16, LABELS)) < 0.4).astype("float32")
    return x, y
