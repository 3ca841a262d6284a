"""The verdict: one paragraph in plain words, written from the table's numbers (nothing hard-coded)."""
from __future__ import annotations

from collections.abc import Sequence

from search.report._ablation import REFERENCE, Ablation, AblationRow
from search.report._baseline import BaselineResult
from search.report._compare import WithWithout
from search.report._evaluate import TrialEval
from search.report._finals import FinalEval
from search.report._format import ci_points, points, score
from search.report._stats import Interval

__all__ = ["verdict", "UNIFORM_NEGLIGIBLE"]

UNIFORM_NEGLIGIBLE = 0.005  # below half a point, the learnt attention weights barely matter


def _size(value: float) -> str:
    return points(abs(value)).lstrip("+")


def _diff(row: AblationRow) -> Interval:
    d = row.diff
    assert d is not None  # only rows with a difference against the reference are compared
    return d


def _effect(row: AblationRow) -> str:
    d = _diff(row)
    if d.low > 0:
        return f"`{row.position}` attention adds {_size(d.estimate)} points test micro-F1 (95% CI {ci_points(d)})"
    if d.high < 0:
        return (f"`{row.position}` attention costs {_size(d.estimate)} points (difference {points(d.estimate)}, "
                f"95% CI {ci_points(d)})")
    return f"`{row.position}` {points(d.estimate)} points (95% CI {ci_points(d)})"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _ablation_sentences(ablation: Ablation) -> list[str]:
    rows = [r for r in ablation.rows if r.position != REFERENCE and r.diff is not None]
    if not rows:
        return [(f"The ablation study `{ablation.study}` has no position that can be compared with `{REFERENCE}` on "
                 "the test split (see the notes below), so it cannot answer the question.")]
    seeds = max(r.diff.n for r in rows if r.diff is not None)
    scope = (f"in the equal-budget ablation `{ablation.study}` ({seeds} replicate seed{'s' if seeds != 1 else ''}, "
             f"{ablation.test_documents} test documents, every position with the same parameters and epochs)")
    degenerate = [r for r in rows if r.degenerate]
    live = sorted((r for r in rows if not r.degenerate), key=lambda r: -_diff(r).estimate)
    helps = [r for r in live if _diff(r).low > 0]
    hurts = [r for r in live if _diff(r).high < 0]
    unclear = [r for r in live if _diff(r).low <= 0 <= _diff(r).high]
    out = []
    if helps:
        out.append(f"Attention helps {scope}: {_join([_effect(r) for r in helps])} against no attention.")
    else:
        out.append(f"No attention position beats no attention at the 95% level {scope}.")
    if hurts:
        out.append(f"{'Elsewhere it hurts' if helps else 'It hurts'}: {_join([_effect(r) for r in hurts])}.")
    if unclear:
        out.append(f"For {_join([_effect(r) for r in unclear])} the interval contains 0: no detectable difference "
                   f"with {seeds} seed{'s' if seeds != 1 else ''}.")
    for r in degenerate:
        out.append(f"`{r.position}` attention attends over a single step, so it is an identity and cannot add "
                   f"anything; measured: {points(_diff(r).estimate)} points (95% CI {ci_points(_diff(r))}).")
    used = [(r, r.uniform_delta) for r in live if r.uniform_delta is not None]
    if used:
        ignored = [r for r, delta in used if abs(delta) < UNIFORM_NEGLIGIBLE]
        relied = [(r, delta) for r, delta in used if abs(delta) >= UNIFORM_NEGLIGIBLE]
        if relied:
            out.append("Replacing the learnt attention weights by uniform ones changes test micro-F1 by "
                       + _join([f"{points(-delta)} points for `{r.position}`" for r, delta in relied])
                       + " (the model relies on where it attends)"
                       + (f"; for {_join([f'`{r.position}`' for r in ignored])} by less than "
                          f"{_size(UNIFORM_NEGLIGIBLE)} points (where it attends barely matters)." if ignored else "."))
        else:
            out.append(f"Uniform attention weights change test micro-F1 by less than {_size(UNIFORM_NEGLIGIBLE)} "
                       "points at every position: the models barely use where they attend.")
    return out


def _fallback_sentences(pair: WithWithout | None, study: str) -> list[str]:
    fair = ("This is not an equal-budget comparison: the search gave the two groups different numbers of trials "
            f"({pair.trials_with if pair else 0} with attention, {pair.trials_without if pair else 0} without) and "
            f"different hyperparameters; for a fair answer run `python -m search.launch --study ablation "
            f"--from-study {study} --pruner none` and report again.")
    if pair is None or pair.with_value is None or pair.without_value is None:
        missing = "with" if pair is None or pair.with_value is None else "without"
        return [(f"There is no ablation study and study `{study}` has no complete trial {missing} attention, so "
                 "this report cannot say whether attention helps.")]
    out = [(f"There is no ablation study, so this compares the best trial with attention (`{pair.with_position}`, "
            f"trial {pair.with_trial}, validation micro-F1 {score(pair.with_value)}) with the best without "
            f"(trial {pair.without_trial}, {score(pair.without_value)}) within `{study}`: "
            f"{points(pair.with_value - pair.without_value)} points on validation")]
    if pair.diff is not None:
        out[0] += (f", {points(pair.diff.estimate)} points on test (95% CI {ci_points(pair.diff)}, bootstrap over test "
                   "documents).")
    else:
        out[0] += "; the test split cannot be compared because one of the two models was not saved."
    out.append(fair)
    return out


def _final_sentence(finals: Sequence[FinalEval], baseline: BaselineResult) -> str:
    parts = []
    for f in finals:
        d = f.diff
        outcome = ("better than the reference" if d.low > 0 else "worse than the reference" if d.high < 0
                   else "no detectable difference from the reference")
        parts.append(f"the {f.name} scores {score(f.metrics['micro_f1'])} test micro-F1 (macro-F1 "
                     f"{score(f.metrics['macro_f1'])}, the reference's {score(baseline.metrics['macro_f1'])}): "
                     f"{points(d.estimate)} points (95% CI {ci_points(d)}), {outcome}")
    text = "; ".join(parts)
    return f"Of the final models, {text}."


def verdict(best: TrialEval, baseline: BaselineResult, deep_vs_baseline: Interval, ablation: Ablation | None,
            pair: WithWithout | None, study: str, finals: Sequence[FinalEval] = ()) -> str:
    sentences = _ablation_sentences(ablation) if ablation is not None else _fallback_sentences(pair, study)
    d = deep_vs_baseline
    deep = (f"The best deep model (trial {best.number} of `{best.study}`, `{best.position}`) scores "
            f"{score(best.metrics['micro_f1'])} test micro-F1 at its validation-tuned threshold, TF-IDF + logistic "
            f"regression {score(baseline.metrics['micro_f1'])}: {points(d.estimate)} points for the deep model "
            f"(95% CI {ci_points(d)})")
    if d.low > 0:
        deep += ", so the deep model is worth it here."
    elif d.high < 0:
        deep += ", so at this budget the deep model is not worth it."
    else:
        deep += ", no detectable difference, so at this budget the deep model is not clearly worth it."
    tail = [_final_sentence(finals, baseline)] if finals else []
    return " ".join([*sentences, deep, *tail])
