"""The reference row: TF-IDF + one-vs-rest logistic regression (:mod:`search.reference`) scored on the
test split at its validation-tuned threshold, beside the deep models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from search.metrics import evaluate, per_label_f1
from search.reference import fit_reference
from search.report._stats import Counts, counts

__all__ = ["BaselineResult", "tfidf_baseline"]


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
    test_prob: np.ndarray  # the final ensemble averages it in where search.finalize picked the reference


def tfidf_baseline(config: Any, dataset: Any) -> BaselineResult:
    """The reference on the study's data (``config.data`` with its settings; ``dataset`` holds its labels
    and test split)."""
    reference = fit_reference(config.data, config.data_settings(), dataset=dataset, include_test=True)
    assert reference.test_prob is not None  # asked for
    prob, threshold = reference.test_prob, reference.threshold
    return BaselineResult(
        name="TF-IDF + logistic regression", input=reference.input, threshold=threshold,
        valid_micro_f1=reference.valid_micro_f1, metrics=evaluate(dataset.y_test, prob, threshold),
        per_label=per_label_f1(dataset.y_test, prob, threshold), counts=counts(dataset.y_test, prob, threshold),
        seconds=reference.seconds, test_prob=np.asarray(prob, dtype=np.float64),
    )
