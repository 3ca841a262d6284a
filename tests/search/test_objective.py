"""A trial's reports: several in its first epoch when asked, once in each later epoch, to the pruner by
training documents seen; early stopping on patience."""
from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from search.config import RunConfig
from search.data import load_dataset
from search.errors import TrialFailure
from search.record import TrialRecord
from spaces import get_space

TINY = {"limit": 192, "max_len": 16, "vocab_size": 800}
PARAMS = {"embedding_mode": "random", "attention_position": "none", "batch_size": 32, "hidden_units": 32,
          "dropout": 0.0, "batch_norm": False}


def _objective(fixed: dict[str, Any] | None = None, **overrides: Any) -> Any:
    from search.objective import Objective

    config = RunConfig(study="reports", space="attn", pruner="none", **(TINY | overrides))
    dataset = load_dataset(config.data, config.data_settings())
    return Objective(config, get_space("attn"), {"fixed": fixed or {}}, dataset, None, log=lambda m: None)


def _run(objective: Any, pruner: optuna.pruners.BasePruner | None = None,
         user_attrs: dict[str, Any] | None = None) -> optuna.trial.FrozenTrial:
    study = optuna.create_study(direction="maximize", pruner=pruner or optuna.pruners.NopPruner())
    study.enqueue_trial(PARAMS, user_attrs=user_attrs)
    study.optimize(objective, n_trials=1, catch=(TrialFailure,))
    return study.trials[0]


def test_reports_several_times_in_the_first_epoch_then_once_an_epoch() -> None:
    # 192 documents, a report every 64: three reports in the first epoch, then one at each epoch's end,
    # at steps counted in intervals of 64 training documents
    trial = _run(_objective(epochs=3, report_every=64, patience=0))
    assert trial.state == TrialState.COMPLETE
    record = TrialRecord.from_trial(trial)
    assert record.epochs is not None
    assert [row["report"] for row in record.epochs] == [1, 2, 3, 6, 9]
    assert [row["epoch"] for row in record.epochs] == [0.333, 0.667, 1, 2, 3]
    assert sorted(trial.intermediate_values) == [1, 2, 3, 6, 9]
    assert trial.value == pytest.approx(max(row["val_micro_f1_tuned"] for row in record.epochs))
    assert record.early_stop_reason is None


class PruneAtTwo(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step == 2


def test_a_trial_is_pruned_inside_its_first_epoch() -> None:
    trial = _run(_objective(epochs=2, report_every=64, patience=0), PruneAtTwo())
    assert trial.state == TrialState.PRUNED
    record = TrialRecord.from_trial(trial)
    assert record.pruned_reason is not None and record.pruned_reason.startswith("at step 2 (epoch 0.667)")
    assert record.epochs is not None and len(record.epochs) == 2


def test_a_strong_start_trial_reports_to_the_pruner_but_is_never_pruned() -> None:
    marked = TrialRecord(strong_start=True).to_user_attrs()
    trial = _run(_objective(epochs=2, report_every=64, patience=0), PruneAtTwo(), user_attrs=marked)
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3, 6]  # the pruner's rungs see it, step 2 too
    record = TrialRecord.from_trial(trial)
    assert record.strong_start is True and record.pruned_reason is None


@pytest.mark.parametrize(("patience", "reports", "reason"), [
    (2, 3, "stopped early at step 3 (epoch 1): no better tuned val micro-F1 in 2 report intervals"),
    # patience counts training documents, not reports: after the first epoch a report is 3 intervals on
    (3, 4, "stopped early at step 6 (epoch 2): no better tuned val micro-F1 in 3 report intervals"),
])
def test_a_trial_stops_itself_after_its_patience(patience: int, reports: int, reason: str) -> None:
    # a learning rate of almost zero never improves on the first report: it stops `patience` intervals on
    trial = _run(_objective({"learning_rate": 1e-9}, epochs=4, report_every=64, patience=patience))
    assert trial.state == TrialState.COMPLETE
    record = TrialRecord.from_trial(trial)
    assert record.epochs is not None and len(record.epochs) == reports
    assert record.early_stop_reason is not None and record.early_stop_reason.startswith(reason)
    assert record.best_epoch == 0.333 and trial.value == record.epochs[0]["val_micro_f1_tuned"]


def test_a_trial_stops_at_its_next_report_once_the_budget_is_spent() -> None:
    """The run's --timeout bounds its wall time: a trial still training when it has passed stops at its
    next report (here the first), complete, with its best report as its value, and says why."""
    import time

    objective = _objective(epochs=3, report_every=64, patience=0)
    objective.deadline = time.monotonic() - 1.0
    trial = _run(objective)
    assert trial.state == TrialState.COMPLETE
    record = TrialRecord.from_trial(trial)
    assert record.epochs is not None and len(record.epochs) == 1
    assert record.early_stop_reason is not None and "time budget (--timeout) ran out" in record.early_stop_reason
    assert trial.value == record.epochs[0]["val_micro_f1_tuned"]


@pytest.mark.parametrize(("report_every", "patience", "documents", "expected"), [
    (None, None, 20961, (4, 8)),  # full debtags50: a report every ~5,000 documents, patience two epochs
    (None, None, 3000, (1, 2)),  # a short epoch reports once, at its end
    (64, 0, 192, (3, 0)),
    (100, 5, 192, (2, 5)),
])
def test_reports_per_epoch_and_patience(report_every: int | None, patience: int | None, documents: int,
                                        expected: tuple[int, int]) -> None:
    config = RunConfig(study="s", space="attn", report_every=report_every, patience=patience)
    assert (config.reports_per_epoch(documents), config.early_stopping_patience(documents)) == expected


@pytest.mark.parametrize(("field", "value", "flag"), [("report_every", 0, "--report-every"),
                                                      ("patience", -1, "--patience")])
def test_bad_report_settings_are_refused(field: str, value: int, flag: str) -> None:
    from search.errors import StudyConfigError

    with pytest.raises(StudyConfigError, match=flag):
        RunConfig(study="s", space="attn", **{field: value})


def _callback(reports_per_epoch: int, **kwargs: Any) -> Any:
    """The callback on a tiny real model, driven by hand as Keras' fit would call it."""
    import keras
    import numpy as np

    from search.objective import ValidationF1

    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 50, (40, 8)), (rng.random((40, 3)) < 0.3).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Embedding(50, 4), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3, activation="sigmoid")])
    callback = ValidationF1(x, y, reports_per_epoch=reports_per_epoch, **kwargs)
    callback.set_model(model)
    return callback


def test_an_epoch_end_is_its_whole_number_of_intervals_even_without_known_steps() -> None:
    # Keras may not know an epoch's steps (a generator): no report inside it, and its end is still step R
    callback = _callback(4)
    callback.set_params({"steps": None})
    callback.on_epoch_begin(0)
    for batch in range(5):
        callback.on_train_batch_end(batch, {"loss": 0.5})
    callback.on_epoch_end(0, {"loss": 0.5})
    assert [(row["report"], row["epoch"]) for row in callback.history] == [(4, 1)]


def test_after_the_first_epoch_a_spent_budget_stops_a_trial_within_a_batch() -> None:
    import time

    callback = _callback(4, deadline=time.monotonic() + 3600)
    callback.set_params({"steps": 8})
    callback.on_epoch_begin(0)
    for batch in range(8):
        callback.on_train_batch_end(batch, {"loss": 0.5})
    callback.on_epoch_end(0, {"loss": 0.5})
    assert [row["report"] for row in callback.history] == [1, 2, 3, 4]
    callback.on_epoch_begin(1)
    callback.on_train_batch_end(0, {"loss": 0.5})
    assert callback.stopped_early is None  # no report is due inside a later epoch
    callback.deadline = time.monotonic() - 1.0
    callback.on_train_batch_end(1, {"loss": 0.5})
    assert callback.model.stop_training and callback.stopped_early is not None
    assert callback.stopped_early.startswith("stopped in epoch 2, before its end: the run's time budget")
    callback.on_epoch_end(1, {"loss": 0.5})
    assert len(callback.history) == 4  # no report for the cut epoch; the best report is the trial's value
