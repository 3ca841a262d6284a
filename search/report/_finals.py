"""The study's final models (``search.finalize``) scored on the test split: the ensemble, the refit and
the ensemble refit, each with its paired bootstrap difference to the TF-IDF reference (imports keras)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from search._final import FinalEnsemble, FinalRefitEnsemble, read_ensemble, read_refit, read_refit_ensemble
from search.errors import StudyConfigError
from search.metrics import evaluate
from search.report._baseline import BaselineResult
from search.report._evaluate import ModelSource, predict_as_trial
from search.report._stats import Counts, Interval, counts, paired_bootstrap

__all__ = ["FinalEval", "evaluate_finals"]


@dataclass
class FinalEval:
    name: str
    kind: str  # "ensemble", "refit" or "refit-ensemble"
    threshold: float
    valid_micro_f1: float | None  # the ensemble's (selected on validation); a refit has none (it trained on it)
    metrics: dict[str, float]
    counts: Counts
    diff: Interval  # test micro-F1 minus the reference's, paired bootstrap over test documents
    label_thresholds: tuple[float, ...] = ()  # what it decided with instead of ``threshold``, when not empty

    @property
    def threshold_text(self) -> str:
        return "per label" if self.label_thresholds else f"{self.threshold:.2f}"


def evaluate_finals(study: optuna.Study, dataset: Any, source: ModelSource, baseline: BaselineResult, *,
                    resamples: int, notes: list[str], log: Callable[[str], None]) -> list[FinalEval]:
    """Score what ``search.finalize`` recorded on ``study``; a final model that cannot be read is left out,
    with a note (as a trial's model is)."""
    finals: list[FinalEval] = []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}

    def scored(name: str, kind: str, prob: np.ndarray, threshold: float, valid: float | None,
               label_thresholds: tuple[float, ...] = ()) -> FinalEval:
        cut = np.asarray(label_thresholds) if label_thresholds else threshold
        c = counts(dataset.y_test, prob, cut)
        return FinalEval(name=name, kind=kind, threshold=threshold, valid_micro_f1=valid,
                         metrics=evaluate(dataset.y_test, prob, cut), counts=c,
                         diff=paired_bootstrap([c], [baseline.counts], resamples=resamples),
                         label_thresholds=label_thresholds)

    def averaged(final: FinalEnsemble | FinalRefitEnsemble, kind: str, valid: float | None,
                 member: Callable[[int], Any]) -> None:
        """Score an average of models (``member(n)``: trial n's model) and the reference's picks: at its
        per-label thresholds where it has them (what it decides with), then at its global threshold."""
        log(f"final: {final.name}, scoring the test split")
        total = np.zeros(dataset.y_test.shape, dtype=np.float64)
        for number, weight in final.weights().items():
            if number not in trials:
                raise StudyConfigError(f"has no trial {number}, a member of its final ensemble; expected "
                                       "python -m search.finalize to be run again", source=f"study "
                                       f"'{study.study_name}'")
            model = member(number)
            total += weight * predict_as_trial(model, dataset.x_test, trials[number]).astype(np.float64)
            del model
        if final.reference_picks:
            total += final.reference_picks * baseline.test_prob
        mean = total / final.size
        if final.label_thresholds:
            finals.append(scored(f"{final.name}, per-label thresholds", kind, mean, final.threshold, None,
                                 final.label_thresholds))
        finals.append(scored(final.name + (", one threshold" if final.label_thresholds else ""), kind, mean,
                             final.threshold, valid))

    ensemble = read_ensemble(study)
    if ensemble is not None:
        try:
            averaged(ensemble, "ensemble", ensemble.valid_micro_f1, lambda n: source.load(study.study_name, trials[n]))
        except StudyConfigError as exc:
            notes.append(f"the final ensemble was not scored: {exc}")
    refit = read_refit(study)
    if refit is not None:
        log(f"final: {refit.name}, scoring the test split")
        model = source.load_artifact(refit.artifact_id, f"the refit of trial {refit.trial}")
        if model is None:
            notes.append(f"the refit model could not be read: {source.problems[-1]}")
        else:
            prob = predict_as_trial(model, dataset.x_test, trials.get(refit.trial)).astype(np.float64)
            finals.append(scored(refit.name, "refit", prob, refit.threshold, None))
            del model
    refit_ensemble = read_refit_ensemble(study)
    if refit_ensemble is not None:
        artifacts = refit_ensemble.artifacts()

        def refit_member(number: int) -> Any:
            model = source.load_artifact(artifacts[number], f"the refit of trial {number}")
            if model is None:
                raise StudyConfigError(f"the refit of its trial {number} could not be read: {source.problems[-1]}",
                                       source=f"study '{study.study_name}'")
            return model

        try:
            averaged(refit_ensemble, "refit-ensemble", None, refit_member)
        except StudyConfigError as exc:
            notes.append(f"the final ensemble refit was not scored: {exc}")
    if ensemble is None and refit is None and refit_ensemble is None:
        notes.append(f"no final models yet: python -m search.finalize --study {study.study_name} builds the ensemble "
                     "of the best trials and the refit on train + valid, and the report then scores them")
    return finals
