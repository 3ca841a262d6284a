from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from search.errors import DataError
from search.metrics import (
    THRESHOLD_GRID,
    evaluate,
    macro_f1,
    micro_f1,
    micro_f1_curve,
    per_label_f1,
    precision_at_k,
    roc_auc,
    tune_label_thresholds,
    tune_threshold,
)


def _data(seed: int, n: int = 300, labels: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, labels)) < rng.uniform(0.05, 0.4, labels)).astype(np.int64)
    noise = rng.normal(0.0, 0.25, (n, labels))
    y_prob = 1.0 / (1.0 + np.exp(-(2.5 * (y_true - 0.5) + noise * 4)))
    return y_true, y_prob


def test_threshold_grid() -> None:
    assert THRESHOLD_GRID.tolist() == [round(0.05 * i, 2) for i in range(1, 20)]


@pytest.mark.parametrize("seed", range(5))
def test_micro_f1_matches_sklearn(seed: int) -> None:
    y_true, y_prob = _data(seed)
    for threshold in (0.1, 0.35, 0.5, 0.9):
        expected = f1_score(y_true, y_prob >= threshold, average="micro", zero_division=0)
        assert micro_f1(y_true, y_prob, threshold) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_curve_matches_sklearn_at_every_threshold(seed: int) -> None:
    y_true, y_prob = _data(seed)
    # Put scores exactly on grid points: `>=` must count them as predicted.
    y_prob[::7, 0] = 0.35
    expected = [f1_score(y_true, y_prob >= t, average="micro", zero_division=0) for t in THRESHOLD_GRID]
    np.testing.assert_allclose(micro_f1_curve(y_true, y_prob), expected, atol=1e-12)


def test_curve_custom_thresholds_and_bool_labels() -> None:
    y_true, y_prob = _data(7)
    grid = np.array([0.0, 0.5, 1.0, 1.5])
    curve = micro_f1_curve(y_true.astype(bool), y_prob, grid)
    assert curve.shape == (4,)
    assert curve[0] == pytest.approx(2 * y_true.sum() / (y_true.size + y_true.sum()))
    assert curve[3] == 0.0  # nothing predicted


def test_curve_is_fast_on_5000_by_50() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.random((5000, 50)) < 0.07
    y_prob = rng.random((5000, 50))
    micro_f1_curve(y_true, y_prob)
    start = time.perf_counter()
    for _ in range(5):
        micro_f1_curve(y_true, y_prob)
    per_call = (time.perf_counter() - start) / 5
    assert per_call < 0.1, f"{per_call:.3f} s per call"


@pytest.mark.parametrize("seed", range(5))
def test_tune_threshold_picks_the_argmax(seed: int) -> None:
    y_true, y_prob = _data(seed)
    threshold, best = tune_threshold(y_true, y_prob)
    scores = [f1_score(y_true, y_prob >= t, average="micro", zero_division=0) for t in THRESHOLD_GRID]
    assert best == pytest.approx(max(scores), abs=1e-12)
    assert threshold == THRESHOLD_GRID[int(np.argmax(scores))]
    assert micro_f1(y_true, y_prob, threshold) == pytest.approx(best, abs=1e-12)


def test_tune_threshold_ties_go_to_the_threshold_closest_to_half() -> None:
    y_true = np.array([[1, 0], [0, 1]])
    y_prob = np.array([[0.99, 0.01], [0.02, 0.98]])  # every grid threshold is perfect
    assert tune_threshold(y_true, y_prob) == (0.5, 1.0)
    assert tune_threshold(y_true, y_prob, [0.2, 0.45, 0.55, 0.9]) == (0.45, 1.0)
    assert tune_threshold(y_true, y_prob, [0.1, 0.7]) == (0.7, 1.0)


def test_no_positives_and_no_predictions_score_zero() -> None:
    y_true = np.zeros((4, 3), dtype=int)
    y_prob = np.full((4, 3), 0.1)
    assert micro_f1(y_true, y_prob, 0.5) == 0.0
    assert micro_f1_curve(y_true, y_prob, [0.5]).tolist() == [0.0]
    assert tune_threshold(y_true, y_prob) == (0.5, 0.0)
    assert per_label_f1(y_true, y_prob, 0.5).tolist() == [0.0, 0.0, 0.0]
    assert math.isnan(roc_auc(y_true, y_prob, "micro"))
    assert math.isnan(roc_auc(y_true, y_prob, "macro"))


@pytest.mark.parametrize("seed", range(3))
def test_per_label_and_macro_f1_match_sklearn(seed: int) -> None:
    y_true, y_prob = _data(seed)
    y_true[:, 3] = 0  # a label that never occurs: F1 0 by convention
    expected = f1_score(y_true, y_prob >= 0.4, average=None, zero_division=0)
    np.testing.assert_allclose(per_label_f1(y_true, y_prob, 0.4), expected)
    assert macro_f1(y_true, y_prob, 0.4) == pytest.approx(
        f1_score(y_true, y_prob >= 0.4, average="macro", zero_division=0)
    )


def test_precision_at_k() -> None:
    y_true = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    y_prob = np.array([[0.9, 0.8, 0.1, 0.7], [0.9, 0.8, 0.7, 0.1], [0.4, 0.3, 0.2, 0.1]])
    assert precision_at_k(y_true, y_prob, 1) == pytest.approx((1 + 0 + 0) / 3)
    assert precision_at_k(y_true, y_prob, 2) == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert precision_at_k(y_true, y_prob, 3) == pytest.approx((2 / 3 + 0 + 0) / 3)
    assert precision_at_k(y_true, y_prob, 10) == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)  # k capped at 4


def test_precision_at_k_matches_a_sort() -> None:
    y_true, y_prob = _data(3)
    top = np.argsort(-y_prob, axis=1)[:, :5]
    expected = np.take_along_axis(y_true, top, axis=1).sum(axis=1).mean() / 5
    assert precision_at_k(y_true, y_prob) == pytest.approx(expected)


def test_roc_auc_matches_sklearn_and_skips_one_class_labels() -> None:
    y_true, y_prob = _data(4)
    assert roc_auc(y_true, y_prob) == pytest.approx(roc_auc_score(y_true.ravel(), y_prob.ravel()))
    y_true[:, 2] = 0
    y_true[:, 5] = 1
    keep = [i for i in range(y_true.shape[1]) if i not in (2, 5)]
    expected = np.mean([roc_auc_score(y_true[:, i], y_prob[:, i]) for i in keep])
    assert roc_auc(y_true, y_prob, "macro") == pytest.approx(expected)


def test_evaluate_keys_and_values() -> None:
    y_true, y_prob = _data(5)
    result = evaluate(y_true, y_prob, 0.3)
    assert list(result) == ["micro_f1", "macro_f1", "precision_at_5", "micro_auc", "macro_auc"]
    assert result["micro_f1"] == pytest.approx(micro_f1(y_true, y_prob, 0.3))
    assert all(isinstance(value, float) for value in result.values())


@pytest.mark.parametrize(
    "y_true, y_prob, source",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "y_prob"),
        (np.zeros(3), np.zeros(3), "y_true"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "y_true"),
        (np.array([[0, 2]]), np.array([[0.1, 0.2]]), "y_true"),
        (np.array([[0.5, 1.0]]), np.array([[0.1, 0.2]]), "y_true"),
        (np.array([[0, 1]]), np.array([[0.1, np.nan]]), "y_prob"),
        (np.array([[0, 1]]), [["a", "b"]], "y_prob"),
    ],
)
def test_bad_arrays(y_true: object, y_prob: object, source: str) -> None:
    with pytest.raises(DataError) as info:
        micro_f1(y_true, y_prob)
    assert info.value.source == source


def test_bad_arguments() -> None:
    y_true, y_prob = _data(0, n=10, labels=3)
    with pytest.raises(DataError, match="threshold"):
        micro_f1(y_true, y_prob, float("nan"))
    with pytest.raises(DataError, match="thresholds"):
        micro_f1_curve(y_true, y_prob, [])
    with pytest.raises(DataError, match="thresholds"):
        tune_threshold(y_true, y_prob, [[0.5]])
    with pytest.raises(DataError, match="field 'k'"):
        precision_at_k(y_true, y_prob, 0)
    with pytest.raises(DataError, match="field 'average'"):
        roc_auc(y_true, y_prob, "weighted")


@pytest.mark.parametrize("seed", [0, 1])
def test_per_label_thresholds_match_sklearn(seed: int) -> None:
    y_true, y_prob = _data(seed, n=300, labels=5)
    cuts, f1s = tune_label_thresholds(y_true, y_prob)
    for j in range(5):  # each label's threshold is its own argmax over the grid
        scores = [f1_score(y_true[:, j], y_prob[:, j] >= g, zero_division=0) for g in THRESHOLD_GRID]
        assert f1s[j] == pytest.approx(max(scores), abs=1e-12)
        assert f1_score(y_true[:, j], y_prob[:, j] >= cuts[j], zero_division=0) == pytest.approx(f1s[j], abs=1e-12)
    pred = y_prob >= cuts  # and every F1 function takes them
    assert micro_f1(y_true, y_prob, cuts) == pytest.approx(f1_score(y_true, pred, average="micro"), abs=1e-12)
    assert macro_f1(y_true, y_prob, cuts) == pytest.approx(f1_score(y_true, pred, average="macro"), abs=1e-12)
    assert evaluate(y_true, y_prob, cuts)["macro_f1"] == pytest.approx(macro_f1(y_true, y_prob, cuts))


def test_per_label_ties_go_to_the_preferred_threshold() -> None:
    y_true = np.array([[1, 0], [0, 0]])
    y_prob = np.array([[0.99, 0.01], [0.02, 0.03]])  # label 0: every threshold perfect; label 1: never true
    cuts, f1s = tune_label_thresholds(y_true, y_prob, prefer=0.3)
    assert cuts.tolist() == [0.3, 0.3] and f1s.tolist() == [1.0, 0.0]


def test_per_label_thresholds_of_the_wrong_length_are_refused() -> None:
    y_true, y_prob = _data(0, n=10, labels=3)
    with pytest.raises(DataError, match="expected 3 finite numbers"):
        micro_f1(y_true, y_prob, np.array([0.5, 0.5]))
    with pytest.raises(DataError, match="expected 3 finite numbers"):
        macro_f1(y_true, y_prob, [0.5, float("nan"), 0.5])


def test_does_not_import_keras() -> None:
    code = (
        "import sys, search.metrics; "
        "print(any(m.split('.')[0] in ('keras', 'tensorflow') for m in sys.modules))"
    )
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
