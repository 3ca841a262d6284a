"""Exporting a study's model into a self-contained folder (imports keras once the refusals are past)."""
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

from search._serving._bundle import (
    CARD,
    MANIFEST,
    VOCABULARY,
    Manifest,
    ModelEntry,
    sha256_of,
    write_vocabulary,
)
from search._serving._card import CardFacts, render_card
from search._serving._source import (
    StudySource,
    load_study_data,
    open_study_source,
    pick_trial,
    refuse_final,
    validation_texts,
)
from search.data import Dataset
from search.errors import InputError
from search.record import TrialRecord

__all__ = ["ExportResult", "export_study", "MODEL_FILE"]

MODEL_FILE = "model-0.keras"
# The objective scores a trial without a recorded threshold at 0.5; so does the export.
DEFAULT_THRESHOLD = 0.5


@dataclass
class ExportResult:
    folder: Path
    trial: int
    recorded_value: float
    valid_micro_f1: float


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


def export_study(study: str, out: str | Path, *, storage: str | None = None, trial: int | None = None,
                 final: bool = False, artifacts: str | None = None, force: bool = False, command: str = "",
                 log: Callable[[str], None] = _stderr) -> ExportResult:
    """Write trial ``trial`` (default: the best) of ``study`` as an export folder ``out``.

    Raises :class:`~search.errors.InputError` with nothing written for: a missing SQLite file, an unknown
    study, a trial that does not exist or has no saved model, ``final`` on a study without a final model,
    data the study was not run on, an ``out`` folder that is not empty (``force`` replaces an export).
    """
    out = Path(out)
    _check_out(out, force)
    source = open_study_source(study, storage)
    if final:
        refuse_final(source)
    chosen = pick_trial(source, trial)
    record = TrialRecord.from_trial(chosen)
    log(f"loading data '{source.stored.config.data}' (train and valid)")
    dataset = load_study_data(source)
    texts = validation_texts(source)
    if len(texts) != len(dataset.x_valid):
        raise InputError(f"has {len(texts)} validation documents, the study's cache {len(dataset.x_valid)}; expected "
                         "the same file the study ran on", source=f"dataset '{source.stored.config.data}'")
    threshold = float(record.threshold if record.threshold is not None else DEFAULT_THRESHOLD)

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        log(f"trial {chosen.number}: copying its saved model")
        _download_model(source, record, stage / MODEL_FILE, artifacts)
        write_vocabulary(stage / VOCABULARY, dataset.vocabulary)
        from search.data._vectorize import tokenizer_settings
        from storage import mask_url

        manifest = Manifest(
            kind="trial", threshold=threshold, label_names=tuple(dataset.label_names), max_len=dataset.seq_len,
            vocab_size=len(dataset.vocabulary), vocabulary_sha256=sha256_of(stage / VOCABULARY),
            tokenizer=tokenizer_settings(),
            models=(ModelEntry(MODEL_FILE, sha256_of(stage / MODEL_FILE),
                               {"study": study, "trial": chosen.number, "artifact_id": record.model_artifact_id}),),
            study={"name": study, "space": source.stored.config.space, "trial": chosen.number,
                   "value": chosen.value, "data": source.stored.config.data,
                   "data_fingerprint": dataset.fingerprint, "storage": mask_url(source.url)},
            command=command or f"python -m search.export --study {study} --out {out}",
            created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
        import json

        (stage / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
        log(f"checking the folder: {len(texts):,} validation documents through its tokeniser and model")
        validation = _validate(stage, texts, dataset, threshold)
        best = max((t for t in source.study.get_trials(deepcopy=False) if t.value is not None),
                   key=lambda t: t.value if t.value is not None else float("-inf"))
        facts = CardFacts(
            study=study, space=source.stored.config.space, storage=mask_url(source.url), trial=chosen.number,
            is_best=best.number == chosen.number, best_trial=best.number,
            n_complete=sum(1 for t in source.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"),
            record=record, recorded_value=float(chosen.value or 0.0), data=source.stored.config.data,
            data_file_sha256=str(dataset.meta.get("file_sha256", "")), data_fingerprint=dataset.fingerprint,
            sizes=dataset.sizes(), limit=source.stored.config.limit, validation=validation,
            versions=_versions())
        (stage / CARD).write_text(render_card(manifest, facts), encoding="utf-8")
        _move_into_place(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    if abs(validation["micro_f1"] - facts.recorded_value) >= 5e-5:
        log(f"note: validation micro-F1 through the folder is {validation['micro_f1']:.4f}, the trial recorded "
            f"{facts.recorded_value:.4f}")
    return ExportResult(out, chosen.number, facts.recorded_value, validation["micro_f1"])


def _download_model(source: StudySource, record: TrialRecord, path: Path, artifacts: str | None) -> None:
    from optuna.artifacts import download_artifact
    from optuna.artifacts.exceptions import ArtifactNotFound

    from storage import artifact_store_for

    try:
        download_artifact(artifact_store=artifact_store_for(source.url, artifacts), file_path=str(path),
                          artifact_id=str(record.model_artifact_id))
    except (ArtifactNotFound, FileNotFoundError):
        raise InputError(f"model artifact {record.model_artifact_id} is not in the artifact folder; expected "
                         "--artifacts DIR to name the folder the workers used", source="--artifacts") from None


def _validate(folder: Path, texts: list[str], dataset: Dataset, threshold: float) -> dict[str, float]:
    """The folder as a user gets it, scored on the validation split from raw text; the token ids must be
    the study's own, else the export would tokenise differently from training."""
    import numpy as np

    from search._serving._predictor import load_predictor
    from search.metrics import evaluate

    predictor = load_predictor(folder)
    x_valid, y_valid = dataset.x_valid, dataset.y_valid
    if not np.array_equal(predictor.vectorize(texts), x_valid):
        raise RuntimeError("the exported tokeniser does not reproduce the study's token ids on the validation split")
    return evaluate(y_valid, predictor.predict_proba(texts), threshold)


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
