"""The reference row: TF-IDF + one-vs-rest logistic regression on the same split (scikit-learn only).

Its input is the dataset's raw text when the dataset carries it (``dataset.texts``: split -> list of
strings), else the token ids the deep models see, joined as strings (the same truncation and vocabulary:
an apples-to-apples comparison). The decision threshold is tuned on the validation split as for the
deep models, then the test split is scored.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.metrics import evaluate, per_label_f1, tune_threshold
from search.report._stats import Counts, counts

__all__ = ["BaselineResult", "tfidf_baseline", "documents"]

MAX_FEATURES = 50_000


@dataclass
class BaselineResult:
    name: str
    input: str  # "raw text" or "token ids"
    threshold: float
    valid_micro_f1: float
    metrics: dict[str, float]
    per_label: np.ndarray
    counts: Counts
    seconds: float


def documents(dataset: Any, split: str) -> tuple[list[str], str]:
    """The split's documents as strings, and which input that is."""
    texts = getattr(dataset, "texts", None)
    if isinstance(texts, dict) and texts.get(split) is not None:
        return list(texts[split]), "raw text"
    x = np.asarray(getattr(dataset, f"x_{split}"))
    return [" ".join(f"t{int(i)}" for i in row[row != 0]) for row in x], "token ids"


def tfidf_baseline(dataset: Any, *, seed: int = 0) -> BaselineResult:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    start = time.perf_counter()
    train, kind = documents(dataset, "train")
    valid, _ = documents(dataset, "valid")
    test, _ = documents(dataset, "test")
    vectorizer = TfidfVectorizer(token_pattern=r"\S+" if kind == "token ids" else r"(?u)\b\w\w+\b",
                                 min_df=2 if len(train) >= 1000 else 1,
                                 sublinear_tf=True, max_features=MAX_FEATURES)
    x_train = vectorizer.fit_transform(train)
    classifier = OneVsRestClassifier(LogisticRegression(C=4.0, solver="liblinear", random_state=seed))
    y_train = np.asarray(dataset.y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a label absent from the training split: constant
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x_train, y_train)
        valid_prob = classifier.predict_proba(vectorizer.transform(valid))
        test_prob = classifier.predict_proba(vectorizer.transform(test))
    threshold, valid_f1 = tune_threshold(dataset.y_valid, valid_prob)
    return BaselineResult(
        name="TF-IDF + logistic regression", input=kind, threshold=threshold, valid_micro_f1=valid_f1,
        metrics=evaluate(dataset.y_test, test_prob, threshold),
        per_label=per_label_f1(dataset.y_test, test_prob, threshold),
        counts=counts(dataset.y_test, test_prob, threshold),
        seconds=time.perf_counter() - start,
    )
