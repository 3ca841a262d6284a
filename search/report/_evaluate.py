"""Rebuild trials from their saved ``.keras`` artifacts and score them on the test split (imports keras)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from search.config import PREDICT_BATCH
from search.errors import StudyConfigError
from search.metrics import evaluate, micro_f1, per_label_f1
from search.record import MODEL_ARTIFACT_ID, TrialRecord
from search.report._stats import Counts, counts
from search.report._store import trial_value

__all__ = ["TrialEval", "ModelSource", "load_split_data"]

# The objective records a tuned threshold for every finished trial; one without it is scored at 0.5.
DEFAULT_THRESHOLD = 0.5


@dataclass
class TrialEval:
    """One trial's saved model scored on the test split at its validation-tuned threshold."""

    study: str
    number: int
    position: str
    value: float  # the trial's objective: best tuned validation micro-F1
    threshold: float
    test_prob: np.ndarray
    metrics: dict[str, float]
    counts: Counts
    degenerate: bool
    replicate: int | None = None
    valid_micro_f1: float | None = None  # recomputed from the reloaded model (a consistency check)
    uniform_delta: float | None = None  # test micro-F1 with learnt minus with uniform attention
    per_label: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def label(self) -> str:
        return f"{self.study} #{self.number}"


def load_split_data(config: Any, expected_fingerprint: str | None) -> Any:
    """The study's dataset with its test split; refused when it is not the data the study was run on."""
    from search.data import load_dataset

    dataset = load_dataset(config.data, config.data_settings(), include_test=True)
    if expected_fingerprint and dataset.fingerprint != expected_fingerprint:
        raise StudyConfigError(
            f"was run on data with fingerprint {expected_fingerprint}, but '{config.data}' with its settings now "
            f"gives {dataset.fingerprint}; expected the same dataset file", source=f"study '{config.study}'")
    if dataset.x_test is None or len(dataset.x_test) == 0:
        raise StudyConfigError("has no test split", source=f"dataset '{config.data}'")
    return dataset


class ModelSource:
    """Downloads trial models from the artifact store into a private temporary folder."""

    def __init__(self, artifact_store: Any) -> None:
        self.artifact_store = artifact_store
        self._tmp = tempfile.TemporaryDirectory(prefix="search-report-")

    def close(self) -> None:
        self._tmp.cleanup()

    @staticmethod
    def has_model(trial: FrozenTrial) -> bool:
        return bool(TrialRecord.from_trial(trial).model_artifact_id)

    def load(self, study_name: str, trial: FrozenTrial) -> Any:
        from optuna.artifacts import download_artifact
        from optuna.artifacts.exceptions import ArtifactNotFound

        from search.model import load_model

        artifact = TrialRecord.from_trial(trial).model_artifact_id
        if not artifact:
            raise StudyConfigError(f"trial {trial.number} has no saved model (user attribute {MODEL_ARTIFACT_ID}); "
                                   "expected a study run without --no-save-models", source=f"study '{study_name}'")
        path = Path(self._tmp.name) / f"{study_name}-{trial.number}.keras"
        try:
            download_artifact(artifact_store=self.artifact_store, file_path=str(path), artifact_id=artifact)
        except (ArtifactNotFound, FileNotFoundError):
            raise StudyConfigError(f"trial {trial.number}: model artifact {artifact} is not in the artifact "
                                   "folder; expected --artifacts DIR to name the folder the workers used",
                                   source=f"study '{study_name}'") from None
        try:
            return load_model(path)
        finally:
            path.unlink(missing_ok=True)

    def evaluate(self, study_name: str, trial: FrozenTrial, dataset: Any, *, valid: bool = False,
                 uniform: bool = False, replicate: int | None = None) -> TrialEval:
        record = TrialRecord.from_trial(trial)
        model = self.load(study_name, trial)
        try:
            threshold = float(record.threshold if record.threshold is not None else DEFAULT_THRESHOLD)
            prob = np.asarray(model.predict(dataset.x_test, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)
            valid_f1 = None
            if valid:
                valid_prob = model.predict(dataset.x_valid, batch_size=PREDICT_BATCH, verbose=0)
                valid_f1 = micro_f1(dataset.y_valid, valid_prob, threshold)
            delta = None
            if uniform and (record.diagnostics or {}).get("attention_layers"):
                from search.model import uniform_attention_delta

                delta = float(uniform_attention_delta(model, dataset.x_test, dataset.y_test, threshold,
                                                      batch_size=PREDICT_BATCH)["delta"])
        finally:
            del model  # no keras.backend.clear_session(): its gc.collect() costs more than the model it frees
        return TrialEval(
            study=study_name, number=trial.number, position=record.position, value=float(trial_value(trial)),
            threshold=threshold, test_prob=prob, metrics=evaluate(dataset.y_test, prob, threshold),
            counts=counts(dataset.y_test, prob, threshold), degenerate=record.degenerate_attention,
            replicate=replicate, valid_micro_f1=valid_f1, uniform_delta=delta,
            per_label=per_label_f1(dataset.y_test, prob, threshold),
        )
