"""The report's statistics and its verdict wording, on synthetic numbers (fast, no keras)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from search.report._ablation import Ablation, AblationRow
from search.report._compare import WithWithout
from search.report._format import ci_points, points, points_interval, score_interval
from search.report._stats import Counts, Interval, counts, micro_f1_of, paired_bootstrap, t_interval
from search.report._verdict import verdict
from search.metrics import micro_f1


def test_t_interval_matches_scipy() -> None:
    values = [0.61, 0.64, 0.60]
    interval = t_interval(values)
    low, high = stats.t.interval(0.95, df=2, loc=np.mean(values), scale=stats.sem(values))
    assert (interval.estimate, interval.low, interval.high, interval.n) == pytest.approx((np.mean(values), low, high, 3))
    one = t_interval([0.5])
    assert one.estimate == 0.5 and not one.defined and one.contains_zero()
    assert math.isnan(t_interval([]).estimate)


def _random_counts(rng: np.random.Generator, n_docs: int = 300, n_labels: int = 8, skill: float = 0.3) -> Counts:
    truth = rng.random((n_docs, n_labels)) < 0.3
    prob = np.clip(truth * skill + rng.random((n_docs, n_labels)) * (1 - skill), 0, 1)
    return counts(truth, prob, 0.5)


def test_counts_give_micro_f1() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random((50, 6)) < 0.4
    prob = rng.random((50, 6))
    assert counts(truth, prob, 0.4).micro_f1 == pytest.approx(micro_f1(truth, prob, 0.4))
    assert micro_f1_of(np.zeros(3)) == 0.0


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    a = [_random_counts(rng) for _ in range(3)]
    same = paired_bootstrap(a, a)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    b = [_random_counts(rng, skill=0.6) for _ in range(3)]
    diff = paired_bootstrap(b, a, resamples=500)
    assert diff.estimate == pytest.approx(np.mean([x.micro_f1 - y.micro_f1 for x, y in zip(b, a)]))
    assert 0 < diff.low < diff.estimate < diff.high and diff.n == 3
    assert paired_bootstrap(b, a, resamples=500) == diff  # fixed seed: reproducible
    flipped = paired_bootstrap(a, b, resamples=500)
    assert flipped.estimate == pytest.approx(-diff.estimate)
    with pytest.raises(ValueError):
        paired_bootstrap(a, b[:2])


def test_formatting() -> None:
    assert points(0.0213) == "+2.1" and points(-0.0004) == "+0.0" and points(-0.05) == "-5.0"
    interval = Interval(0.021, 0.012, 0.030, 3)
    assert ci_points(interval) == "[1.2, 3.0]" and points_interval(interval) == "+2.1 [1.2, 3.0]"
    assert score_interval(Interval(0.5, n=1)) == "0.500 (1 seed, no CI)"


def _row(position: str, diff: Interval | None, degenerate: bool = False, uniform: float | None = 0.02) -> AblationRow:
    return AblationRow(position=position, seeds=3, valid=Interval(0.6, 0.59, 0.61, 3),
                       test=Interval(0.6, 0.59, 0.61, 3), diff=diff, degenerate=degenerate,
                       uniform_delta=None if position == "none" else uniform)


class _Best:
    number, study, position = 7, "attn", "label"
    metrics = {"micro_f1": 0.65}


class _Baseline:
    metrics = {"micro_f1": 0.60}


def test_verdict_from_the_ablation() -> None:
    rows = [_row("none", None), _row("label", Interval(0.021, 0.012, 0.030, 3)),
            _row("rnn", Interval(0.003, -0.004, 0.010, 3)), _row("embedding", Interval(-0.02, -0.03, -0.01, 3)),
            _row("pooled", Interval(0.0004, -0.002, 0.003, 3), degenerate=True, uniform=0.0),
            _row("conv", Interval(0.001, -0.003, 0.005, 3), uniform=0.001)]
    ablation = Ablation(study="ablation", from_study="attn", rows=rows, evals=[], test_documents=4489)
    text = verdict(_Best(), _Baseline(), Interval(0.05, 0.04, 0.06, 1), ablation, None, "attn")
    assert "Attention helps in the equal-budget ablation `ablation` (3 replicate seeds, 4489 test documents" in text
    assert "`label` attention adds 2.1 points test micro-F1 (95% CI [1.2, 3.0])" in text
    assert "Elsewhere it hurts: `embedding` attention costs 2.0 points (difference -2.0, 95% CI [-3.0, -1.0])" in text
    assert "For `rnn` +0.3 points (95% CI [-0.4, 1.0]) and `conv` +0.1 points (95% CI [-0.3, 0.5]) the interval " \
           "contains 0" in text
    assert "`pooled` attention attends over a single step, so it is an identity" in text
    assert "for `conv` by less than 0.5 points" in text
    assert "+5.0 points for the deep model (95% CI [4.0, 6.0]), so the deep model is worth it here." in text
    assert "\n" not in text


def test_verdict_when_nothing_is_detectable() -> None:
    rows = [_row("none", None), _row("label", Interval(0.004, -0.002, 0.010, 2))]
    ablation = Ablation(study="abl", from_study="attn", rows=rows, evals=[], test_documents=100)
    text = verdict(_Best(), _Baseline(), Interval(-0.01, -0.03, 0.01, 1), ablation, None, "attn")
    assert text.startswith("No attention position beats no attention at the 95% level")
    assert "no detectable difference with 2 seeds" in text
    assert "no detectable difference, so at this budget the deep model is not clearly worth it" in text


def test_verdict_without_ablation_is_honest() -> None:
    pair = WithWithout(source="attn", equal_budget=False, with_value=0.62, without_value=0.60, with_trial=4,
                       without_trial=2, with_position="label", with_eval=None, without_eval=None, trials_with=9,
                       trials_without=3, diff=None)
    text = verdict(_Best(), _Baseline(), Interval(0.05, 0.04, 0.06, 1), None, pair, "attn")
    assert "There is no ablation study" in text and "+2.0 points on validation" in text
    assert "This is not an equal-budget comparison" in text and "(9 with attention, 3 without)" in text
    assert "--study ablation --from-study attn --pruner none" in text
    nothing = verdict(_Best(), _Baseline(), Interval(0.05, 0.04, 0.06, 1), None,
                      WithWithout("attn", False, 0.6, None, 1, None, "rnn", None, None, 4, 0, None), "attn")
    assert "has no complete trial without attention" in nothing
