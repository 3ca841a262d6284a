"""Datasets: the bundled ``debtags50``, the seed's ``.npz`` format, and ``.csv`` / ``.jsonl`` text files.

Everything here is independent of the Keras backend (numpy, scikit-learn and gensim only)::

    from search.data import load_dataset, DataSettings
    ds = load_dataset("debtags50", DataSettings(vocab_size=20000, max_len=200))
    ds.x_train, ds.y_train, ds.label_names
"""
from __future__ import annotations

from search.data._dataset import SPLITS, Dataset, DataSettings, DataWarning
from search.data._embeddings import embedding_matrix_for, train_word2vec
from search.data._loaders import BUNDLED, SUPPORTED_EXTENSIONS, load_dataset, load_texts, resolve_source

__all__ = [
    "BUNDLED",
    "SPLITS",
    "SUPPORTED_EXTENSIONS",
    "DataSettings",
    "DataWarning",
    "Dataset",
    "embedding_matrix_for",
    "load_dataset",
    "load_texts",
    "resolve_source",
    "train_word2vec",
]
