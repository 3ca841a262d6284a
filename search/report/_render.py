"""The report as markdown (with its PNGs beside it) and as tables on the terminal."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from search.report._ablation import REFERENCE
from search.report._format import (
    markdown_table,
    points,
    points_interval,
    score,
    score_interval,
    text_table,
)
from search.report._plots import PLOT_FILES
from search.report._stats import BOOTSTRAP_SEED

if TYPE_CHECKING:
    from search.report import Report

__all__ = ["render_markdown", "render_terminal", "split_table", "ablation_table"]

_PLOT_TITLES = {
    "history": "Optimisation history (Optuna)",
    "importances": "Parameter importances (Optuna, fANOVA)",
    "positions": "Validation micro-F1 by attention position",
    "per_label": "Per-label test F1: best with vs best without attention",
}


def split_table(report: Report) -> tuple[list[str], list[list[str]]]:
    best, base = report.best, report.baseline
    head = ["model", "threshold", "val micro-F1", "test micro-F1", "test macro-F1", "P@5", "micro ROC-AUC",
            "macro ROC-AUC"]

    def row(name: str, threshold: float | str, val: float | None, m: dict[str, float]) -> list[str]:
        return [name, threshold if isinstance(threshold, str) else f"{threshold:.2f}", score(val),
                score(m["micro_f1"]), score(m["macro_f1"]),
                score(m["precision_at_5"]), score(m["micro_auc"]), score(m["macro_auc"])]

    return head, [
        row(f"best trial {best.number} ({best.position})", best.threshold, best.value, best.metrics),
        *(row(f.name, f.threshold_text, f.valid_micro_f1, f.metrics) for f in report.finals),
        row(f"{base.name} ({base.input})", base.threshold, base.valid_micro_f1, base.metrics),
    ]


def _differences(report: Report) -> list[str]:
    rows = [("Best deep model", report.deep_vs_baseline)] + [(f.name[0].upper() + f.name[1:], f.diff)
                                                              for f in report.finals]
    return [f"{name} minus TF-IDF, test micro-F1: {points_interval(d)} points" for name, d in rows]


def ablation_table(report: Report) -> tuple[list[str], list[list[str]]]:
    ablation = report.ablation
    assert ablation is not None
    head = ["position", "seeds", "val micro-F1 [95% CI]", "test micro-F1 [95% CI]",
            f"Δ test vs {REFERENCE}, points [95% CI]", "learnt − uniform attn, points", "note"]
    rows = []
    for r in ablation.rows:
        note = []
        if r.degenerate:
            note.append("degenerate (1 step)")
        if r.unfinished:
            note.append(f"{r.unfinished} pruned/failed")
        uniform = "-" if r.uniform_delta is None or not math.isfinite(r.uniform_delta) else points(r.uniform_delta)
        diff = "reference" if r.position == REFERENCE else points_interval(r.diff)
        rows.append([r.position, str(r.seeds), score_interval(r.valid), score_interval(r.test), diff, uniform,
                     ", ".join(note)])
    return head, rows


def _pair_table(report: Report) -> tuple[list[str], list[list[str]]]:
    pair = report.pair
    assert pair is not None
    head = ["group", "trials", "best trial", "val micro-F1", "test micro-F1"]
    rows = [
        [f"with attention ({pair.with_position})", str(pair.trials_with), str(pair.with_trial),
         score(pair.with_value), score(pair.with_eval.metrics["micro_f1"]) if pair.with_eval else "-"],
        [f"without ({REFERENCE}, or degenerate)", str(pair.trials_without), str(pair.without_trial),
         score(pair.without_value),
         score(pair.without_eval.metrics["micro_f1"]) if pair.without_eval else "-"],
    ]
    return head, rows


def render_markdown(report: Report) -> str:
    c, ds = report.config, report.data_summary
    lines = [
        f"# Does attention help, and where? Study `{report.study}`",
        "",
        (f"`{report.command}` — {report.created}. Storage `{report.storage}`; data `{c.data}` ({ds}); "
         f"{c.epochs} epochs per trial, max_len {c.max_len}, vocabulary {c.vocab_size}. "
         f"Trials: {report.trial_counts}."),
        "",
        "## Verdict",
        "",
        report.verdict,
        "",
        "## Test split: the best trial and a TF-IDF reference",
        "",
        ("Each model is scored at its own threshold, tuned on the validation split (the best trial's comes from its "
         "trial record; its saved model was reloaded from the artifact store")
        + (f", and reproduces validation micro-F1 {score(report.best.valid_micro_f1)} at that threshold" if
           report.best.valid_micro_f1 is not None else "") + ").",
        "",
        markdown_table(*split_table(report)),
        "",
        *(f"- {line} (paired bootstrap over test documents)." for line in _differences(report)),
        "",
    ]
    if report.finals:
        lines += [("The final models come from `python -m search.finalize`: the ensemble averages the "
                   "probabilities of the trials greedy forward selection picked on the validation split (a trial "
                   "picked twice weighs twice; its validation micro-F1 was the selection's criterion, so it is "
                   "optimistic), at one threshold tuned there, or (its \"per-label thresholds\" row, what its "
                   "export decides with) at that threshold shrunk toward each label's best on validation, by the "
                   "factor whose cross-fitted micro-F1 there is best; the refit trains the best trial's "
                   "configuration and seed on train + valid for its best number of epochs, at the trial's tuned "
                   "threshold; the ensemble refit is the ensemble with each deep member refit so, its picks, "
                   "weights and thresholds kept (no held-out split is left to choose them again). To use one on "
                   f"new text: `python -m search.export --study {report.study} --final "
                   "[ensemble|refit|refit-ensemble] --out DIR`."), ""]
    if report.ablation is not None:
        a = report.ablation
        lines += [
            f"## Ablation: every attention position at the same parameters (study `{a.study}`"
            + (f", parameters from `{a.from_study}`" if a.from_study else "") + ")",
            "",
            markdown_table(*ablation_table(report)),
            "",
            (f"Validation micro-F1 is each trial's objective (best epoch, tuned threshold); test micro-F1 is that "
             f"model on the {a.test_documents} test documents at its tuned threshold. \"learnt − uniform attn\": test "
             "micro-F1 with the learnt attention weights minus with uniform weights (how much the model uses where it "
             "attends)."),
            "",
        ]
    elif report.pair is not None:
        lines += [
            "## Best with versus best without attention (not an equal-budget comparison)",
            "",
            markdown_table(*_pair_table(report)),
            "",
        ]
    lines += ["## Plots", ""]
    for key, title in _PLOT_TITLES.items():
        if key in report.plots:
            lines += [f"### {title}", "", f"![{title}]({PLOT_FILES[key]})", ""]
    lines += [
        "## Method",
        "",
        "- The test split is read only by this report; searches never see it.",
        ("- Intervals over replicate seeds: mean ± Student's t quantile (n − 1 degrees of freedom) × standard error, "
         "95%; none with a single seed."),
        (f"- Differences: paired percentile bootstrap, {report.resamples} resamples, seed {BOOTSTRAP_SEED}. "
         "Each resample draws the test documents with replacement (the same documents for both models) and, in the "
         "ablation, the replicate seeds with replacement (the same seeds for both positions: a replicate trains every "
         "position with the same seed); the statistic is the mean over the drawn seeds of the micro-F1 difference. "
         "1 point = 0.01 micro-F1."),
        (f"- TF-IDF reference: scikit-learn `TfidfVectorizer` (word 1-2 grams, sublinear tf, min_df 2) on the "
         f"{report.baseline.input} of the same training documents, "
         "`OneVsRestClassifier(LogisticRegression(C=10, liblinear))`, threshold tuned on the "
         f"validation split ({report.baseline.seconds:.1f} s)."),
        "- Macro-F1 is the mean of the per-label F1 (0 for a label never true and never predicted); P@5 divides by 5.",
        "",
    ]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    return "\n".join(lines)


def render_terminal(report: Report) -> str:
    parts = [f"report for study '{report.study}' ({report.trial_counts})", "", "test split:",
             text_table(*split_table(report)),
             *_differences(report), ""]
    if report.ablation is not None:
        parts += [f"ablation '{report.ablation.study}':", text_table(*ablation_table(report)), ""]
    elif report.pair is not None:
        parts += ["best with vs best without attention (not equal budget):", text_table(*_pair_table(report)), ""]
    parts += ["verdict: " + report.verdict, ""]
    parts += [f"note: {n}" for n in report.notes]
    parts.append(f"wrote {report.markdown}")
    return "\n".join(parts)
