"""Greedy forward selection of an ensemble (Caruana et al., 2004), numpy only.

Start from the best single model; at each step add the model (with replacement: a model picked twice
weighs twice) whose addition to the average gives the best tuned validation micro-F1; stop when no
addition improves it by more than :data:`MIN_GAIN`, or at ``max_size`` picks. One global threshold is
tuned on the averaged probabilities, as for every single model. Why our own: scikit-learn's
``VotingClassifier``/``StackingClassifier`` refit their members, and these are trained Keras models.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from search.metrics import tune_threshold

__all__ = ["Selection", "greedy_selection", "MIN_GAIN", "MAX_SIZE", "REFERENCE"]

MIN_GAIN = 1e-4  # below a hundredth of a point, an extra member is noise on 4,494 validation documents
MAX_SIZE = 10
#: The key of the TF-IDF reference among the candidates (trial numbers are never negative).
REFERENCE = -1


@dataclass(frozen=True)
class Selection:
    members: tuple[int, ...]
    threshold: float
    valid_micro_f1: float
    best_single: int
    best_single_valid_micro_f1: float
    steps: tuple[float, ...]


def greedy_selection(y_valid: np.ndarray, probabilities: Mapping[int, np.ndarray], *,
                     max_size: int = MAX_SIZE, joiners: Mapping[int, np.ndarray] | None = None) -> Selection:
    """Select from ``probabilities`` (key -> validation probabilities, all the same shape).

    ``joiners``: more candidates (keys unlike the others') that may be added but never start the
    ensemble, so it always holds the best of ``probabilities`` (the study's best trial, not the reference).
    """
    if not probabilities:
        raise ValueError("greedy_selection needs at least one candidate")
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    joiners = dict(joiners or {})
    if set(joiners) & set(probabilities):
        raise ValueError(f"joiners and candidates share keys {sorted(set(joiners) & set(probabilities))}")
    shapes = {np.shape(p) for p in (*probabilities.values(), *joiners.values())}
    if len(shapes) != 1 or shapes != {np.shape(y_valid)}:
        raise ValueError(f"every candidate needs probabilities of shape {np.shape(y_valid)}, got {sorted(shapes)}")
    probs = {k: np.asarray(p, dtype=np.float64) for k, p in (*probabilities.items(), *joiners.items())}
    singles = {k: tune_threshold(y_valid, probs[k]) for k in probabilities}
    first = max(singles, key=lambda k: (singles[k][1], -k))
    members = [first]
    total = probs[first].copy()
    threshold, score = singles[first]
    steps = [score]
    while len(members) < max_size:
        trials = {k: tune_threshold(y_valid, (total + p) / (len(members) + 1)) for k, p in probs.items()}
        pick = max(trials, key=lambda k: (trials[k][1], -k))
        if trials[pick][1] <= score + MIN_GAIN:
            break
        members.append(pick)
        total += probs[pick]
        threshold, score = trials[pick]
        steps.append(score)
    return Selection(members=tuple(members), threshold=float(threshold), valid_micro_f1=float(score),
                     best_single=first, best_single_valid_micro_f1=float(singles[first][1]), steps=tuple(steps))

