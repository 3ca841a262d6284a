"""Exporting a study's model (a trial's, or its final ensemble or refit) into a self-contained folder
(imports keras once the refusals are past)."""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._final import FinalEnsemble, FinalModel, FinalRefit, FinalRefitEnsemble, refit_name
from search._serving._bundle import (
    CARD,
    KERAS,
    MANIFEST,
    TFIDF_LOGREG,
    VOCABULARY,
    Manifest,
    ModelEntry,
    sha256_of,
    write_vocabulary,
)
from search._serving._card import CardFacts, DataFacts, FinalCardFacts, MemberFacts, render_card, render_final_card
from search._serving._linear import REFERENCE_FILE, LinearTextModel
from search._serving._source import (
    StudySource,
    load_study_data,
    open_study_source,
    pick_final,
    pick_trial,
    validation_texts,
)
from search.data import Dataset
from search.errors import InputError, StudyConfigError
from search.record import TrialRecord

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = ["ExportResult", "export_study", "MODEL_FILE"]

MODEL_FILE = "model-0.keras"
# The objective scores a trial without a recorded threshold at 0.5; so does the export.
DEFAULT_THRESHOLD = 0.5


@dataclass
class ExportResult:
    folder: Path
    trial: int | None  # None for a final model
    name: str  # "trial 3", or the final model's name
    recorded_value: float | None  # what the study recorded on validation (none for a refit: it trained on it)
    valid_micro_f1: float  # through the folder, at its global threshold (what the study recorded it at)
    valid_micro_f1_per_label: float | None = None  # through the folder at its per-label thresholds, if any


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("is a file; expected a folder to create", source=f"--out {out}")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError("exists and is not empty; expected a new or empty folder (--force replaces an "
                             "earlier export)", source=f"--out {out}")
        if not (out / MANIFEST).is_file():
            raise InputError(f"is not an earlier export (no {MANIFEST}); --force replaces only an export, expected "
                             "a new or empty folder", source=f"--out {out}")


@dataclass(frozen=True)
class _Download:
    """A Keras model the export copies from the study's artifacts into the folder."""

    file: str
    artifact_id: str
    source: dict[str, Any]
    weight: int = 1
    #: whether the model takes any length: known from the build diagnostics of its trial (or, for a refit,
    #: of the trial it refits: the same parameters)
    any_length: bool = False


def _any_length(trial: FrozenTrial) -> bool:
    from search.model import recorded_any_length

    return recorded_any_length(TrialRecord.from_trial(trial).diagnostics)


def export_study(study: str, out: str | Path, *, storage: str | None = None, trial: int | None = None,
                 final: bool = False, final_model: str | None = None, artifacts: str | None = None,
                 force: bool = False, command: str = "", log: Callable[[str], None] = _stderr) -> ExportResult:
    """Write trial ``trial`` (default: the best) of ``study`` as an export folder ``out``; with ``final``,
    the study's final model instead (``final_model``: ``"ensemble"``, ``"refit"`` or ``"refit-ensemble"``;
    default the ensemble refit where ``search.finalize`` recorded one, else the ensemble, else the refit).

    Raises :class:`~search.errors.InputError` with nothing written for: a missing SQLite file, an unknown
    study, a trial that does not exist or has no saved model, ``final`` on a study without that final
    model, data the study was not run on, an ``out`` folder that is not empty (``force`` replaces an export).
    """
    out = Path(out)
    _check_out(out, force)
    source = open_study_source(study, storage)
    chosen_final = pick_final(source, final_model) if final else None
    chosen = pick_trial(source, trial) if chosen_final is None else None
    log(f"loading data '{source.stored.config.data}' (train and valid)")
    dataset = load_study_data(source)
    texts = validation_texts(source)
    if len(texts) != len(dataset.x_valid):
        raise InputError(f"has {len(texts)} validation documents, the study's cache {len(dataset.x_valid)}; expected "
                         "the same file the study ran on", source=f"dataset '{source.stored.config.data}'")
    by_number = {t.number: t for t in source.study.get_trials(deepcopy=False)}
    reference_weight = 0
    label_thresholds: tuple[float, ...] = ()
    if isinstance(chosen_final, (FinalEnsemble, FinalRefitEnsemble)):
        downloads = [_Download(f"model-{i}.keras", *_member_model(study, chosen_final, by_number[n]), weight,
                               _any_length(by_number[n]))
                     for i, (n, weight) in enumerate(chosen_final.weights().items())]
        reference_weight = chosen_final.reference_picks
        threshold, label_thresholds = chosen_final.threshold, chosen_final.label_thresholds
        # an ensemble refit trained on validation: it has no validation score of its own to check against
        recorded = chosen_final.valid_micro_f1 if isinstance(chosen_final, FinalEnsemble) else None
    elif isinstance(chosen_final, FinalRefit):
        downloads = [_Download(MODEL_FILE, chosen_final.artifact_id,
                               {"study": study, "refit_of_trial": chosen_final.trial, "epochs": chosen_final.epochs},
                               any_length=_any_length(by_number[chosen_final.trial]))]
        threshold, recorded = chosen_final.threshold, None
    else:
        assert chosen is not None
        record = TrialRecord.from_trial(chosen)
        downloads = [_Download(MODEL_FILE, str(record.model_artifact_id), {"study": study, "trial": chosen.number},
                               any_length=_any_length(chosen))]
        threshold = float(record.threshold if record.threshold is not None else DEFAULT_THRESHOLD)
        recorded = float(chosen.value or 0.0)

    made_parent = not out.parent.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        entries = []
        for d in downloads:
            log(f"copying {', '.join(f'{k} {v}' for k, v in d.source.items() if k != 'study')}: its saved model")
            _download_model(source, d.artifact_id, stage / d.file, artifacts)
            entries.append(ModelEntry(d.file, sha256_of(stage / d.file), d.source | {"artifact_id": d.artifact_id},
                                      KERAS, d.weight, d.any_length))
        if reference_weight:
            entries.append(_write_reference(source, dataset, texts, stage / REFERENCE_FILE, reference_weight, log))
        write_vocabulary(stage / VOCABULARY, dataset.vocabulary)
        from search.data._vectorize import tokenizer_settings
        from storage import mask_url

        config = source.stored.config
        about: dict[str, Any] = {"name": study, "space": config.space, "data": config.data,
                                 "data_fingerprint": dataset.fingerprint, "storage": mask_url(source.url)}
        if chosen_final is not None:
            about |= {"final": _FINAL_NAMES[type(chosen_final)],
                      "final_name": chosen_final.name, "value": recorded}
        else:
            assert chosen is not None
            about |= {"trial": chosen.number, "value": chosen.value}
        manifest = Manifest(
            kind="trial" if chosen_final is None else "final", threshold=float(threshold),
            label_names=tuple(dataset.label_names), max_len=dataset.seq_len, vocab_size=len(dataset.vocabulary),
            vocabulary_sha256=sha256_of(stage / VOCABULARY), tokenizer=tokenizer_settings(), models=tuple(entries),
            study=about, command=command or f"python -m search.export --study {study} --out {out}",
            created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), label_thresholds=label_thresholds)
        import json

        (stage / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
        log(f"checking the folder: {len(texts):,} validation documents through its tokeniser and model"
            + ("s" if len(entries) > 1 else ""))
        validation, per_label = _validate(stage, texts, dataset)
        data = DataFacts(data=config.data, data_file_sha256=str(dataset.meta.get("file_sha256", "")),
                         data_fingerprint=dataset.fingerprint, sizes=dataset.sizes(), limit=config.limit)
        versions = _versions()
        if chosen_final is None:
            assert chosen is not None and recorded is not None
            best = max((t for t in by_number.values() if t.value is not None),
                       key=lambda t: t.value if t.value is not None else float("-inf"))
            card = render_card(manifest, CardFacts(
                study=study, space=config.space, storage=mask_url(source.url), trial=chosen.number,
                is_best=best.number == chosen.number, best_trial=best.number,
                n_complete=sum(1 for t in by_number.values() if t.state.name == "COMPLETE"),
                record=TrialRecord.from_trial(chosen), recorded_value=recorded, data=data, validation=validation,
                versions=versions))
        else:
            card = render_final_card(manifest, FinalCardFacts(
                study=study, space=config.space, storage=mask_url(source.url), which=str(about["final"]),
                name=chosen_final.name, members=_members(entries, chosen_final, by_number), recorded_value=recorded,
                data=data, validation=validation, versions=versions, validation_per_label=per_label))
        (stage / CARD).write_text(card, encoding="utf-8")
        _move_into_place(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if made_parent and not out.exists():  # a failed export leaves no folder it made behind
            with contextlib.suppress(OSError):
                out.parent.rmdir()
    if recorded is not None and abs(validation["micro_f1"] - recorded) >= 5e-5:
        what = "the trial recorded" if chosen_final is None else "search.finalize recorded"
        log(f"note: validation micro-F1 through the folder is {validation['micro_f1']:.4f}, {what} {recorded:.4f}")
    number = chosen.number if chosen is not None else None
    name = chosen_final.name if chosen_final is not None else f"trial {number}"
    return ExportResult(out, number, name, recorded, validation["micro_f1"],
                        None if per_label is None else per_label["micro_f1"])


def _write_reference(source: StudySource, dataset: Dataset, texts: list[str], path: Path, weight: int,
                     log: Callable[[str], None]) -> ModelEntry:
    """Fit the TF-IDF reference as search.finalize did (deterministic: the same model) and save it."""
    import numpy as np

    from search.reference import RAW_TEXT, fit_reference

    config = source.stored.config
    log("fitting the TF-IDF + logistic regression reference the ensemble averages in (as search.finalize did)")
    reference = fit_reference(config.data, config.data_settings(), dataset=dataset, keep_model=True)
    if reference.input != RAW_TEXT:  # load_study_data refuses token-id data before an export gets here
        raise StudyConfigError(f"its reference reads {reference.input}; expected raw text",
                               source=f"study '{source.name}'")
    assert reference.vectorizer is not None and reference.classifier is not None  # keep_model
    model = LinearTextModel.from_fitted(reference.vectorizer, reference.classifier)
    model.save(path)
    # The folder's arrays must give the fitted model's probabilities, or the ensemble is not the one selected.
    gap = float(np.abs(LinearTextModel.load(path, model.n_labels).predict_proba(texts) - reference.valid_prob).max())
    if gap > 1e-5:
        raise RuntimeError(f"the exported TF-IDF reference differs from the fitted one by {gap:.2g} on validation")
    return ModelEntry(path.name, sha256_of(path), {"reference": "TF-IDF + logistic regression", "input": RAW_TEXT,
                                                   "valid_micro_f1": reference.valid_micro_f1}, TFIDF_LOGREG, weight)


def _member_model(study: str, final: FinalEnsemble | FinalRefitEnsemble,
                  trial: FrozenTrial) -> tuple[str, dict[str, Any]]:
    """An averaged final model's member: its saved model's artifact id and where it came from (the
    trial's own model, or its refit for an ensemble refit)."""
    if isinstance(final, FinalRefitEnsemble):
        artifact_id, epochs = final.models()[trial.number]
        return artifact_id, {"study": study, "refit_of_trial": trial.number, "epochs": epochs}
    return str(TrialRecord.from_trial(trial).model_artifact_id), {"study": study, "trial": trial.number}


#: What a manifest's ``study.final`` says each final model is (``search.export --final NAME``).
_FINAL_NAMES: dict[type, str] = {FinalEnsemble: "ensemble", FinalRefit: "refit", FinalRefitEnsemble: "refit-ensemble"}


def _members(entries: list[ModelEntry], final: FinalModel, trials: dict[int, Any]) -> list[MemberFacts]:
    members = []
    for entry in entries:
        if entry.kind == TFIDF_LOGREG:
            members.append(MemberFacts(entry.file, entry.weight, "TF-IDF + logistic regression reference",
                                       entry.source.get("valid_micro_f1"), None))
            continue
        number = int(entry.source.get("trial", entry.source.get("refit_of_trial", -1)))
        trial = trials[number]
        if isinstance(final, FinalRefit):
            members.append(MemberFacts(entry.file, entry.weight, final.name, None, TrialRecord.from_trial(trial)))
        elif isinstance(final, FinalRefitEnsemble):
            members.append(MemberFacts(entry.file, entry.weight, refit_name(number, int(entry.source["epochs"])),
                                       None, TrialRecord.from_trial(trial)))
        else:
            members.append(MemberFacts(entry.file, entry.weight, f"trial {number}", trial.value,
                                       TrialRecord.from_trial(trial)))
    return members


def _download_model(source: StudySource, artifact_id: str, path: Path, artifacts: str | None) -> None:
    from optuna.artifacts import download_artifact
    from optuna.artifacts.exceptions import ArtifactNotFound

    from storage import artifact_store_for

    try:
        download_artifact(artifact_store=artifact_store_for(source.url, artifacts), file_path=str(path),
                          artifact_id=artifact_id)
    except (ArtifactNotFound, FileNotFoundError):
        raise InputError(f"model artifact {artifact_id} is not in the artifact folder; expected "
                         "--artifacts DIR to name the folder the workers used", source="--artifacts") from None


def _validate(folder: Path, texts: list[str], dataset: Dataset) -> tuple[dict[str, float], dict[str, float] | None]:
    """The folder as a user gets it, scored on the validation split from raw text at its global threshold
    (what the study recorded) and, where it has them, at its per-label thresholds (what it decides with);
    the token ids must be the study's own, else the export would tokenise differently."""
    import numpy as np

    from search._serving._predictor import load_predictor
    from search.metrics import evaluate

    predictor = load_predictor(folder)
    x_valid, y_valid = dataset.x_valid, dataset.y_valid
    if not np.array_equal(predictor.vectorize(texts), x_valid):
        raise RuntimeError("the exported tokeniser does not reproduce the study's token ids on the validation split")
    prob = predictor.predict_proba(texts)
    per_label = evaluate(y_valid, prob, predictor.thresholds) if predictor.manifest.label_thresholds else None
    return evaluate(y_valid, prob, predictor.threshold), per_label


def _move_into_place(stage: Path, out: Path) -> None:
    """Rename the finished folder into place; an earlier export (``--force``) goes only once it is ready."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.rename(out, old / out.name)
    try:
        os.rename(stage, out)
    except OSError:
        if old is not None:
            os.rename(old / out.name, out)
        raise
    finally:
        if old is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(old)


def _versions() -> dict[str, str]:
    import keras

    from search import __version__

    return {"keras-text-search": __version__, "keras": keras.__version__, "backend": keras.backend.backend()}
