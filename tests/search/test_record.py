"""The trial-record schema: one key per field, round trips through a real study, partial writes.

What readers derive from a record (position, degenerate attention) is tested beside the report.
"""
from __future__ import annotations

import dataclasses

import optuna

from search import record
from search.record import TrialRecord

FULL = TrialRecord(
    seed=7, worker={"host": "h", "pid": 1}, fixed_params={"dropout": 0.2}, attention_position="label",
    diagnostics={"degenerate_attention": False, "trainable_params": 10}, trainable_params=10,
    non_trainable_params=2, epochs=[{"epoch": 1, "val_micro_f1_tuned": 0.5}], epoch_seconds=[1.5],
    threshold=0.3, best_epoch=1, val_micro_f1_at_half=0.4, model_artifact_id="abc", model_save_error="e1",
    artifact_error="e2", failure_reason="f", pruned_reason="p", early_stop_reason="s", strong_start=True,
)


def test_every_stored_field_has_its_own_key_constant() -> None:
    attrs = FULL.to_user_attrs()
    stored = [f for f in dataclasses.fields(TrialRecord) if f.name != "searched_params"]
    assert len(attrs) == len(stored), "every field set gives one user attribute"
    constants = {getattr(record, name) for name in record.__all__
                 if name.isupper() and name != "INTERRUPTED_REASON"}
    assert set(attrs) == constants


def test_round_trip_through_a_real_study() -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask({"dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
                       "attention_position": optuna.distributions.CategoricalDistribution(["none", "label"])})
    FULL.write(trial)
    study.tell(trial, 0.5)
    frozen = study.trials[0]
    back = TrialRecord.from_trial(frozen)
    assert dataclasses.replace(back, searched_params={}) == FULL
    assert back.searched_params == frozen.params
    assert back.params == dict(frozen.params)  # the searched ones over the fixed dropout


def test_a_partial_write_adds_to_what_is_there() -> None:
    study = optuna.create_study()
    trial = study.ask()
    TrialRecord(seed=3, worker={"pid": 9}).write(trial)
    TrialRecord(threshold=0.25).write(trial)
    assert TrialRecord.from_trial(trial) == TrialRecord(seed=3, worker={"pid": 9}, threshold=0.25)
    assert set(trial.user_attrs) == {record.SEED, record.WORKER, record.THRESHOLD}


def test_unknown_keys_are_ignored_and_missing_ones_are_none() -> None:
    back = TrialRecord.from_user_attrs({"seed": 1, "something_else": 2})
    assert back == TrialRecord(seed=1)
    assert back.threshold is None and back.epochs is None


def test_a_retry_keeps_what_the_trial_was_asked_to_be() -> None:
    from search.record import retry_user_attrs

    attrs = FULL.to_user_attrs() | {"not_ours": 1}
    assert retry_user_attrs(attrs) == {"seed": 7, "fixed_params": {"dropout": 0.2}, "strong_start": True,
                                       "not_ours": 1}
