"""``python -m search.kerastuner``: a hypermodel file runs as a study; bad specs end in one line, exit 2."""
from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from clihelpers import assert_one_line_error, run_cli

DOC = Path(__file__).resolve().parent / "doc_hypermodels.py"
TINY = ["--limit", "64", "--max-len", "16", "--vocab-size", "800", "--epochs", "1"]


def test_cli_runs_a_build_function_with_fixed_values_and_fit_arguments(tmp_path: Path) -> None:
    result = run_cli("search.kerastuner", "--hypermodel", f"{DOC}:build_model", "--study", "cli", "--trials", "2",
                     "--set", "activation=relu", "--fit", "batch_size=16", "--no-save-models", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "study 'cli': complete" in result.stdout and "python -m search.dashboard" in result.stdout
    study = optuna.load_study(study_name="cli", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))  # the pruner may stop the second
    assert len(trials) == 2 and trials[0].state == TrialState.COMPLETE
    for t in trials:
        assert "activation" not in t.params and t.user_attrs["fixed_params"]["activation"] == "relu"
    assert study.user_attrs["space_context"]["fit_kwargs"] == {"batch_size": 16}


def test_cli_refuses_bad_specs_in_one_line(tmp_path: Path) -> None:
    cases = [
        ("nocolon", "expected module:attr"),  # refused before keras loads
        (f"{DOC}:not_a_hypermodel", "a int object"),
    ]
    for spec, needle in cases:
        result = run_cli("search.kerastuner", "--hypermodel", spec, "--study", "bad", *TINY, cwd=tmp_path)
        assert_one_line_error(result, "--hypermodel", needle)
    assert not (tmp_path / "studies.db").exists()


FAILS_IN_TRIALS = '''
import keras
import keras_tuner


def build(hp):
    hp.Int("units", 1, 4)
    if type(hp) is not keras_tuner.HyperParameters:  # a trial's hp (the check before the study runs passes)
        raise RuntimeError("fails in every trial")
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(50, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
'''


def test_cli_stops_with_the_reason_and_exits_1_when_the_trials_keep_failing(tmp_path: Path) -> None:
    from search._worker._loop import MAX_SAME_FAILURES

    (tmp_path / "fails.py").write_text(FAILS_IN_TRIALS)
    result = run_cli("search.kerastuner", "--hypermodel", "fails.py:build", "--study", "f", "--trials", "20", *TINY,
                     cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"stopped: {MAX_SAME_FAILURES} trials in a row failed with the same reason" in result.stderr
    assert "fails in every trial" in result.stderr
    study = optuna.load_study(study_name="f", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    assert len(study.get_trials(states=(TrialState.FAIL,))) == len(study.trials) == MAX_SAME_FAILURES
