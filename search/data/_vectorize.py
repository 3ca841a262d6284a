"""One vectoriser for every text source: texts -> post-padded int32 token ids.

Keras' ``TextVectorization`` would tie data loading to a Keras backend (it runs on TensorFlow ops), and
data loading must not depend on the backend; scikit-learn's analyser does the tokenising and we only
count, rank and look up.
"""
from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

__all__ = ["PAD", "OOV", "tokenizer", "tokenizer_settings", "build_vocabulary", "texts_to_ids"]

PAD, OOV = "<pad>", "<oov>"
# Words, with the characters that glue Debian-ish terms together (c++, gtk+, x11, lib-foo).
_TOKEN_PATTERN = r"(?u)\b\w[\w+#.-]*\w\+*|\b\w\b\+*"


def tokenizer(*, lowercase: bool = True, token_pattern: str = _TOKEN_PATTERN) -> Callable[[str], list[str]]:
    """The analyser: lowercases and splits into tokens (scikit-learn's, with our token pattern).

    The defaults are what the data pipeline uses; an exported model records them (``tokenizer_settings``)
    and passes them back, so it keeps tokenising as it was trained even if the defaults change later.
    """
    return CountVectorizer(lowercase=lowercase, token_pattern=token_pattern).build_analyzer()


def tokenizer_settings() -> dict[str, bool | str]:
    """The keyword arguments of :func:`tokenizer` the data pipeline uses."""
    return {"lowercase": True, "token_pattern": _TOKEN_PATTERN}


def build_vocabulary(token_lists: Iterable[Sequence[str]], vocab_size: int) -> list[str]:
    """Most frequent tokens of the training texts; ids 0 and 1 are padding and out-of-vocabulary."""
    counts: collections.Counter[str] = collections.Counter()
    for tokens in token_lists:
        counts.update(tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, vocab_size - 2)]
    return [PAD, OOV] + [t for t, _ in ranked]


def texts_to_ids(token_lists: Sequence[Sequence[str]], vocabulary: Sequence[str], max_len: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Token lists -> (ids [n, max_len] int32, post-padded and post-truncated; lengths before truncation)."""
    index = {t: i for i, t in enumerate(vocabulary)}
    out = np.zeros((len(token_lists), max_len), dtype=np.int32)
    lengths = np.zeros(len(token_lists), dtype=np.int32)
    for row, tokens in enumerate(token_lists):
        lengths[row] = len(tokens)
        ids = [index.get(t, 1) for t in tokens[:max_len]]
        out[row, : len(ids)] = ids
    return out, lengths
