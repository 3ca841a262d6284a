"""Multi-label metrics on predicted probabilities: micro/macro F1, threshold tuning, P@k, ROC AUC.

Conventions, shared by every function here:

* ``y_true`` is an ``(n_samples, n_labels)`` multi-hot array of 0/1 (bool, int or float);
  ``y_prob`` has the same shape and holds finite scores, normally sigmoid probabilities.
* A label is predicted when ``y_prob >= threshold``; ``threshold`` is one number for every label, or
  (where a function says so) an ``(n_labels,)`` array, one per label.
* F1 with nothing to score (no true and no predicted positives) is 0, as scikit-learn's
  ``zero_division=0``: a label that never occurs and is never predicted pulls macro-F1 down rather
  than being dropped, so macro-F1 is comparable between splits with the same label set.
* Undefined ROC AUC (only one class present) is ``nan``; macro AUC skips such labels.

Bad arrays raise :class:`search.errors.DataError` naming the argument. numpy and scikit-learn only:
this module never imports keras.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import f1_score, roc_auc_score

from search.errors import DataError

__all__ = [
    "THRESHOLD_GRID",
    "Threshold",
    "micro_f1",
    "micro_f1_curve",
    "tune_threshold",
    "tune_label_thresholds",
    "macro_f1",
    "per_label_f1",
    "precision_at_k",
    "roc_auc",
    "evaluate",
]

THRESHOLD_GRID = np.round(np.linspace(0.05, 0.95, 19), 2)
#: One decision threshold for every label, or one per label (an ``(n_labels,)`` array).
Threshold = float | np.ndarray


def micro_f1(y_true: ArrayLike, y_prob: ArrayLike, threshold: Threshold = 0.5) -> float:
    """Micro-averaged F1 over every (sample, label) cell at ``threshold`` (one, or one per label).

    Equal to scikit-learn's ``f1_score(average="micro", zero_division=0)`` (the tests check it); one
    threshold is counted by :func:`micro_f1_curve`, so it agrees exactly with :func:`tune_threshold`.
    """
    truth, prob = _check(y_true, y_prob)
    cut = _check_threshold(threshold, prob.shape[1])
    if isinstance(cut, float):
        return float(micro_f1_curve(truth, prob, [cut])[0])
    pred = prob >= cut
    denominator = int(pred.sum()) + int(truth.sum())
    return 2.0 * int((pred & truth).sum()) / denominator if denominator else 0.0


def micro_f1_curve(
    y_true: ArrayLike, y_prob: ArrayLike, thresholds: ArrayLike = THRESHOLD_GRID
) -> np.ndarray:
    """Micro-F1 at every threshold, in one sort-based pass.

    Written here rather than calling :func:`sklearn.metrics.f1_score` once per threshold: micro-F1 is
    ``2 TP / (predicted positives + actual positives)``, and both counts for every threshold come from
    one sort and one ``searchsorted`` (O(N log N) for N cells, instead of one full pass per threshold).
    """
    truth, prob = _check(y_true, y_prob)
    grid = _check_thresholds(thresholds)
    scores = np.sort(prob, axis=None)
    positive_scores = np.sort(prob[truth], axis=None)
    predicted = scores.size - np.searchsorted(scores, grid, side="left")  # count of prob >= t
    true_positive = positive_scores.size - np.searchsorted(positive_scores, grid, side="left")
    denominator = predicted + positive_scores.size
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = np.where(denominator > 0, 2.0 * true_positive / denominator, 0.0)
    return curve.astype(np.float64)


def tune_threshold(
    y_true: ArrayLike, y_prob: ArrayLike, thresholds: ArrayLike = THRESHOLD_GRID
) -> tuple[float, float]:
    """``(threshold, micro-F1)`` maximising micro-F1 over ``thresholds``.

    Ties go to the threshold closest to 0.5, then to the lower one.
    """
    grid = _check_thresholds(thresholds)
    curve = micro_f1_curve(y_true, y_prob, grid)
    best = curve.max()
    tied = np.flatnonzero(curve == best)
    order = np.lexsort((grid[tied], np.abs(grid[tied] - 0.5)))
    choice = tied[order[0]]
    return float(grid[choice]), float(curve[choice])


def tune_label_thresholds(
    y_true: ArrayLike, y_prob: ArrayLike, thresholds: ArrayLike = THRESHOLD_GRID, *, prefer: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds, F1s)``, one each per label: the threshold of ``thresholds`` maximising that label's F1.

    Ties (a label never true scores 0 everywhere) go to the threshold closest to ``prefer``, then to the
    lower one. One ``(thresholds, samples, labels)`` comparison: 19 x 4,494 x 50 cells for debtags50.
    """
    truth, prob = _check(y_true, y_prob)
    grid = _check_thresholds(thresholds)
    pred = prob[None, :, :] >= grid[:, None, None]
    true_positive = (pred & truth[None]).sum(axis=1)
    denominator = pred.sum(axis=1) + truth.sum(axis=0)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        curves = np.where(denominator > 0, 2.0 * true_positive / denominator, 0.0)  # (thresholds, labels)
    # the best per label; among equals the smallest distance to `prefer`, then the lower threshold
    order = np.lexsort((grid, np.abs(grid - _check_threshold(prefer))))
    ranked = curves[order]
    pick = order[np.argmax(ranked == ranked.max(axis=0, keepdims=True), axis=0)]
    labels = np.arange(curves.shape[1])
    return grid[pick].astype(np.float64), curves[pick, labels].astype(np.float64)


def per_label_f1(y_true: ArrayLike, y_prob: ArrayLike, threshold: Threshold) -> np.ndarray:
    """F1 of each label at ``threshold`` (one, or one per label; 0 for a label never true and never
    predicted)."""
    truth, prob = _check(y_true, y_prob)
    pred = prob >= _check_threshold(threshold, prob.shape[1])
    return np.asarray(f1_score(truth, pred, average=None, zero_division=0), dtype=np.float64)


def macro_f1(y_true: ArrayLike, y_prob: ArrayLike, threshold: Threshold) -> float:
    """Unweighted mean of :func:`per_label_f1` over all labels."""
    return float(per_label_f1(y_true, y_prob, threshold).mean())


def precision_at_k(y_true: ArrayLike, y_prob: ArrayLike, k: int = 5) -> float:
    """Mean over samples of (true labels among the ``k`` highest scores) / ``k``.

    scikit-learn has no multi-label precision@k (``top_k_accuracy_score`` is single-label), hence
    this function. ``k`` is capped at the number of labels. As usual in extreme multi-label work the
    denominator is ``k`` even for a sample with fewer than ``k`` true labels. Ties between equal
    scores are broken arbitrarily.
    """
    truth, prob = _check(y_true, y_prob)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"expected a positive integer, got {k!r}", source="precision_at_k", field="k")
    k = min(int(k), prob.shape[1])
    top = np.argpartition(-prob, k - 1, axis=1)[:, :k]
    hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
    return float(hits.mean() / k)


def roc_auc(y_true: ArrayLike, y_prob: ArrayLike, average: str = "micro") -> float:
    """ROC AUC from scikit-learn: ``"micro"`` over all cells, or ``"macro"`` over labels.

    Macro skips labels that lack positives or negatives; ``nan`` when nothing can be scored.
    """
    truth, prob = _check(y_true, y_prob)
    if average == "micro":
        flat = truth.ravel()
        if flat.all() or not flat.any():
            return math.nan
        return float(roc_auc_score(flat, prob.ravel()))
    if average == "macro":
        positives = truth.sum(axis=0)
        usable = (positives > 0) & (positives < truth.shape[0])
        if not usable.any():
            return math.nan
        return float(roc_auc_score(truth[:, usable], prob[:, usable], average="macro"))
    raise DataError(f"expected 'micro' or 'macro', got {average!r}", source="roc_auc", field="average")


def evaluate(y_true: ArrayLike, y_prob: ArrayLike, threshold: Threshold) -> dict[str, float]:
    """The report's metrics: micro/macro F1 at ``threshold`` (one, or one per label), precision@5, micro
    and macro ROC AUC."""
    truth, prob = _check(y_true, y_prob)
    return {
        "micro_f1": micro_f1(truth, prob, threshold),
        "macro_f1": macro_f1(truth, prob, threshold),
        "precision_at_5": precision_at_k(truth, prob, 5),
        "micro_auc": roc_auc(truth, prob, "micro"),
        "macro_auc": roc_auc(truth, prob, "macro"),
    }


def _check(y_true: ArrayLike, y_prob: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(bool labels, float scores)``, both ``(n_samples, n_labels)``, or :class:`DataError`."""
    try:
        prob = np.asarray(y_prob, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("expected an array of numbers", source="y_prob") from None
    try:
        raw = np.asarray(y_true)
        truth = raw.astype(bool)
    except (TypeError, ValueError):
        raise DataError("expected a multi-hot array of 0/1", source="y_true") from None
    if raw.ndim != 2 or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise DataError(
            f"expected a non-empty (n_samples, n_labels) array, got shape {raw.shape}", source="y_true"
        )
    if prob.shape != raw.shape:
        raise DataError(f"expected shape {raw.shape} like y_true, got {prob.shape}", source="y_prob")
    if raw.dtype != bool and not np.array_equal(raw, truth):
        raise DataError("expected only 0 and 1", source="y_true")
    if not np.isfinite(prob).all():
        raise DataError("expected finite scores, found NaN or infinity", source="y_prob")
    return truth, prob


def _check_threshold(threshold: Threshold, n_labels: int | None = None) -> float | np.ndarray:
    """A finite number, or (given ``n_labels``) an ``(n_labels,)`` array of finite numbers."""
    if n_labels is not None and isinstance(threshold, (np.ndarray, list, tuple)):
        try:
            cuts = np.asarray(threshold, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("expected numbers, one per label", source="threshold") from None
        if cuts.shape != (n_labels,) or not np.isfinite(cuts).all():
            raise DataError(f"expected {n_labels} finite numbers (one per label), got shape {cuts.shape}",
                            source="threshold")
        return cuts
    number = isinstance(threshold, (int, float, np.number)) and not isinstance(threshold, bool)
    if not number or not np.isfinite(threshold):
        raise DataError(f"expected a finite number, got {threshold!r}", source="threshold")
    return float(threshold)


def _check_thresholds(thresholds: ArrayLike) -> np.ndarray:
    try:
        grid = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("expected a 1-D array of numbers", source="thresholds") from None
    if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all():
        raise DataError(
            f"expected a non-empty 1-D array of finite numbers, got {thresholds!r}", source="thresholds"
        )
    return grid
