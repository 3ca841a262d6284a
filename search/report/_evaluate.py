"""Rebuild trials from their saved ``.keras`` artifacts and score them on the test split (imports keras)."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from search._study import check_data_fingerprint
from search.config import PREDICT_BATCH
from search.errors import InputError, StudyConfigError
from search.metrics import evaluate, micro_f1, per_label_f1
from search.record import MODEL_ARTIFACT_ID, TrialRecord
from search.report._stats import Counts, counts
from search.report._store import trial_value

__all__ = ["TrialEval", "ModelSource", "load_split_data", "predict_as_trial"]

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
    check_data_fingerprint(config.study, expected_fingerprint, config.data, dataset.fingerprint)
    if dataset.x_test is None or len(dataset.x_test) == 0:
        raise StudyConfigError("has no test split", source=f"dataset '{config.data}'")
    return dataset


def predict_as_trial(model: Any, x: np.ndarray, trial: FrozenTrial | None) -> np.ndarray:
    """``model``'s probabilities for ``x``, predicted as the validation passes of ``trial`` (whose model it
    is, or whose configuration it refits) were: in batches of similar length where the trial's build
    diagnostics say the model takes any length (the same numbers, fewer padded steps), else padded, as
    for a model of no trial in the study (``None``). Everything that reads a trial's model back (the
    report, the final models' scoring, the ensemble's selection) predicts through here."""
    from search.model import predict_probabilities, recorded_any_length

    cut = trial is not None and recorded_any_length(TrialRecord.from_trial(trial).diagnostics)
    return predict_probabilities(model, x, PREDICT_BATCH, any_length=cut)


class ModelSource:
    """Downloads trial models from the artifact store into a private temporary folder.

    A model that is missing from the artifact folder or cannot be read is not fatal: the trial is left
    out of the test scores, and :attr:`problems` says which trial and why (the report prints it and keeps
    it in its notes). Whether a trial's model can be read is known only by reading it, so
    :meth:`has_model` reads it and keeps it for the :meth:`evaluate` that follows.
    """

    def __init__(self, artifact_store: Any, log: Callable[[str], None] | None = None) -> None:
        self.artifact_store = artifact_store
        self.problems: list[str] = []
        self._log = log
        self._tmp = tempfile.TemporaryDirectory(prefix="search-report-")
        self._unreadable: dict[str, str] = {}  # artifact id -> why its model could not be read
        self._held: tuple[str, Any] | None = None  # the model has_model read, until evaluate takes it
        self._studies: dict[str, str] = {}  # artifact id -> study name, for the messages

    def close(self) -> None:
        self._held = None
        self._tmp.cleanup()

    def know(self, study: Any) -> None:
        """Remember which study each saved model belongs to, so a problem names the study too."""
        for trial in study.get_trials(deepcopy=False):
            artifact = TrialRecord.from_trial(trial).model_artifact_id
            if artifact:
                self._studies[artifact] = study.study_name

    def has_model(self, trial: FrozenTrial) -> bool:
        """Whether the trial saved a model and it can be read."""
        artifact = TrialRecord.from_trial(trial).model_artifact_id
        if not artifact:
            return False
        return self._fetch(trial, artifact) is not None

    def problem(self, trial: FrozenTrial) -> str | None:
        """Why the trial's saved model could not be read (None: it could, or it was not tried)."""
        artifact = TrialRecord.from_trial(trial).model_artifact_id
        return self._unreadable.get(artifact) if artifact else None

    def load(self, study_name: str, trial: FrozenTrial) -> Any:
        artifact = TrialRecord.from_trial(trial).model_artifact_id
        if not artifact:
            raise StudyConfigError(f"trial {trial.number} has no saved model (user attribute {MODEL_ARTIFACT_ID}); "
                                   "expected a study run without --no-save-models", source=f"study '{study_name}'")
        self._studies.setdefault(artifact, study_name)
        model = self._fetch(trial, artifact)
        if model is None:
            raise StudyConfigError(f"trial {trial.number}: {self._unreadable[artifact]}",
                                   source=f"study '{study_name}'")
        self._held = None  # the caller owns it now (and frees it)
        return model

    def load_artifact(self, artifact: str, label: str) -> Any | None:
        """A model saved as an artifact of the study itself (a final model), or None when it cannot be
        read (:attr:`problems` says why, under ``label``)."""
        try:
            return self._read(label.replace(" ", "-"), artifact)
        except InputError as exc:
            self.problems.append(f"{label}: {exc.detail}")
            if self._log is not None:
                self._log(f"  {label}: saved model could not be read: {exc.detail}")
            return None

    def _fetch(self, trial: FrozenTrial, artifact: str) -> Any | None:
        if artifact in self._unreadable:
            return None
        if self._held is not None and self._held[0] == artifact:
            return self._held[1]
        self._held = None
        try:
            model = self._read(f"trial-{trial.number}", artifact)
        except InputError as exc:
            self._unreadable[artifact] = exc.detail
            study = self._studies.get(artifact)
            label = f"study '{study}' trial {trial.number}" if study else f"trial {trial.number}"
            self.problems.append(f"{label}: {exc.detail}")
            if self._log is not None:
                self._log(f"  {label}: saved model could not be read, left out of the test scores: {exc.detail}")
            return None
        self._held = (artifact, model)
        return model

    def _read(self, stem: str, artifact: str) -> Any:
        from optuna.artifacts import download_artifact
        from optuna.artifacts.exceptions import ArtifactNotFound

        from search.model import load_model

        path = Path(self._tmp.name) / f"{stem}-{artifact}.keras"
        try:
            download_artifact(artifact_store=self.artifact_store, file_path=str(path), artifact_id=artifact)
        except (ArtifactNotFound, FileNotFoundError):
            raise InputError(f"model artifact {artifact} is not in the artifact folder; expected --artifacts DIR "
                             "to name the folder the workers used") from None
        except OSError as exc:
            raise InputError(f"model artifact {artifact} cannot be copied ({exc.strerror or exc}); expected a "
                             "readable artifact folder") from None
        try:
            return load_model(path)
        except InputError as exc:  # names our temporary copy: say which artifact instead
            raise InputError(f"model artifact {artifact} {exc.detail}") from None
        finally:
            path.unlink(missing_ok=True)

    def evaluate(self, study_name: str, trial: FrozenTrial, dataset: Any, *, valid: bool = False,
                 uniform: bool = False, replicate: int | None = None) -> TrialEval:
        record = TrialRecord.from_trial(trial)
        model = self.load(study_name, trial)
        try:
            threshold = float(record.threshold if record.threshold is not None else DEFAULT_THRESHOLD)
            prob = predict_as_trial(model, dataset.x_test, trial)
            valid_f1 = None
            if valid:
                valid_f1 = micro_f1(dataset.y_valid, predict_as_trial(model, dataset.x_valid, trial), threshold)
            delta = None
            if uniform and (record.diagnostics or {}).get("attention_layers"):
                from search.model import recorded_any_length, uniform_attention_delta

                delta = float(uniform_attention_delta(model, dataset.x_test, dataset.y_test, threshold,
                                                      batch_size=PREDICT_BATCH, learnt=prob,
                                                      any_length=recorded_any_length(record.diagnostics))["delta"])
        finally:
            del model  # no keras.backend.clear_session(): its gc.collect() costs more than the model it frees
        return TrialEval(
            study=study_name, number=trial.number, position=record.position, value=float(trial_value(trial)),
            threshold=threshold, test_prob=prob, metrics=evaluate(dataset.y_test, prob, threshold),
            counts=counts(dataset.y_test, prob, threshold), degenerate=record.degenerate_attention,
            replicate=replicate, valid_micro_f1=valid_f1, uniform_delta=delta,
            per_label=per_label_f1(dataset.y_test, prob, threshold),
        )
