"""keras-tuner hypermodels, written as keras-tuner's documentation writes them, run unchanged as studies."""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from search.kerastuner import HyperModelSpace, run
from search.kerastuner._resolve import load_object

HERE = Path(__file__).resolve().parent
DOC = HERE / "doc_hypermodels.py"
TINY: dict[str, Any] = {"vocab_size": 800, "max_len": 16, "limit": 64, "epochs": 2}


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The doc's build(hp) function and its HyperModel class, three trials each, in one SQLite store."""
    work = tmp_path_factory.mktemp("kerastuner")
    storage = f"sqlite:///{work / 'studies.db'}"
    fn = run(load_object(f"{DOC}:build_model"), study_name="fn", storage=storage, n_trials=3, save_models=False,
             log=_quiet, **TINY)
    cls = run(f"{DOC}:MyHyperModel", study_name="cls", storage=storage, n_trials=4, seed=1, log=_quiet, **TINY)
    return {"work": work, "storage": storage, "fn": fn, "cls": cls}


def test_build_function_parameters_appear_in_the_study(studies: dict[str, Any]) -> None:
    study: optuna.Study = studies["fn"]
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) >= 3
    assert study.user_attrs["run_config"]["space"].startswith("hypermodel:")
    for t in finished:
        assert {"embedding_dim", "num_layers", "units_0", "activation", "dropout", "lr"} <= set(t.params)
        assert ("units_1" in t.params) == (t.params["num_layers"] == 2)  # the loop's per-layer units
        assert t.params["embedding_dim"] in (8, 16, 24, 32) and 1e-4 <= t.params["lr"] <= 1e-2
        assert t.intermediate_values  # reported to the pruner every epoch
        assert t.user_attrs["diagnostics"]["keras_tuner_space"]
        assert t.user_attrs["trainable_params"] > 0
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    assert complete
    for t in complete:
        assert t.value == pytest.approx(max(e["val_micro_f1_tuned"] for e in t.user_attrs["epochs"]))


def test_hypermodel_class_with_conditions_fixed_and_fit(studies: dict[str, Any]) -> None:
    study: optuna.Study = studies["cls"]
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) >= 4
    for t in finished:
        kind = t.params["model_type"]
        assert ("mlp_units" in t.params) == (kind == "mlp")
        assert ("filters" in t.params and "kernel_size" in t.params) == (kind == "cnn")
        assert t.params["batch_size"] in (16, 32)  # declared in the HyperModel's fit()
        assert t.params["lr"] in (0.001, 0.01, 0.1)
        assert t.user_attrs["fixed_params"] == {"embedding_dim": 16}  # hp.Fixed: recorded, not searched
        assert "embedding_dim" not in t.params
    best = study.best_trial
    assert "model_artifact_id" in best.user_attrs  # the service saves the best model as usual


def test_resume_counts_earlier_trials_and_refuses_another_hypermodel(studies: dict[str, Any]) -> None:
    before = len(studies["fn"].trials)
    again = run(load_object(f"{DOC}:build_model"), study_name="fn", storage=studies["storage"], n_trials=3,
                save_models=False, log=_quiet, **TINY)
    assert len(again.trials) == before  # already has 3 finished trials: nothing more runs
    from search.errors import StudyConfigError

    with pytest.raises(StudyConfigError, match="space"):
        run(f"{DOC}:MyHyperModel", study_name="fn", storage=studies["storage"], n_trials=4, log=_quiet, **TINY)
    with pytest.raises(StudyConfigError, match="fit arguments"):
        run(load_object(f"{DOC}:build_model"), study_name="fn", storage=studies["storage"], n_trials=4,
            fit_kwargs={"batch_size": 8}, log=_quiet, **TINY)
    assert len(studies["fn"].trials) == before  # refusals write nothing


def test_a_resumed_study_keeps_its_own_pruner_unless_another_is_given(studies: dict[str, Any], tmp_path: Path) -> None:
    """A study made with another pruner (an earlier version's default) resumes with ``pruner`` left out."""
    # SQLite's backup, not a file copy: the store is still open in this process (its log not checkpointed)
    with closing(sqlite3.connect(studies["work"] / "studies.db")) as source, \
            closing(sqlite3.connect(tmp_path / "studies.db")) as target:
        source.backup(target)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    copy = optuna.load_study(study_name="fn", storage=storage)
    copy.set_user_attr("run_config", copy.user_attrs["run_config"] | {"pruner": "median"})
    again = run(load_object(f"{DOC}:build_model"), study_name="fn", storage=storage, n_trials=3, save_models=False,
                log=_quiet, **TINY)
    assert again.user_attrs["run_config"]["pruner"] == "median"
    from search.errors import StudyConfigError

    with pytest.raises(StudyConfigError, match="pruner='median', got 'sha'"):
        run(load_object(f"{DOC}:build_model"), study_name="fn", storage=storage, n_trials=3, save_models=False,
            pruner="sha", log=_quiet, **TINY)


def test_replay_rebuilds_the_same_model(studies: dict[str, Any]) -> None:
    from search._study import read_study
    from search.data import load_dataset
    from search.objective import Objective
    from storage import create_storage

    stored = read_study(create_storage(studies["storage"]), "cls")
    space = HyperModelSpace(f"{DOC}:MyHyperModel")
    trial = next(t for t in studies["cls"].trials if t.state == TrialState.COMPLETE)
    dataset = load_dataset(stored.config.data, stored.config.data_settings())
    result = Objective(stored.config, space, stored.context, dataset, None, log=_quiet).replay(trial)
    assert result.value == pytest.approx(trial.value, abs=1e-3)


def test_a_build_that_always_raises_is_refused_before_the_store_is_touched(tmp_path: Path) -> None:
    from search.errors import StudyConfigError

    def build_model(hp):
        hp.Int("units", 1, 4)
        raise RuntimeError("no GPU today")

    with pytest.raises(StudyConfigError, match="build\\(hp\\) raised RuntimeError: no GPU today"):
        run(build_model, study_name="broken", storage=f"sqlite:///{tmp_path / 's.db'}", n_trials=1, log=_quiet,
            **TINY)
    assert not (tmp_path / "s.db").exists()


def _fails_in_trials(calls: list[int]) -> Any:
    """A build(hp) that builds nothing and raises in every trial, yet passes the check run before the
    study starts (its first call): a hypermodel whose trials fail for a reason of their own."""

    def build_model(hp):
        calls.append(hp.Int("units", 1, 4))
        if len(calls) > 1:
            raise RuntimeError("no GPU today")
        import keras

        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(50, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model

    return build_model


def test_a_broken_build_fails_its_trial_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import search._worker._loop as loop  # the worker's loop, which the in-process runner runs too

    monkeypatch.setattr(loop, "MAX_SAME_FAILURES", 1)  # stop after the first failure, not the 5th
    calls: list[int] = []
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(loop.TrialsKeepFailing, match="no GPU today"):
        run(_fails_in_trials(calls), study_name="broken", storage=storage, n_trials=1, log=_quiet, **TINY)
    study = optuna.load_study(study_name="broken", storage=storage)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and len(failed) == len(study.trials) == 1 and len(calls) == 2  # the check, then the trial
    assert "build(hp) raised RuntimeError: no GPU today" in failed[0].user_attrs["failure_reason"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # study.ask() on a storage with heartbeats
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # Optuna's retry helpers
def test_the_runner_fails_and_requeues_a_dead_workers_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run() runs the worker's loop: a trial left RUNNING by a dead process of this machine is failed with
    the reason and re-queued before the first trial starts."""
    import subprocess
    import sys

    import search._worker._loop as loop
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from search.record import TrialRecord
    from search.runtime import process_identity

    monkeypatch.setattr(loop, "MAX_SAME_FAILURES", 1)  # the broken trials below stop the run at once
    calls: list[int] = []
    build_model = _fails_in_trials(calls)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(loop.TrialsKeepFailing):
        run(build_model, study_name="orphan", storage=storage, n_trials=1, log=_quiet, **TINY)
    study = optuna.load_study(study_name="orphan", storage=storage)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = study.ask()
    TrialRecord(worker=process_identity() | {"pid": dead.pid}).write(orphan)
    calls.clear()  # the resumed run checks the build again
    with pytest.raises(loop.TrialsKeepFailing):
        run(build_model, study_name="orphan", storage=storage, n_trials=1, log=_quiet, **TINY)
    trials = study.get_trials()
    assert trials[orphan.number].state == TrialState.FAIL
    assert trials[orphan.number].user_attrs["failure_reason"] == "its worker process died; retried"
    assert [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == orphan.number]
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_grid_sampler_and_reserved_fit_arguments_are_refused(tmp_path: Path) -> None:
    from search.errors import StudyConfigError

    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(StudyConfigError, match="grid"):
        run(f"{DOC}:build_model", study_name="g", storage=storage, sampler="grid", log=_quiet, **TINY)
    with pytest.raises(StudyConfigError, match="epochs"):
        run(f"{DOC}:build_model", study_name="g", storage=storage, fit_kwargs={"epochs": 3}, log=_quiet, **TINY)
    assert not optuna.get_all_study_names(storage=storage)
