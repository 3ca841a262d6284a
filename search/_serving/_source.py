"""What an export reads from a study: the store, the trial to export, its data (keras-free).

Every refusal here comes before anything is written: a missing SQLite file, an unknown study, a trial
that does not exist or has no saved model, a study without the final model asked for (or one whose
ensemble names a trial without a saved model), data the study was not run on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._final import (
    FINAL_CHOICES,
    FinalEnsemble,
    FinalModel,
    FinalRefitEnsemble,
    read_ensemble,
    read_refit,
    read_refit_ensemble,
)
from search._study import FINGERPRINT_ATTR, StoredStudy, check_data_fingerprint, read_study
from search.errors import StudyConfigError
from search.record import MODEL_ARTIFACT_ID, TrialRecord

__all__ = ["StudySource", "open_study_source", "pick_trial", "pick_final", "load_study_data",
           "validation_texts"]


@dataclass
class StudySource:
    url: str
    storage: Any
    study: optuna.Study
    stored: StoredStudy

    @property
    def name(self) -> str:
        return self.study.study_name


def open_study_source(study_name: str, storage_flag: str | None) -> StudySource:
    from storage import open_existing_storage, resolve_storage_url, storage_source

    url = resolve_storage_url(storage_flag)
    # a reader, like the report: a missing, empty or foreign SQLite file is refused, never created
    storage = open_existing_storage(url, source=storage_source(storage_flag))
    stored = read_study(storage, study_name)
    return StudySource(url, storage, optuna.load_study(study_name=study_name, storage=storage), stored)


def _no_model_reason(record: TrialRecord) -> str:
    if record.model_save_error:
        return f"its model could not be saved ({record.model_save_error})"
    return f"it has no saved model (user attribute {MODEL_ARTIFACT_ID})"


def pick_trial(source: StudySource, number: int | None) -> FrozenTrial:
    """Trial ``number``, else the best trial; refused unless it is complete with a saved model."""
    name = f"study '{source.name}'"
    trials = source.study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    with_model = [t for t in complete if TrialRecord.from_trial(t).model_artifact_id]
    if not with_model:
        saving = "" if source.stored.config.save_models else " (it was run with --no-save-models)"
        raise StudyConfigError(f"has no saved model{saving} among its {len(complete)} complete trial(s); expected "
                               "a study whose workers saved their best models", source=name)
    if number is None:
        trial = max(complete, key=lambda t: t.value if t.value is not None else float("-inf"))
        record = TrialRecord.from_trial(trial)
        if not record.model_artifact_id:
            best_saved = max(with_model, key=lambda t: t.value if t.value is not None else float("-inf"))
            raise StudyConfigError(f"best trial {trial.number}: {_no_model_reason(record)}; expected --trial N "
                                   f"naming a trial with one (the best such is {best_saved.number})", source=name)
        return trial
    by_number = {t.number: t for t in trials}
    if number not in by_number:
        raise StudyConfigError(f"{name} has no trial {number} (trials 0-{len(trials) - 1}); expected a trial "
                               "number of the study", source="--trial")
    trial = by_number[number]
    if trial.state != TrialState.COMPLETE:
        raise StudyConfigError(f"trial {number} of {name} is {trial.state.name.lower()}; expected a complete trial "
                               f"with a saved model (e.g. {with_model[0].number})", source="--trial")
    record = TrialRecord.from_trial(trial)
    if not record.model_artifact_id:
        raise StudyConfigError(f"trial {number} of {name}: {_no_model_reason(record)}; expected a trial with one "
                               f"(e.g. {with_model[0].number})", source="--trial")
    return trial


def pick_final(source: StudySource, which: str | None) -> FinalModel:
    """The study's final model (``which``: one of :data:`~search._final.FINAL_CHOICES`, or None for the
    ensemble refit where there is one, else the ensemble, else the refit), with a saved model for every
    trial it needs; refused otherwise."""
    name = f"study '{source.name}'"
    ensemble, refit = read_ensemble(source.study), read_refit(source.study)
    refit_ensemble = read_refit_ensemble(source.study)
    if ensemble is None and refit is None and refit_ensemble is None:
        raise StudyConfigError("has no final model (an ensemble or refit of its best trials, made by "
                               "search.finalize); expected python -m search.finalize to be run first, or --trial N, or "
                               "no flag for the best trial", source=name)
    if which is not None and which not in FINAL_CHOICES:
        raise StudyConfigError(f"got {which!r}; expected one of {', '.join(FINAL_CHOICES)}", source="--final")
    # unnamed: the one that scored best on test in the one-hour benchmark (BENCHMARKS.md), the ensemble
    # refit, then the ensemble (selected on validation), then the refit
    chosen: FinalModel | None = (refit_ensemble or ensemble or refit if which is None else
                                 {"ensemble": ensemble, "refit": refit, "refit-ensemble": refit_ensemble}[which])
    if chosen is None:
        have = ", ".join(f.name for f in (ensemble, refit, refit_ensemble) if f is not None)
        raise StudyConfigError(f"has no final {which} (search.finalize recorded: {have}); expected --final with what "
                               "it has, or search.finalize run again", source=name)
    if isinstance(chosen, (FinalEnsemble, FinalRefitEnsemble)):
        trials = source.study.get_trials(deepcopy=False)
        by_number = {t.number: t for t in trials}
        for number in chosen.weights():
            trial = by_number.get(number)
            if trial is None or trial.state != TrialState.COMPLETE:
                raise StudyConfigError(f"its ensemble names trial {number}, which is not a complete trial of it; "
                                       "expected python -m search.finalize to be run again", source=name)
            record = TrialRecord.from_trial(trial)
            if isinstance(chosen, FinalEnsemble) and not record.model_artifact_id:
                raise StudyConfigError(f"its ensemble's trial {number}: {_no_model_reason(record)}; expected the "
                                       "saved models search.finalize selected from", source=name)
    return chosen


def load_study_data(source: StudySource) -> Any:
    """The study's dataset (train and valid only: an export never reads the test split), its vocabulary
    with it; refused when the data is not the one the study ran on or holds no text."""
    from search.data import load_dataset, resolve_source

    config = source.stored.config
    kind, _ = resolve_source(config.data)
    if kind == "npz":
        raise StudyConfigError(f"was run on token ids ('{config.data}'), not text: there is no vocabulary to turn "
                               "new text into ids; expected a study on debtags50 or a .csv/.jsonl text file",
                               source=f"study '{source.name}'")
    dataset = load_dataset(config.data, config.data_settings())
    check_data_fingerprint(source.name, source.study.user_attrs.get(FINGERPRINT_ATTR), config.data,
                           dataset.fingerprint)
    if not dataset.vocabulary:
        raise StudyConfigError("its dataset has no vocabulary; expected text data", source=f"study '{source.name}'")
    return dataset


def validation_texts(source: StudySource) -> list[str]:
    """The validation split's raw texts, in the order of the dataset's ``x_valid`` (as the loader reads them)."""
    from search.data import load_texts

    config = source.stored.config
    texts = load_texts(config.data, config.data_settings())
    if texts is None:  # load_study_data refuses token-id data before an export gets here
        raise StudyConfigError(f"was run on token ids ('{config.data}'), not text", source=f"study '{source.name}'")
    return texts["valid"]
