"""Putting the report together: open, evaluate, compare, plot, write."""
from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from search.config import RunConfig
from search.errors import StudyConfigError
from search.record import TrialRecord
from search.report._ablation import Ablation, build_ablation
from search.report._baseline import BaselineResult, tfidf_baseline
from search.report._compare import WithWithout, compare_with_without
from search.report._evaluate import ModelSource, TrialEval, load_split_data
from search.report._finals import FinalEval, evaluate_finals
from search.report._stats import BOOTSTRAP_RESAMPLES, Interval, paired_bootstrap
from search.report._store import complete_trials, open_sources, trial_value

__all__ = ["Report", "make_report"]

MARKDOWN_FILE = "report.md"


@dataclass
class Report:
    study: str
    storage: str
    command: str
    created: str
    config: RunConfig
    data_summary: str
    trial_counts: str
    best: TrialEval
    baseline: BaselineResult
    deep_vs_baseline: Interval
    ablation: Ablation | None
    pair: WithWithout | None
    verdict: str
    out: Path
    markdown: Path
    finals: list[FinalEval] = field(default_factory=list)  # search.finalize's final models, on test
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    resamples: int = BOOTSTRAP_RESAMPLES
    seconds: float = 0.0

    def terminal(self) -> str:
        from search.report._render import render_terminal

        return render_terminal(self)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _counts(study: Any) -> str:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return ", ".join(f"{states.count(s)} {s.name.lower()}" for s in TrialState if states.count(s))


def _readable_best(study: Any, source: ModelSource, notes: list[str], log: Callable[[str], None]) -> Any:
    """The best trial, or when its saved model cannot be read, the best trial whose model can.

    The next best stands in (and the notes say so) rather than the report being refused: one damaged or
    lost file should not cost the whole evaluation, and the stand-in's own validation score is what the
    report shows beside it. When no trial's model can be read there is nothing to evaluate: refused.
    A best trial that saved no model at all (a study run with --no-save-models) is refused as before, by
    ``evaluate``.
    """
    best = study.best_trial
    log(f"best trial {best.number}: reloading its model and scoring the test split")
    if not TrialRecord.from_trial(best).model_artifact_id or source.has_model(best):
        return best
    reason = source.problem(best)
    maximize = study.direction == StudyDirection.MAXIMIZE
    others = sorted((t for t in complete_trials(study) if t.number != best.number), key=trial_value,
                    reverse=maximize)
    for trial in others:
        if source.has_model(trial):
            notes.append(f"the best trial #{best.number}'s saved model could not be read ({reason}); the test "
                         f"scores are those of trial #{trial.number}, the best trial whose model could be read")
            log(f"trial {trial.number} stands in for the best trial {best.number}")
            return trial
    raise StudyConfigError(f"the best trial {best.number}'s saved model could not be read ({reason}), nor could "
                           f"any of the {len(others)} other complete trials' models; expected the .keras files "
                           "the workers saved (see --artifacts)", source=f"study '{study.study_name}'")


def make_report(study: str, *, storage: str | None = None, out: str | Path | None = None,
                ablation_study: str | None = None, artifacts: str | None = None,
                resamples: int = BOOTSTRAP_RESAMPLES, log: Callable[[str], None] = _stderr,
                command: str | None = None) -> Report:
    """Evaluate study ``study`` and write ``report.md`` and its PNGs into ``out`` (default ``reports/<study>``).

    ``ablation_study``: the equal-budget ablation to tabulate (default: the study named ``ablation`` when
    the storage has one). ``artifacts``: the artifact folder (default: as the workers chose it).
    Raises :class:`~search.errors.InputError` (nothing written) for an unknown study, a study with no
    complete trial, or a missing SQLite file.
    """
    start = time.perf_counter()
    sources = open_sources(study, storage, ablation_study)
    from search.report._plots import report_plots
    from search.report._render import render_markdown
    from search.report._verdict import verdict
    from storage import artifact_store_for, mask_url

    source = ModelSource(artifact_store_for(sources.url, artifacts), log=log)
    try:
        source.know(sources.study)
        if sources.ablation is not None:
            source.know(sources.ablation)
        log(f"loading data '{sources.config.data}' with its test split")
        dataset = load_split_data(sources.config, sources.study.user_attrs.get("data_fingerprint"))
        notes = list(sources.notes)
        best_trial = _readable_best(sources.study, source, notes, log)
        best = source.evaluate(study, best_trial, dataset, valid=True)
        cache = {(study, best.number): best}
        if best.valid_micro_f1 is not None and abs(best.valid_micro_f1 - best.value) > 1e-3:
            notes.append(f"the reloaded best model scores validation micro-F1 {best.valid_micro_f1:.4f}, the trial "
                         f"recorded {best.value:.4f}")
        log("TF-IDF + logistic regression reference")
        baseline = tfidf_baseline(sources.config, dataset)
        deep_vs_baseline = paired_bootstrap([best.counts], [baseline.counts], resamples=resamples)
        finals = evaluate_finals(sources.study, dataset, source, baseline, resamples=resamples, notes=notes, log=log)
        ablation, a_data = None, dataset
        if sources.ablation is not None:
            a_cfg = sources.ablation_config
            same = a_cfg is not None and sources.ablation.user_attrs.get("data_fingerprint") == \
                sources.study.user_attrs.get("data_fingerprint")
            a_data = dataset if same else load_split_data(a_cfg, sources.ablation.user_attrs.get("data_fingerprint"))
            if not same:
                notes.append(f"the ablation study '{sources.ablation.study_name}' was run on other data or settings "
                             f"than '{study}'; its test scores use its own data")
            log(f"ablation study '{sources.ablation.study_name}': scoring every model on the test split")
            ablation = build_ablation(sources.ablation, a_data, source, resamples=resamples, log=log)
            notes += ablation.notes
            if ablation.from_study and ablation.from_study != study and sources.ablation.study_name != study:
                notes.append(f"the ablation study '{ablation.study}' took its parameters from study "
                             f"'{ablation.from_study}', not '{study}'")
        pair = compare_with_without(sources.study, dataset, source, ablation, cache)
        text = verdict(best, baseline, deep_vs_baseline, ablation, pair, study, finals)
        if source.problems:
            notes.append(f"{len(source.problems)} saved model(s) could not be read and have no test score: "
                         + "; ".join(source.problems))
    finally:
        source.close()

    folder = Path(out) if out is not None else Path("reports") / study
    folder.mkdir(parents=True, exist_ok=True)
    log(f"plots into {folder}")
    plot_data = a_data if pair is not None and pair.equal_budget else dataset  # the pair's own test split
    plots, plot_notes = report_plots(sources.study, ablation, pair, plot_data, folder)
    notes += plot_notes
    sizes = dataset.sizes()
    report = Report(
        study=study, storage=mask_url(sources.url),
        command=command or f"python -m search.report --study {study}",
        created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        config=sources.config,
        data_summary=f"{sizes['train']} train / {sizes['valid']} valid / {sizes['test']} test documents, "
                     f"{dataset.n_labels} labels",
        trial_counts=_counts(sources.study), best=best, baseline=baseline, deep_vs_baseline=deep_vs_baseline,
        ablation=ablation, pair=pair, verdict=text, out=folder, markdown=folder / MARKDOWN_FILE, finals=finals,
        plots=plots,
        notes=notes, resamples=resamples,
    )
    report.markdown.write_text(render_markdown(report), encoding="utf-8")
    report.seconds = time.perf_counter() - start
    return report
