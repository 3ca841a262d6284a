"""The ablation table: per attention position, validation and test micro-F1 over replicate seeds, and
the paired bootstrap of the test micro-F1 difference against ``none``."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from search.model import ATTENTION_POSITIONS
from search.record import TrialRecord
from search.report._evaluate import ModelSource, TrialEval
from search.report._stats import BOOTSTRAP_RESAMPLES, Interval, paired_bootstrap, t_interval
from search.report._store import complete_trials

__all__ = ["AblationRow", "Ablation", "build_ablation", "REFERENCE"]

REFERENCE = "none"


@dataclass
class AblationRow:
    position: str
    seeds: int
    valid: Interval
    test: Interval | None
    diff: Interval | None  # test micro-F1 minus the reference's, paired over documents and seeds
    degenerate: bool
    uniform_delta: float | None  # mean over seeds: test micro-F1 with learnt minus with uniform attention
    unfinished: int = 0  # pruned or failed trials of this position


@dataclass
class Ablation:
    study: str
    from_study: str | None
    rows: list[AblationRow]
    evals: list[TrialEval]
    notes: list[str] = field(default_factory=list)
    test_documents: int = 0
    resamples: int = BOOTSTRAP_RESAMPLES

    def row(self, position: str) -> AblationRow | None:
        return next((r for r in self.rows if r.position == position), None)


def _replicate(trial: Any) -> int:
    """The trial's replicate (its searched ``replicate``); a trial without one is told apart by its seed."""
    seed = TrialRecord.from_trial(trial).seed
    return int(trial.params.get("replicate", trial.number if seed is None else seed))


def build_ablation(study: optuna.Study, dataset: Any, source: ModelSource, *,
                   resamples: int = BOOTSTRAP_RESAMPLES, log: Any = print) -> Ablation:
    notes: list[str] = []
    latest: dict[tuple[str, int], Any] = {}
    for trial in complete_trials(study):  # a (position, replicate) run twice: the later one counts
        latest[(TrialRecord.from_trial(trial).position, _replicate(trial))] = trial
    unfinished: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.PRUNED, TrialState.FAIL)):
        position = TrialRecord.from_trial(trial).position
        unfinished[position] = unfinished.get(position, 0) + 1
    if unfinished:
        notes.append(f"{sum(unfinished.values())} ablation trial(s) were pruned or failed "
                     f"({', '.join(f'{p}: {n}' for p, n in sorted(unfinished.items()))}); an equal-budget ablation "
                     "should run with --pruner none")
    evals: dict[tuple[str, int], TrialEval] = {}
    missing = []
    for (position, replicate), trial in sorted(latest.items(), key=lambda kv: kv[1].number):
        if not source.has_model(trial):
            missing.append(trial.number)
            continue
        log(f"  ablation trial {trial.number}: {position}, replicate {replicate}")
        evals[(position, replicate)] = source.evaluate(study.study_name, trial, dataset, uniform=True,
                                                       replicate=replicate)
    if missing:
        notes.append(f"ablation trial(s) {missing} have no saved model, so no test score (the ablation space saves "
                     "every model; these were run before it did, or with --no-save-models)")
    positions = [p for p in ATTENTION_POSITIONS if any(k[0] == p for k in latest)]
    positions += sorted({k[0] for k in latest} - set(positions))
    rows = []
    for position in positions:
        trials = {r: t for (p, r), t in latest.items() if p == position}
        scored = {r: e for (p, r), e in evals.items() if p == position}
        test = t_interval([e.metrics["micro_f1"] for e in scored.values()]) if scored else None
        diff = None
        if position != REFERENCE:
            pairs = sorted(r for r in scored if (REFERENCE, r) in evals)
            if pairs:
                diff = paired_bootstrap([scored[r].counts for r in pairs],
                                        [evals[(REFERENCE, r)].counts for r in pairs], resamples=resamples)
        deltas = [e.uniform_delta for e in scored.values() if e.uniform_delta is not None]
        degenerate = any(TrialRecord.from_trial(t).degenerate_attention for t in trials.values())
        rows.append(AblationRow(position=position, seeds=len(trials),
                                valid=t_interval([t.value for t in trials.values()]), test=test, diff=diff,
                                degenerate=degenerate,
                                uniform_delta=float(np.mean(deltas)) if deltas else None,
                                unfinished=unfinished.get(position, 0)))
    if REFERENCE not in positions:
        notes.append("the ablation has no complete 'none' trial, so no difference against it")
    return Ablation(study=study.study_name, from_study=study.user_attrs.get("space_context", {}).get("from_study"),
                    rows=rows, evals=list(evals.values()), notes=notes,
                    test_documents=len(dataset.x_test), resamples=resamples)


def has_attention(position: str, degenerate: bool) -> bool:
    """Whether a model has effective attention: a position other than none whose layer is not an
    identity (the seed's ``pooled`` placement attends over one step: degenerate, no attention in effect)."""
    return position != REFERENCE and not degenerate


def best_of(evals: list[TrialEval], with_attention: bool) -> TrialEval | None:
    chosen = [e for e in evals if has_attention(e.position, e.degenerate) == with_attention]
    return max(chosen, key=lambda e: e.value) if chosen else None


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
