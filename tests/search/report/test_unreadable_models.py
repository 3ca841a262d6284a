"""search.report on a study whose saved models are damaged or lost: the report names each trial whose
model could not be read and goes on without it; the best trial's model is stood in for by the best one
that can be read; when none can, the report is refused in one line (exit 2) and nothing is written."""
from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from search._cli import run_main
from search.record import TrialRecord
from search.report import make_report
from search.report.__main__ import main

RESAMPLES = 50


def _copy(studies: Path, tmp: Path, *, keep_ablation: bool) -> tuple[str, Path]:
    """A copy of the finished studies (store and artifacts) that a test may damage."""
    import sqlite3

    with sqlite3.connect(studies / "studies.db") as src, sqlite3.connect(tmp / "studies.db") as dst:
        src.backup(dst)
    src.close()
    dst.close()
    url = f"sqlite:///{tmp / 'studies.db'}"
    if not keep_ablation:
        optuna.delete_study(study_name="ablation", storage=url)
    artifacts = tmp / "studies_artifacts"
    shutil.copytree(studies / "studies_artifacts", artifacts)
    return url, artifacts


def _model_file(url: str, study: str, trial: optuna.trial.FrozenTrial, artifacts: Path) -> Path:
    artifact = TrialRecord.from_trial(trial).model_artifact_id
    assert artifact, (study, trial.number)
    return artifacts / artifact


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _garble(path: Path) -> None:
    """Still a zip archive, but the model's description inside it is cut short."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    assert "config.json" in members, sorted(members)
    members["config.json"] = members["config.json"][:50]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _delete(path: Path) -> None:
    path.unlink()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"/") for p in sorted(folder.rglob("*"))}


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (_truncate, "is not a zip archive"),
    "garbled": (_garble, "cannot be read as a saved Keras model"),
    "deleted": (_delete, "is not in the artifact folder"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_best_trial_unreadable_the_next_best_stands_in(damage: str, studies: Path, tmp_path: Path) -> None:
    spoil, reason = DAMAGE[damage]
    url, artifacts = _copy(studies, tmp_path, keep_ablation=False)
    attn = optuna.load_study(study_name="attn", storage=url)
    best = attn.best_trial
    spoil(_model_file(url, "attn", best, artifacts))
    logged: list[str] = []
    report = make_report("attn", storage=url, out=tmp_path / "out", artifacts=str(artifacts),
                         resamples=RESAMPLES, log=logged.append)
    other = next(t for t in attn.trials if t.number != best.number)
    assert report.best.number == other.number
    notes = " | ".join(report.notes)
    assert f"the best trial #{best.number}'s saved model could not be read" in notes, notes
    assert f"the test scores are those of trial #{other.number}" in notes
    assert reason in notes, notes
    assert any(f"study 'attn' trial {best.number}: saved model could not be read" in m for m in logged), logged
    assert report.markdown.is_file()
    assert f"trial #{best.number}'s saved model could not be read" in report.markdown.read_text()


def test_unreadable_ablation_model_is_named_and_left_out(studies: Path, tmp_path: Path) -> None:
    url, artifacts = _copy(studies, tmp_path, keep_ablation=True)
    ablation = optuna.load_study(study_name="ablation", storage=url)
    victim = ablation.trials[3]
    _garble(_model_file(url, "ablation", victim, artifacts))
    report = make_report("attn", storage=url, out=tmp_path / "out", artifacts=str(artifacts),
                         resamples=RESAMPLES, log=lambda m: None)
    assert report.ablation is not None
    scored = {e.number for e in report.ablation.evals}
    complete = [t for t in ablation.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert victim in complete and victim.number not in scored and len(scored) == len(complete) - 1
    notes = " | ".join(report.notes)
    assert f"study 'ablation' trial {victim.number}: model artifact" in notes, notes
    assert "cannot be read as a saved Keras model" in notes


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_no_readable_model_is_refused_in_one_line(damage: str, studies: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spoil, reason = DAMAGE[damage]
    url, artifacts = _copy(studies, tmp_path, keep_ablation=False)
    attn = optuna.load_study(study_name="attn", storage=url)
    for trial in attn.trials:
        if TrialRecord.from_trial(trial).model_artifact_id:  # not the strong start's trial still waiting
            spoil(_model_file(url, "attn", trial, artifacts))
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    code = run_main(main, ["--study", "attn", "--storage", url, "--artifacts", str(artifacts), "--out", str(out),
                           "--resamples", str(RESAMPLES)])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.out == "" and "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    line = errors[0]
    assert line.startswith("error: study 'attn': the best trial"), line
    assert f"best trial {attn.best_trial.number}'s saved model could not be read" in line and reason in line, line
    assert "nor could any of the 1 other complete trials' models" in line
    assert not out.exists()
    assert snapshot(tmp_path) == before  # store and artifacts as they were, no report folder
