"""``finalize_study``: the ensemble, the refit and the ensemble refit of a finished study, recorded on it
(imports keras)."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from search._final._ensemble import MAX_SIZE, REFERENCE, greedy_selection
from search._final._record import (
    FinalEnsemble,
    FinalRefit,
    FinalRefitEnsemble,
    clear_final,
    read_ensemble,
    read_refit,
    read_refit_ensemble,
    write_final,
)
from search._final._thresholds import FOLDS, shrunk_label_thresholds
from search.config import ENSEMBLE_CANDIDATES
from search.errors import StudyConfigError
from search.record import TrialRecord

if TYPE_CHECKING:
    from search.config import RunConfig
    from search.data import Dataset

__all__ = ["Finalized", "finalize_study"]


@dataclass
class Finalized:
    study: str
    ensemble: FinalEnsemble | None
    refit: FinalRefit | None
    skipped: list[str]
    refit_ensemble: FinalRefitEnsemble | None = None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def finalize_study(study_name: str, *, storage: str | None = None, artifacts: str | None = None,
                   ensemble: bool = True, refit: bool = True, refit_ensemble: bool = True,
                   candidates: int = ENSEMBLE_CANDIDATES,
                   max_size: int = MAX_SIZE, with_reference: bool = True, label_thresholds: bool = True,
                   log: Callable[[str], None] = _stderr) -> Finalized:
    """Select the greedy ensemble of the study's saved top trials on the validation split, refit its
    best configuration on train + valid, and (``refit_ensemble``) refit the ensemble's deep members so
    too; record each on the study (:mod:`search._final._record`) as soon as it is made. The ensemble
    refit refits the ensemble selected now, else the one recorded earlier, and reuses a member's refit
    already made (the best trial's, or one of an earlier ensemble refit). A newly selected ensemble
    that differs from the one an earlier ensemble refit refit makes that record go at once.

    ``with_reference``: the TF-IDF + logistic regression reference is one more candidate of the
    ensemble (fitted on the training split, 30 s on debtags50): its errors are unlike a deep model's, so
    averaging it in can help where another deep trial does not; selection picks it only when it raises
    the validation score.

    ``label_thresholds``: the ensemble also gets per-label thresholds, the global one shrunk toward each
    label's best by the factor with the best cross-fitted micro-F1 on validation
    (:mod:`search._final._thresholds`): one threshold serves the frequent labels, and macro-F1 counts
    the rare ones as much.

    Refused (nothing written) for a missing store or study, a study with no complete trial, (for the
    ensemble) no saved model, or an ensemble refit alone of a study with no ensemble; a refit whose loss
    is not finite is refused after the steps before it were recorded. The test split is never read.
    """
    from search._serving._source import open_study_source
    from search.report._store import complete_trials, trial_value
    from spaces import get_space

    source = open_study_source(study_name, storage)
    study, stored = source.study, source.stored
    config = stored.config
    complete = sorted(complete_trials(study), key=trial_value, reverse=True)
    if not complete:
        raise StudyConfigError("has no complete trial; expected a study search.launch has run",
                               source=f"study '{study_name}'")
    saved = [t for t in complete if TrialRecord.from_trial(t).model_artifact_id][:candidates]
    if refit_ensemble and not ensemble and read_ensemble(study) is None:
        raise StudyConfigError("has no final ensemble to refit; expected search.finalize without --no-ensemble "
                               "(it selects one), or --no-refit-ensemble", source=f"study '{study_name}'")
    if ensemble and not saved:
        raise StudyConfigError("has no saved model among its complete trials (run with --no-save-models?); "
                               "expected saved models for the ensemble, or --no-ensemble",
                               source=f"study '{study_name}'")
    space = get_space(config.space, source=f"study '{study_name}' (its space)")
    dataset = _study_data(study, config)
    from search.report._evaluate import ModelSource, predict_as_trial
    from storage import artifact_store_for

    store = artifact_store_for(source.url, artifacts)
    skipped: list[str] = []
    final_ensemble = None
    if ensemble:
        models = ModelSource(store, log=log)
        probabilities: dict[int, np.ndarray] = {}
        try:
            for trial in saved:
                if not models.has_model(trial):
                    skipped.append(f"trial {trial.number}: {models.problem(trial)}")
                    continue
                model = models.load(study_name, trial)
                probabilities[trial.number] = predict_as_trial(model, dataset.x_valid, trial)
                del model
                log(f"ensemble candidate trial {trial.number}: validation micro-F1 {trial.value:.4f}")
        finally:
            models.close()
        if not probabilities:
            raise StudyConfigError("none of its saved models can be read (" + "; ".join(skipped) + "); expected "
                                   "the .keras files the workers saved (see --artifacts)",
                                   source=f"study '{study_name}'")
        joiners: dict[int, np.ndarray] = {}
        if with_reference:
            from search.reference import fit_reference

            reference = fit_reference(config.data, config.data_settings(), dataset=dataset)
            joiners[REFERENCE] = reference.valid_prob
            log(f"ensemble candidate TF-IDF reference ({reference.input}): validation micro-F1 "
                f"{reference.valid_micro_f1:.4f}")
        selection = greedy_selection(dataset.y_valid, probabilities, max_size=max_size, joiners=joiners)
        every = probabilities | joiners
        mean = np.mean([every[m].astype(np.float64) for m in selection.members], axis=0)
        labels = None
        if label_thresholds and len(dataset.y_valid) >= 2 * FOLDS:
            labels = shrunk_label_thresholds(dataset.y_valid, mean, selection.threshold)
        elif label_thresholds:
            log(f"no per-label thresholds: {len(dataset.y_valid)} validation documents are too few for "
                f"{FOLDS}-fold cross-fitting")
        final_ensemble = FinalEnsemble(members=tuple(m for m in selection.members if m != REFERENCE),
                                       reference_picks=selection.members.count(REFERENCE),
                                       threshold=selection.threshold, valid_micro_f1=selection.valid_micro_f1,
                                       best_single_valid_micro_f1=selection.best_single_valid_micro_f1,
                                       candidates=tuple(probabilities), steps=selection.steps,
                                       label_thresholds=labels.values if labels and labels.shrink < 1 else (),
                                       label_threshold_shrink=labels.shrink if labels else None)
        write_final(study, final_ensemble)
        earlier = read_refit_ensemble(study)
        if earlier is not None and not earlier.refits(final_ensemble):
            # it refit another selection: kept, the report and the export would take it for this one's
            clear_final(study, FinalRefitEnsemble)
            log("the ensemble refit recorded earlier is forgotten: it refit another selection than this one")
        log(f"{final_ensemble.name}: validation micro-F1 {selection.valid_micro_f1:.4f} at threshold "
            f"{selection.threshold:.2f} (best single {selection.best_single_valid_micro_f1:.4f})")
        if labels is not None:
            log(f"per-label thresholds: shrink {labels.shrink:g} toward the global one (1: the global threshold "
                f"alone); cross-fitted on validation, micro-F1 {labels.heldout_micro_f1:.4f} and macro-F1 "
                f"{labels.heldout_macro_f1:.4f} against {labels.heldout_global_micro_f1:.4f} and "
                f"{labels.heldout_global_macro_f1:.4f} at the global threshold")
    final_refit = None
    embedding = _embedding(space, dataset, config) if refit or refit_ensemble else None
    if refit:
        from search._final._refit import refit_best

        final_refit = refit_best(study, complete[0], config=config, space=space, context=stored.context,
                                 dataset=dataset, embedding=embedding, artifact_store=store, log=log)
        write_final(study, final_refit)
        log(f"{final_refit.name}: {final_refit.seconds:.0f} s")
    final_refit_ensemble = None
    if refit_ensemble:
        from search._final._refit import refit_ensemble as refit_members

        chosen = final_ensemble or read_ensemble(study)
        assert chosen is not None  # refused above when there is none to refit
        final_refit_ensemble = refit_members(study, chosen, {t.number: t for t in complete},
                                             done=_refits_made(study, final_refit), config=config, space=space,
                                             context=stored.context, dataset=dataset, embedding=embedding,
                                             artifact_store=store, log=log)
        write_final(study, final_refit_ensemble)
        log(f"{final_refit_ensemble.name}: {final_refit_ensemble.seconds:.0f} s of training")
    return Finalized(study=study_name, ensemble=final_ensemble, refit=final_refit, skipped=skipped,
                     refit_ensemble=final_refit_ensemble)


def _refits_made(study: Any, refit: FinalRefit | None) -> dict[int, tuple[str, int]]:
    """The refit models the study already has, by trial: (artifact id, epochs), from its earlier ensemble
    refit and its refit (made now, else recorded earlier), the refit's winning where both have a trial."""
    made: dict[int, tuple[str, int]] = {}
    earlier = read_refit_ensemble(study)
    if earlier is not None:
        made |= earlier.models()
    best = refit or read_refit(study)
    if best is not None:
        made[best.trial] = (best.artifact_id, best.epochs)
    return made


def _embedding(space: Any, dataset: Dataset, config: RunConfig) -> np.ndarray | None:
    """The word2vec matrix a refit builds with (a keras-tuner space brings its own embedding)."""
    from search.data import embedding_matrix_for
    from search.kerastuner import HyperModelSpace

    return None if isinstance(space, HyperModelSpace) else embedding_matrix_for(dataset, config.embedding_dim)


def _study_data(study: Any, config: RunConfig) -> Dataset:
    """The study's train and valid splits; refused when the data is not what the study ran on."""
    from search._study import FINGERPRINT_ATTR, check_data_fingerprint
    from search.data import load_dataset

    dataset = load_dataset(config.data, config.data_settings())
    check_data_fingerprint(study.study_name, study.user_attrs.get(FINGERPRINT_ATTR), config.data, dataset.fingerprint)
    return dataset
