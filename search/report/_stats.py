"""Statistics of the report: t intervals over seeds, the paired bootstrap of a micro-F1 difference.

numpy and scipy only. Every interval is two-sided 95%.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "Counts", "Interval", "counts", "micro_f1_of",
           "paired_bootstrap", "t_interval"]

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95% interval (``nan`` bounds when it cannot be computed, e.g. one seed)."""

    estimate: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def contains_zero(self) -> bool:
        return not self.defined or self.low <= 0.0 <= self.high


def t_interval(values: Sequence[float]) -> Interval:
    """Mean and 95% confidence interval with Student's t (n - 1 degrees of freedom)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Interval(math.nan, n=0)
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, n=1)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, int(x.size))


@dataclass(frozen=True)
class Counts:
    """Per-document true positives, false positives and false negatives of one model: ``(n_docs, 3)``."""

    array: np.ndarray

    @property
    def micro_f1(self) -> float:
        # ``array`` is ``(n_docs, 3)``: its column sums are one set of totals, so the micro-F1 is a scalar.
        return float(micro_f1_of(self.array.sum(axis=0)))


def counts(y_true: np.ndarray, y_prob: np.ndarray, threshold: float | np.ndarray) -> Counts:
    """Per-document TP, FP, FN at ``threshold`` (one, or an ``(n_labels,)`` array: one per label)."""
    truth = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_prob) >= threshold
    tp = (truth & pred).sum(axis=1)
    fp = (~truth & pred).sum(axis=1)
    fn = (truth & ~pred).sum(axis=1)
    return Counts(np.stack([tp, fp, fn], axis=1).astype(np.float64))


def micro_f1_of(totals: np.ndarray) -> np.ndarray | float:
    """Micro-F1 = 2 TP / (2 TP + FP + FN) from summed counts ``(..., 3)``; 0 where nothing is scored."""
    totals = np.asarray(totals, dtype=np.float64)
    tp, fp, fn = totals[..., 0], totals[..., 1], totals[..., 2]
    denominator = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return float(f1) if f1.ndim == 0 else f1


def paired_bootstrap(treated: Sequence[Counts], control: Sequence[Counts], *,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Test micro-F1 difference ``treated - control`` with a paired percentile bootstrap 95% interval.

    ``treated[s]`` and ``control[s]`` are the per-document counts of the two models trained with replicate
    seed ``s`` on the same test documents. Each resample draws the test documents with replacement (the
    same draw for both models and every seed) and the replicate seeds with replacement (the same seeds for
    both models); its statistic is the mean over the drawn seeds of the micro-F1 difference on the drawn
    documents. The estimate is the mean over seeds of the difference on the whole test split.
    """
    if len(treated) != len(control) or not treated:
        raise ValueError("paired_bootstrap needs the same (non-zero) number of seeds on both sides")
    n_docs = treated[0].array.shape[0]
    if any(c.array.shape[0] != n_docs for c in (*treated, *control)):
        raise ValueError("paired_bootstrap: every model must be scored on the same documents")
    n_seeds = len(treated)
    diffs_full = [t.micro_f1 - c.micro_f1 for t, c in zip(treated, control, strict=True)]
    estimate = float(np.mean(diffs_full))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_docs, np.full(n_docs, 1.0 / n_docs), size=resamples).astype(np.float64)
    seeds = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    per_seed = np.empty((resamples, n_seeds))
    for s in range(n_seeds):
        per_seed[:, s] = micro_f1_of(weights @ treated[s].array) - micro_f1_of(weights @ control[s].array)
    stats = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
    low, high = np.percentile(stats, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return Interval(estimate, float(low), float(high), n_seeds)
