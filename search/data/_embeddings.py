"""Pretrained embeddings: the user's ``embedding_matrix``, or word2vec trained on the training split only."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from search.data._cache import cache_dir, fingerprint, load_entry, save_entry
from search.data._dataset import Dataset
from search.errors import DataError

__all__ = ["embedding_matrix_for", "train_word2vec"]


def train_word2vec(dataset: Dataset, dim: int = 100, *, epochs: int = 5, window: int = 5, min_count: int = 1,
                   seed: int = 13, workers: int = 1, cache: str | os.PathLike | None = None) -> np.ndarray:
    """A (vocab_size x dim) float32 matrix from gensim's Word2Vec over the TRAINING token ids only.

    Row 0 (padding) is zero; ids never seen in training keep a small seeded random vector. The result is
    cached on disk by the dataset's fingerprint and these settings. ``workers=1`` keeps it reproducible.
    """
    if dim < 1:
        raise DataError(f"got {dim}; expected a positive dimension", source="word2vec", field="dim")
    settings = {"dim": dim, "epochs": epochs, "window": window, "min_count": min_count, "seed": seed}
    key = fingerprint("word2vec", dataset.fingerprint, settings)
    root = cache_dir(cache)
    hit = load_entry(root, "embeddings", key, ["matrix"])
    if hit is not None and "matrix" in hit[0]:
        return hit[0]["matrix"]
    from gensim.models import Word2Vec  # heavy import, only when training

    sentences = [[str(t) for t in row[row > 0]] for row in dataset.x_train]
    sentences = [s for s in sentences if s]
    model = Word2Vec(sentences=sentences, vector_size=dim, window=window, min_count=min_count, epochs=epochs,
                     seed=seed, workers=workers, sg=0)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.05, size=(dataset.vocab_size, dim)).astype(np.float32)
    matrix[0] = 0.0
    for word, idx in model.wv.key_to_index.items():
        matrix[int(word)] = model.wv.vectors[idx]
    save_entry(root, "embeddings", key, {"matrix": matrix}, {"settings": settings, "dataset": dataset.fingerprint})
    return matrix


def embedding_matrix_for(dataset: Dataset, dim: int = 100, **kwargs: Any) -> np.ndarray:
    """The user's matrix when the dataset has one, else word2vec trained on its training split."""
    if dataset.embedding_matrix is not None:
        return dataset.embedding_matrix
    return train_word2vec(dataset, dim, **kwargs)
