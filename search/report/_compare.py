"""Best with versus best without attention: the per-label plot's pair, and the verdict's fallback when
there is no ablation study (then it is NOT an equal-budget comparison, and the report says so)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from search.record import TrialRecord
from search.report._ablation import Ablation, best_of, has_attention
from search.report._evaluate import ModelSource, TrialEval
from search.report._stats import Interval, paired_bootstrap
from search.report._store import complete_trials, trial_value

__all__ = ["WithWithout", "compare_with_without"]


@dataclass
class WithWithout:
    source: str  # study the pair comes from
    equal_budget: bool
    with_value: float | None  # best validation micro-F1 with attention
    without_value: float | None
    with_trial: int | None
    without_trial: int | None
    with_position: str | None
    with_eval: TrialEval | None
    without_eval: TrialEval | None
    trials_with: int
    trials_without: int
    diff: Interval | None  # test micro-F1 difference, bootstrap over test documents (one model each)


def compare_with_without(study: optuna.Study, dataset: Any, source: ModelSource, ablation: Ablation | None,
                         cache: dict[tuple[str, int], TrialEval]) -> WithWithout:
    if ablation is not None:
        w, wo = best_of(ablation.evals, True), best_of(ablation.evals, False)
        diff = paired_bootstrap([w.counts], [wo.counts]) if w and wo else None
        n_with = sum(r.seeds for r in ablation.rows if has_attention(r.position, r.degenerate))
        n_without = sum(r.seeds for r in ablation.rows if not has_attention(r.position, r.degenerate))
        return WithWithout(ablation.study, True, w.value if w else None, wo.value if wo else None,
                           w.number if w else None, wo.number if wo else None, w.position if w else None,
                           w, wo, n_with, n_without, diff)
    trials = complete_trials(study)
    records = {t.number: TrialRecord.from_trial(t) for t in trials}
    positions = {n: r.position for n, r in records.items()}
    # a degenerate placement (pooled: attention over one step) is no attention in effect: never "with"
    effective = {n: has_attention(r.position, r.degenerate_attention) for n, r in records.items()}
    with_ = [t for t in trials if effective[t.number]]
    without = [t for t in trials if not effective[t.number]]
    best_with = max(with_, key=trial_value) if with_ else None
    best_without = max(without, key=trial_value) if without else None

    def scored(trial: Any) -> TrialEval | None:
        # The best model of each group; when it was not saved, the best saved one cannot stand in for it.
        if trial is None or not source.has_model(trial):
            return None
        key = (study.study_name, trial.number)
        if key not in cache:
            cache[key] = source.evaluate(study.study_name, trial, dataset)
        return cache[key]

    w, wo = scored(best_with), scored(best_without)
    diff = paired_bootstrap([w.counts], [wo.counts]) if w and wo else None
    return WithWithout(study.study_name, False, best_with.value if best_with else None,
                       best_without.value if best_without else None,
                       best_with.number if best_with else None, best_without.number if best_without else None,
                       positions[best_with.number] if best_with else None, w, wo, len(with_), len(without), diff)
