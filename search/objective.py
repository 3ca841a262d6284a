"""The trial: suggest -> build -> fit -> micro-F1 on the whole validation split each epoch -> prune.

Imported only by workers (it imports keras); the launcher never loads it.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import keras
import numpy as np
import optuna
from optuna_integration import KerasPruningCallback

from search.config import RunConfig
from search.data import Dataset
from search.errors import ModelConfigError, TrialFailure
from search.metrics import micro_f1, tune_threshold
from search.model import InputShapes, build_model
from search.runtime import environment_record, is_out_of_memory, seed_everything
from spaces import SearchSpace

__all__ = ["Objective", "ValidationF1", "NaNGuard", "MONITOR", "TrialResult"]

MONITOR = "val_micro_f1_tuned"  # what is reported to the pruner and maximised
PREDICT_BATCH = 512


class NaNGuard(keras.callbacks.Callback):
    """Fail the trial, with its reason, as soon as the training loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrialFailure(f"NaN loss at epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch


class ValidationF1(keras.callbacks.Callback):
    """After every epoch: predictions for the WHOLE validation split, micro-F1 at 0.5 and at the tuned
    global threshold, validation loss; written into ``logs`` for the callbacks after it (the pruner).

    Keeps the weights of the best epoch (by tuned micro-F1) so the saved model is the one scored.
    """

    def __init__(self, x_valid: np.ndarray, y_valid: np.ndarray, on_epoch: Callable[[int, dict], None] | None = None
                 ) -> None:
        super().__init__()
        self.x_valid, self.y_valid = x_valid, y_valid
        self.on_epoch = on_epoch
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.best_weights: list[np.ndarray] | None = None
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        train_seconds = time.perf_counter() - self._t0
        prob = np.asarray(self.model.predict(self.x_valid, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)
        if not np.isfinite(prob).all():
            raise TrialFailure(f"NaN predictions at epoch {epoch + 1}")
        threshold, tuned = tune_threshold(self.y_valid, prob)
        at_half = micro_f1(self.y_valid, prob, 0.5)
        eps = 1e-7
        p = np.clip(prob, eps, 1 - eps)
        val_loss = float(-np.mean(self.y_valid * np.log(p) + (1 - self.y_valid) * np.log(1 - p)))
        row = {"epoch": epoch + 1, "loss": float(logs.get("loss", float("nan"))), "val_loss": val_loss,
               "val_micro_f1": float(at_half), MONITOR: float(tuned), "threshold": float(threshold),
               "train_seconds": round(train_seconds, 3),
               "seconds": round(time.perf_counter() - self._t0, 3)}
        logs.update({"val_loss": val_loss, "val_micro_f1": row["val_micro_f1"], MONITOR: row[MONITOR]})
        self.history.append(row)
        if self.best is None or row[MONITOR] > self.best[MONITOR]:
            self.best = row
            self.best_weights = self.model.get_weights()
        if self.on_epoch:
            self.on_epoch(epoch, row)


@dataclass
class TrialResult:
    value: float
    history: list[dict[str, float]] = field(default_factory=list)


class Objective:
    """Callable for ``study.optimize``. Every failure is recorded on the trial and raised as
    :class:`TrialFailure` (the worker's ``catch``), so one bad trial never stops the worker."""

    def __init__(self, config: RunConfig, space: SearchSpace, context: Mapping[str, Any], dataset: Dataset,
                 embedding_matrix: np.ndarray | None, artifact_store: Any | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.config, self.space, self.context = config, space, context
        self.dataset, self.embedding_matrix = dataset, embedding_matrix
        self.artifact_store = artifact_store
        self.log = log
        self.environment = environment_record()
        self.shapes = InputShapes(seq_len=dataset.seq_len, vocab_size=dataset.vocab_size, n_labels=dataset.n_labels,
                                  embedding_dim=(embedding_matrix.shape[1] if embedding_matrix is not None
                                                 else config.embedding_dim),
                                  embedding_matrix=embedding_matrix)

    def trial_seed(self, trial: optuna.Trial) -> int:
        seed_fn = getattr(self.space, "trial_seed", None)
        return int(seed_fn(trial, self.config.seed)) if seed_fn else self.config.seed + trial.number

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial, self.context)
        seed = self.trial_seed(trial)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("worker", self.environment)
        trial.set_user_attr("fixed_params", {k: v for k, v in _jsonable(params).items() if k not in trial.params})
        try:
            result = self.run(trial, params, seed)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned_reason", str(exc) or "pruned")
            self.log(f"trial {trial.number} pruned: {exc}")
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("failure_reason", "interrupted (Ctrl-C or SIGTERM); the study can be resumed")
            raise
        except TrialFailure as exc:
            trial.set_user_attr("failure_reason", str(exc))
            self.log(f"trial {trial.number} failed: {exc}")
            raise
        except Exception as exc:  # any other error fails this trial only, with its reason
            reason = f"out of memory: {exc}" if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
            reason = reason.splitlines()[0][:500]
            trial.set_user_attr("failure_reason", reason)
            self.log(f"trial {trial.number} failed: {reason}")
            raise TrialFailure(reason) from exc
        return result.value

    def run(self, trial: optuna.Trial | None, params: Mapping[str, Any], seed: int) -> TrialResult:
        """Build and train one model; ``trial=None`` replays without reporting or pruning."""
        seed_everything(seed)
        keras.backend.clear_session()
        # --- issue 7 hook (search.kerastuner): a space with its own ``build(params, shapes, trial)`` (a
        # keras-tuner HyperModel) builds the model; what it returns may bring its own ``fit``.
        builder = getattr(self.space, "build", None)
        try:
            built = (builder(params, self.shapes, trial) if builder is not None
                     else build_model(params, self.shapes, memory_budget_bytes=self.config.memory_budget))
        except ModelConfigError as exc:
            raise TrialFailure(f"refused before training: {exc}") from None
        fit = getattr(built, "fit", None) or built.model.fit
        # --- end of issue 7 hook ---
        model, resolved = built.model, built.params
        if trial is not None:
            trial.set_user_attr("diagnostics", _jsonable(built.diagnostics))
            trial.set_user_attr("trainable_params", int(built.diagnostics.get("trainable_params", 0)))
            trial.set_user_attr("non_trainable_params", int(built.diagnostics.get("non_trainable_params", 0)))
        number = trial.number if trial is not None else "replay"

        def on_epoch(epoch: int, row: dict) -> None:
            self.log(f"trial {number} epoch {epoch + 1}/{self.config.epochs}  val micro-F1 {row['val_micro_f1']:.4f}"
                     f"  tuned {row[MONITOR]:.4f} @ {row['threshold']:.2f}  loss {row['loss']:.4f}"
                     f"  {row['seconds']:.1f}s")
            if trial is not None:
                trial.set_user_attr("epochs", validation.history)

        validation = ValidationF1(self.dataset.x_valid, self.dataset.y_valid, on_epoch)
        callbacks: list[keras.callbacks.Callback] = [NaNGuard(), validation]
        if trial is not None:
            callbacks.append(KerasPruningCallback(trial, MONITOR))
        batch_size = int(resolved.get("batch_size", 32))
        try:
            fit(self.dataset.x_train, self.dataset.y_train.astype("float32"), batch_size=batch_size,
                epochs=self.config.epochs, callbacks=callbacks, verbose=0, shuffle=True)  # issue 7 hook: fit
        except optuna.TrialPruned:
            self._trial_artifacts(trial, model, validation.history)  # issue 6: a pruned trial's curve too
            raise
        finally:
            if trial is not None and validation.history:
                trial.set_user_attr("epochs", validation.history)
        best = validation.best
        if best is None:
            raise TrialFailure("no epoch finished")
        if trial is not None:
            trial.set_user_attr("threshold", best["threshold"])
            trial.set_user_attr("best_epoch", best["epoch"])
            trial.set_user_attr("val_micro_f1_at_0.5", best["val_micro_f1"])
            trial.set_user_attr("epoch_seconds", [r["seconds"] for r in validation.history])
            if validation.best_weights is not None:
                model.set_weights(validation.best_weights)
            self._maybe_save(trial, model, best[MONITOR])
            self._trial_artifacts(trial, model, validation.history, best[MONITOR])  # issue 6
        return TrialResult(best[MONITOR], validation.history)

    def _maybe_save(self, trial: optuna.Trial, model: keras.Model, value: float) -> None:
        """Save the model as a ``.keras`` artifact when :func:`_worth_saving` says so."""
        if not self.config.save_models or self.artifact_store is None:
            return
        if not _worth_saving(trial, value, self.space.name):  # issue 6
            return
        from optuna.artifacts import upload_artifact

        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, f"trial-{trial.number}.keras")
                model.save(path)
                artifact_id = upload_artifact(artifact_store=self.artifact_store, file_path=path,
                                              study_or_trial=trial)
        except Exception as exc:  # a model that cannot be saved keeps its score; the reason is recorded
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            trial.set_user_attr("model_save_error", reason)
            self.log(f"trial {trial.number}: model not saved: {reason}")
            return
        trial.set_user_attr("model_artifact_id", artifact_id)

    # --- issue 6 hook: per-trial plots and the best trial's note (search.plots, search.notes) ---
    def _trial_artifacts(self, trial: optuna.Trial | None, model: keras.Model,
                         history: list[dict[str, float]], value: float | None = None) -> None:
        """Learning curve and attention heatmap as artifacts; the best trial's note. Never fails the trial."""
        if trial is None or self.artifact_store is None:
            return
        try:
            from search.plots import upload_trial_plots

            upload_trial_plots(trial, self.artifact_store, history, model, self.dataset)
            if value is not None:
                from search.notes import save_best_trial_note

                try:
                    best_so_far = trial.study.best_value
                except ValueError:
                    best_so_far = -math.inf
                if value >= best_so_far:
                    save_best_trial_note(trial, value)
        except Exception as exc:  # a plot must never cost a trained trial
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            trial.set_user_attr("artifact_error", reason)
            self.log(f"trial {trial.number}: plots not saved: {reason}")
    # --- end of issue 6 hook ---


# --- issue 6 hook: which models are saved (search.report) ---
# The report needs every ablation model (paired bootstrap over seeds) and, for a study without an
# ablation, the best model of each attention position (best with vs best without attention).
SAVE_EVERY_MODEL_SPACES = frozenset({"ablation"})


def _worth_saving(trial: optuna.Trial, value: float, space_name: str) -> bool:
    """Save when the space keeps every model, or the trial is the best so far of the study or of its
    attention position."""
    if space_name in SAVE_EVERY_MODEL_SPACES:
        return True
    from optuna.trial import TrialState

    done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    position = trial.params.get("attention_position")
    same = [t.value for t in done if position is not None and t.params.get("attention_position") == position]
    return value >= max((t.value for t in done), default=-math.inf) or value >= max(same, default=-math.inf)

# --- end of issue 6 hook ---


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
