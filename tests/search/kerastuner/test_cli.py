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
    assert "study 'cli': complete 2" in result.stdout and "python -m search.dashboard" in result.stdout
    study = optuna.load_study(study_name="cli", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
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
