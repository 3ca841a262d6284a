"""Per-label thresholds of a final model: tuned per label on validation, shrunk toward the global one by
a factor cross-fitted over the validation documents, never at the cost of held-out micro-F1."""
from __future__ import annotations

import numpy as np
import pytest

from search._final._thresholds import shrunk_label_thresholds
from search.metrics import macro_f1, micro_f1, tune_threshold


def _miscalibrated(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six labels whose scores sit at different heights: one global threshold suits none of them well."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.4, 0.3, 0.2, 0.1, 0.05, 0.03])
    y = (rng.random((n, 6)) < rates).astype(np.uint8)
    centre = np.array([0.5, 0.45, 0.35, 0.25, 0.15, 0.1])  # rarer labels score lower
    prob = np.clip(centre + (y - 0.5) * 0.3 + rng.normal(0, 0.08, y.shape), 0.001, 0.999)
    return y, prob


def test_miscalibrated_labels_get_their_own_thresholds_without_losing_micro_f1() -> None:
    y, prob = _miscalibrated()
    threshold, _ = tune_threshold(y, prob)
    result = shrunk_label_thresholds(y, prob, threshold)
    assert result.shrink < 1.0
    assert result.heldout_macro_f1 > result.heldout_global_macro_f1 + 0.02
    assert result.heldout_micro_f1 >= result.heldout_global_micro_f1
    values = np.array(result.values)
    assert values.shape == (6,) and len(set(values.round(4))) > 1
    assert values[-1] < threshold < values[0]  # the rare, low-scoring label gets a lower cut
    # and on documents they were not tuned on, the same holds
    y_new, prob_new = _miscalibrated(seed=1)
    assert macro_f1(y_new, prob_new, values) > macro_f1(y_new, prob_new, threshold) + 0.02
    assert micro_f1(y_new, prob_new, values) >= micro_f1(y_new, prob_new, threshold) - 0.005


def test_labels_the_global_threshold_already_suits_keep_it() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((500, 4)) < 0.3).astype(np.uint8)
    prob = y * 0.8 + 0.1  # every cut between 0.1 and 0.9 is perfect for every label: ties keep the global
    result = shrunk_label_thresholds(y, prob, 0.5)
    assert result.shrink == 1.0 and result.values == (0.5, 0.5, 0.5, 0.5)
    assert result.heldout_micro_f1 == result.heldout_global_micro_f1 == 1.0


def test_the_folds_depend_on_the_seed_only() -> None:
    y, prob = _miscalibrated(n=800)
    assert shrunk_label_thresholds(y, prob, 0.3, seed=3) == shrunk_label_thresholds(y, prob, 0.3, seed=3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"folds": 1}, "expected 2 to"),
    ({"shrinks": (0.5, 1.5)}, "expected shrinks between 0 and 1"),
    ({"shrinks": ()}, "expected shrinks between 0 and 1"),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    y, prob = _miscalibrated(n=100)
    with pytest.raises(ValueError, match=message):
        shrunk_label_thresholds(y, prob, 0.3, **kwargs)


def test_probabilities_unlike_the_labels_are_refused() -> None:
    y, prob = _miscalibrated(n=100)
    with pytest.raises(ValueError, match=r"expected probabilities of shape \(100, 6\)"):
        shrunk_label_thresholds(y, prob[:, :5], 0.3)
