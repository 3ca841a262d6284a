"""The trial: suggest -> build -> fit -> micro-F1 on the whole validation split each epoch -> prune.

Imported only by workers (it imports keras); the launcher never loads it.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from search._worker._signals import interrupts_held
from search.config import ENSEMBLE_CANDIDATES, PREDICT_BATCH, RunConfig
from search.data import Dataset
from search.errors import ModelConfigError, TrialFailure
from search.metrics import micro_f1, tune_threshold
from search.model import InputShapes, predict_probabilities
from search.record import INTERRUPTED_REASON, TrialRecord
from search.runtime import environment_record, is_out_of_memory, seed_everything
from spaces import SearchSpace

__all__ = ["Objective", "ValidationF1", "MONITOR", "TrialResult"]

MONITOR = "val_micro_f1_tuned"  # what is reported to the pruner and maximised


class ValidationF1(keras.callbacks.Callback):
    """``reports_per_epoch`` times in the first epoch (evenly over its training documents; the last at its
    end), then once an epoch, at its end: predictions for the WHOLE validation split, micro-F1 at 0.5 and
    at the tuned global threshold, validation loss. Each report is a row of :attr:`history`; at an
    epoch's end its values are written into ``logs`` for the callbacks after it.

    Why dense reports in the first epoch only: the pruner's first rungs (1 and 3 report intervals with
    successive halving's or Hyperband's reduction factor 3) fall inside it, where a weak configuration on
    a long epoch is worth stopping early; later rungs are epochs apart, and a report between them would
    only cost a whole-validation pass (on full debtags50, about a third of an epoch's time at four reports
    an epoch).

    With a ``trial``, each report goes to its pruner at step ``training documents seen / interval``
    (the interval: an epoch's documents / ``reports_per_epoch``), so the pruner's resource is training
    documents whatever the report's epoch: 1, 2, ..., R in the first epoch, then 2R, 3R, ...; Optuna's
    successive-halving rungs compare the value a trial had when its step first passed them. A pruned
    trial stops at once; with ``prune=False`` (a strong-start trial) the reports still go to the
    pruner, so its rungs compare later trials with it, but the trial is never pruned. With ``patience``
    > 0, a trial whose tuned micro-F1 has not improved for that many intervals stops by itself
    (:attr:`stopped_early` says why), and so does a trial still training when the run's ``deadline``
    (a ``time.monotonic()`` value: the end of ``--timeout``) has passed, at its next report in the
    first epoch, within a batch afterwards: the budget bounds the run's wall time, not only when its
    last trial starts. Why our own callback and not optuna-integration's
    ``KerasPruningCallback``: that one reports at epoch ends only, and a full-data epoch is long.

    An epoch whose training loss is not finite fails the trial with that reason (Keras'
    ``TerminateOnNaN`` before it ends the epoch at the first such batch). Keeps the weights of the best
    report so the saved model is the one scored.
    """

    def __init__(self, x_valid: np.ndarray, y_valid: np.ndarray, *, any_length: bool = False,
                 reports_per_epoch: int = 1, patience: int = 0, trial: optuna.trial.BaseTrial | None = None,
                 prune: bool = True, on_report: Callable[[dict], None] | None = None,
                 deadline: float | None = None) -> None:
        super().__init__()
        self.deadline = deadline
        self.x_valid, self.y_valid, self.any_length = x_valid, y_valid, any_length
        self.reports_per_epoch, self.patience, self.trial = reports_per_epoch, patience, trial
        self.prune = prune
        self.on_report = on_report
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_early: str | None = None
        self._epoch = 0
        self._reported_in_epoch = 0
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._reported_in_epoch = epoch, 0
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stopped_early:
            return
        if self.reports_per_epoch == 1 or self._epoch > 0:
            # No report is due before this epoch's end, but the run's time budget is checked at every batch:
            # a trial past it stops within a batch, not up to an epoch later, keeping its best report.
            if self.best is not None and self.deadline is not None and time.monotonic() >= self.deadline:
                self.stopped_early = (f"stopped in epoch {self._epoch + 1}, before its end: the run's time budget "
                                      f"(--timeout) ran out (best {self.best[MONITOR]:.4f} at epoch "
                                      f"{self.best['epoch']})")
                self.model.stop_training = True
            return
        # Keras says how many steps an epoch has; report k of R is due after k/R of them (any batching).
        steps = int(self.params.get("steps") or 0)
        due = self._reported_in_epoch + 1
        if steps and due < self.reports_per_epoch and (batch + 1) * self.reports_per_epoch >= due * steps:
            self._report(logs or {}, epoch_end=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if self.stopped_early:  # it stopped after its last report
            return
        row = self._report(logs, epoch_end=True)
        logs.update({"val_loss": row["val_loss"], "val_micro_f1": row["val_micro_f1"], MONITOR: row[MONITOR]})

    def _report(self, logs: Mapping[str, Any], *, epoch_end: bool) -> dict[str, float]:
        train_seconds = time.perf_counter() - self._t0
        self._reported_in_epoch += 1
        # an epoch's end is step (epoch + 1) R whatever reports came before it in the epoch (after the first
        # epoch none; in it fewer than R - 1 where Keras does not know the epoch's steps)
        step = (self._epoch + 1 if epoch_end else self._epoch) * self.reports_per_epoch + (
            0 if epoch_end else self._reported_in_epoch)
        epoch = step / self.reports_per_epoch
        shown = int(epoch) if epoch.is_integer() else round(epoch, 3)
        loss = float(logs.get("loss", float("nan")))
        if "loss" in logs and not math.isfinite(loss):
            raise TrialFailure(f"NaN loss at epoch {self._epoch + 1} (training loss {loss})")
        prob = predict_probabilities(self.model, self.x_valid, PREDICT_BATCH, any_length=self.any_length)
        if not np.isfinite(prob).all():
            raise TrialFailure(f"NaN predictions at epoch {self._epoch + 1}")
        threshold, tuned = tune_threshold(self.y_valid, prob)
        at_half = micro_f1(self.y_valid, prob, 0.5)
        val_loss = float(np.mean(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(self.y_valid, prob))))
        row = {"epoch": shown, "report": step, "loss": loss, "val_loss": val_loss,
               "val_micro_f1": float(at_half), MONITOR: float(tuned), "threshold": float(threshold),
               "train_seconds": round(train_seconds, 3), "seconds": round(time.perf_counter() - self._t0, 3)}
        self.history.append(row)
        if self.best is None or row[MONITOR] > self.best[MONITOR]:
            self.best = row
            self.best_weights = self.model.get_weights()
        if self.on_report:
            self.on_report(row)
        self._t0 = time.perf_counter()
        if self.trial is not None:
            self.trial.report(row[MONITOR], step)
            if self.prune and self.trial.should_prune():
                raise optuna.TrialPruned(f"at step {step} (epoch {shown}): tuned val micro-F1 {row[MONITOR]:.4f}")
        assert self.best is not None
        since_best = step - int(self.best["report"])
        best = f"best {self.best[MONITOR]:.4f} at epoch {self.best['epoch']}"
        if self.patience and since_best >= self.patience:
            self.stopped_early = (f"stopped early at step {step} (epoch {shown}): no better tuned val micro-F1 "
                                  f"in {self.patience} report intervals ({best})")
            self.model.stop_training = True
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped_early = (f"stopped at step {step} (epoch {shown}): the run's time budget (--timeout) "
                                  f"ran out ({best})")
            self.model.stop_training = True
        return row


@dataclass
class TrialResult:
    value: float
    history: list[dict[str, float]] = field(default_factory=list)


class Objective:
    """Callable for ``study.optimize``. Every failure is recorded on the trial and raised as
    :class:`TrialFailure` (the worker's ``catch``), so one bad trial never stops the worker.

    What the trial records goes through :class:`search.record.TrialRecord`; what the space decides
    (parameters, seed, model, training) through the :class:`spaces.SearchSpace` contract.
    """

    def __init__(self, config: RunConfig, space: SearchSpace, context: Mapping[str, Any], dataset: Dataset,
                 embedding_matrix: np.ndarray | None, artifact_store: Any | None = None,
                 log: Callable[[str], None] = print, deadline: float | None = None) -> None:
        self.config, self.space, self.context = config, space, context
        self.deadline = deadline  # time.monotonic() past which a running trial stops (see ValidationF1)
        self.dataset, self.embedding_matrix = dataset, embedding_matrix
        self.artifact_store = artifact_store
        self.log = log
        self.environment = environment_record()
        self.shapes = InputShapes.of(dataset, embedding_matrix, config.embedding_dim)

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial, self.context)
        seed = self.space.trial_seed(trial, self.config.seed)
        TrialRecord(seed=seed, worker=self.environment,
                    fixed_params={k: v for k, v in _jsonable(params).items() if k not in trial.params}).write(trial)
        try:
            result = self.run(trial, params, seed)
        except optuna.TrialPruned as exc:
            TrialRecord(pruned_reason=str(exc) or "pruned").write(trial)
            self.log(f"trial {trial.number} pruned: {exc}")
            raise
        except KeyboardInterrupt:
            with interrupts_held():
                TrialRecord(failure_reason=INTERRUPTED_REASON).write(trial)
            raise
        except TrialFailure as exc:
            TrialRecord(failure_reason=str(exc)).write(trial)
            self.log(f"trial {trial.number} failed: {exc}")
            raise
        except Exception as exc:  # any other error fails this trial only, with its reason
            reason = f"out of memory: {exc}" if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
            reason = reason.splitlines()[0][:500]
            TrialRecord(failure_reason=reason).write(trial)
            self.log(f"trial {trial.number} failed: {reason}")
            raise TrialFailure(reason) from exc
        return result.value

    def replay(self, frozen: FrozenTrial) -> TrialResult:
        """Train ``frozen``'s model again with its parameters and seed; nothing is written to the study.

        The trial is played back by a :class:`optuna.trial.FixedTrial` of its stored params, which
        answers every suggestion (fit's too, for a hypermodel) and reports to no pruner.
        """
        fixed = optuna.trial.FixedTrial(frozen.params, number=frozen.number)
        params = self.space.suggest(fixed, self.context)
        stored_seed = TrialRecord.from_trial(frozen).seed
        seed = stored_seed if stored_seed is not None else self.space.trial_seed(fixed, self.config.seed)
        return self.run(fixed, params, int(seed), store=False)

    def run(self, trial: optuna.trial.BaseTrial, params: Mapping[str, Any], seed: int, *,
            store: bool = True) -> TrialResult:
        """Build and train one model, reporting to ``trial``'s pruner; ``store=False`` (a replay, a
        benchmark) saves no model and uploads no artifact."""
        seed_everything(seed)
        keras.backend.clear_session()
        try:
            built = self.space.build(params, self.shapes, trial=trial, context=self.context,
                                     memory_budget=self.config.memory_budget)
        except ModelConfigError as exc:
            raise TrialFailure(f"refused before training: {exc}") from None
        model = built.model
        TrialRecord(diagnostics=_jsonable(built.diagnostics),
                    attention_position=_position(built.params, built.diagnostics),
                    trainable_params=int(built.diagnostics.get("trainable_params", 0)),
                    non_trainable_params=int(built.diagnostics.get("non_trainable_params", 0))).write(trial)

        n_train = len(self.dataset.x_train)
        reports = self.config.reports_per_epoch(n_train)

        def on_report(row: dict) -> None:
            self.log(f"trial {trial.number} epoch {row['epoch']}/{self.config.epochs}  val micro-F1 "
                     f"{row['val_micro_f1']:.4f}  tuned {row[MONITOR]:.4f} @ {row['threshold']:.2f}  "
                     f"loss {row['loss']:.4f}  {row['seconds']:.1f}s")
            TrialRecord(epochs=validation.history).write(trial)

        # A strong-start configuration is in the study to train to its end: it was measured good on full
        # data, it is what TPE learns from first, and each is one kind of model (attention position) for
        # the final ensemble, whose gain comes from members unlike each other; a rung a quarter epoch in
        # would judge it on its start, not on where it ends. Patience and the time budget still stop it.
        strong_start = bool(TrialRecord.from_trial(trial).strong_start)
        validation = ValidationF1(self.dataset.x_valid, self.dataset.y_valid, any_length=built.any_length,
                                  reports_per_epoch=reports, patience=self.config.early_stopping_patience(n_train),
                                  trial=trial, prune=not strong_start, on_report=on_report, deadline=self.deadline)
        callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN(), validation]
        try:
            self.space.fit(built, self.dataset.x_train, self.dataset.y_train.astype("float32"),
                           epochs=self.config.epochs, callbacks=callbacks, seed=seed)
        except optuna.TrialPruned:
            if store:  # a pruned trial's learning curve is worth seeing on the dashboard too
                self._trial_artifacts(trial, model, validation.history)
            raise
        finally:
            if validation.history:
                TrialRecord(epochs=validation.history).write(trial)
        best = validation.best
        if best is None:
            raise TrialFailure("no epoch finished")
        TrialRecord(threshold=best["threshold"], best_epoch=best["epoch"], val_micro_f1_at_half=best["val_micro_f1"],
                    epoch_seconds=[r["seconds"] for r in validation.history],
                    early_stop_reason=validation.stopped_early).write(trial)
        if validation.stopped_early:
            self.log(f"trial {trial.number} {validation.stopped_early}")
        if validation.best_weights is not None:
            model.set_weights(validation.best_weights)
        if store:
            self._maybe_save(trial, model, best[MONITOR])
            self._trial_artifacts(trial, model, validation.history, best[MONITOR])
        return TrialResult(best[MONITOR], validation.history)

    def _maybe_save(self, trial: optuna.trial.BaseTrial, model: keras.Model, value: float) -> None:
        """Save the model as a ``.keras`` artifact when :func:`_worth_saving` says so."""
        if not self.config.save_models or self.artifact_store is None or not isinstance(trial, optuna.Trial):
            return
        if not _worth_saving(trial, value, self.space.name):
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
            TrialRecord(model_save_error=reason).write(trial)
            self.log(f"trial {trial.number}: model not saved: {reason}")
            return
        TrialRecord(model_artifact_id=artifact_id).write(trial)

    def _trial_artifacts(self, trial: optuna.trial.BaseTrial, model: keras.Model,
                         history: list[dict[str, float]], value: float | None = None) -> None:
        """Learning curve and attention heatmap as artifacts the dashboard shows; the best trial's note.
        Never fails the trial: a plot must never cost a trained model."""
        if self.artifact_store is None or not isinstance(trial, optuna.Trial):
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
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            TrialRecord(artifact_error=reason).write(trial)
            self.log(f"trial {trial.number}: plots not saved: {reason}")


# The report needs every ablation model (paired bootstrap over seeds) and, for a study without an
# ablation, the best model of each attention position (best with vs best without attention).
SAVE_EVERY_MODEL_SPACES = frozenset({"ablation"})


def _worth_saving(trial: optuna.Trial, value: float, space_name: str) -> bool:
    """Save when the space keeps every model, or the trial is among the study's
    :data:`ENSEMBLE_CANDIDATES` best so far, or the best so far of its attention position."""
    if space_name in SAVE_EVERY_MODEL_SPACES:
        return True
    done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    position = TrialRecord.from_trial(trial).attention_position
    values = [(t.value, TrialRecord.from_trial(t).attention_position) for t in done if t.value is not None]
    better = sum(1 for v, _ in values if v > value)
    best_here = max((v for v, p in values if position is not None and p == position), default=-math.inf)
    return better < ENSEMBLE_CANDIDATES or value >= best_here


def _position(params: Mapping[str, Any], diagnostics: Mapping[str, Any]) -> str | None:
    """The attention position a model was built with: its resolved params say it (the factory's), or its
    diagnostics do; a keras-tuner hypermodel has none."""
    position = params.get("attention_position", diagnostics.get("attention_position"))
    return None if position is None else str(position)


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
