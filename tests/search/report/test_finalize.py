"""search.finalize on a small finished study: the greedy ensemble of its saved trials, the refit on
train + valid and the ensemble refit are recorded on the study, and the report scores them on the test
split against the TF-IDF reference; bad input is refused in one line with nothing written."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest

from search._cli import run_main
from search._final import read_ensemble, read_refit, read_refit_ensemble
from search._final._ensemble import greedy_selection
from search._final._refit import refit_epochs
from search.finalize import main
from search.record import TrialRecord
from tests.clihelpers import assert_refused, run_cli, snapshot

RESAMPLES = 50


def _copy(studies: Path, tmp: Path) -> str:
    with sqlite3.connect(studies / "studies.db") as src, sqlite3.connect(tmp / "studies.db") as dst:
        src.backup(dst)
    src.close()
    dst.close()
    shutil.copytree(studies / "studies_artifacts", tmp / "studies_artifacts")
    return f"sqlite:///{tmp / 'studies.db'}"


# -- greedy forward selection -------------------------------------------------------------------------------

def _labels(n: int = 400, k: int = 6, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, k)) < 0.3).astype(np.uint8)


def _noisy(y: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(y * 0.6 + 0.2 + rng.normal(0, noise, y.shape), 0, 1)


def test_selection_starts_from_the_best_single_model_and_adds_what_helps() -> None:
    y = _labels()
    probs = {0: _noisy(y, 0.30, 1), 1: _noisy(y, 0.25, 2), 2: _noisy(y, 0.30, 3)}
    selection = greedy_selection(y, probs)
    from search.metrics import tune_threshold

    singles = {k: tune_threshold(y, p)[1] for k, p in probs.items()}
    assert selection.members[0] == max(singles, key=lambda k: singles[k]) == selection.best_single
    assert selection.best_single_valid_micro_f1 == pytest.approx(singles[1])
    # independent errors average out: the ensemble is better than any member on validation
    assert len(set(selection.members)) > 1
    assert selection.valid_micro_f1 > max(singles.values())
    assert list(selection.steps) == sorted(selection.steps) and selection.steps[-1] == selection.valid_micro_f1


def test_selection_stops_when_nothing_improves_and_respects_max_size() -> None:
    y = _labels()
    perfect = y.astype(np.float64)
    selection = greedy_selection(y, {0: _noisy(y, 0.3, 1), 7: perfect})
    assert selection.members == (7,) and selection.valid_micro_f1 == 1.0
    capped = greedy_selection(y, {k: _noisy(y, 0.3, k) for k in range(5)}, max_size=2)
    assert len(capped.members) <= 2


def test_a_joiner_never_starts_the_ensemble_but_joins_it_when_it_helps() -> None:
    y = _labels()
    weak, strong = _noisy(y, 0.35, 1), _noisy(y, 0.25, 2)
    # the joiner alone is the best model, yet the ensemble starts from the best candidate
    selection = greedy_selection(y, {3: weak}, joiners={-1: strong})
    assert selection.members[0] == 3 == selection.best_single
    assert -1 in selection.members and selection.valid_micro_f1 > selection.best_single_valid_micro_f1
    # a joiner that only adds noise is left out
    useless = np.full(y.shape, 0.5)
    assert greedy_selection(y, {3: strong}, joiners={-1: useless}).members.count(-1) == 0
    with pytest.raises(ValueError, match="share keys"):
        greedy_selection(y, {3: weak}, joiners={3: strong})


def test_selection_refuses_mismatched_shapes() -> None:
    y = _labels()
    with pytest.raises(ValueError, match="shape"):
        greedy_selection(y, {0: _noisy(y, 0.3, 1), 1: np.zeros((3, 3))})
    with pytest.raises(ValueError, match="at least one"):
        greedy_selection(y, {})


def test_refit_epochs_round_the_best_report_to_whole_epochs() -> None:
    assert refit_epochs(TrialRecord(best_epoch=2.75), 8) == 3
    assert refit_epochs(TrialRecord(best_epoch=0.25), 8) == 1
    assert refit_epochs(TrialRecord(), 8) == 8


def test_an_ensemble_refit_record_round_trips_and_a_mangled_one_is_refused() -> None:
    from search._final import FinalRefitEnsemble
    from search._final._record import write_final
    from search.errors import StudyConfigError

    study = optuna.create_study()
    record = FinalRefitEnsemble(members=(4, 2, 4), artifact_ids=("a4", "a2"), epochs=(3, 5), threshold=0.35,
                                train_documents=100, seconds=12.5, reference_picks=1, label_thresholds=(0.3, 0.4))
    write_final(study, record)
    assert read_refit_ensemble(study) == record and read_ensemble(study) is None
    assert record.artifacts() == {4: "a4", 2: "a2"} and record.size == 4 and record.decision() == (0.3, 0.4)
    assert record.name == "ensemble of 2 trials (2, 4) refit on train + valid + TF-IDF reference"
    study.set_user_attr("final_refit_ensemble", dict(study.user_attrs["final_refit_ensemble"], epochs=[3]))
    with pytest.raises(StudyConfigError, match="1 epoch counts for 2 distinct members"):
        read_refit_ensemble(study)


# -- the command, end to end --------------------------------------------------------------------------------

def test_finalize_records_ensemble_and_refit_and_the_report_scores_them(studies: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    url = _copy(studies, tmp_path)
    assert run_main(main, ["--study", "attn", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "ensemble of" in out and "refit of trial" in out and "refit on train + valid" in out
    study = optuna.load_study(study_name="attn", storage=url)
    ensemble, refit, refit_ensemble = read_ensemble(study), read_refit(study), read_refit_ensemble(study)
    assert ensemble is not None and refit is not None and refit_ensemble is not None
    # the ensemble refit keeps the ensemble's picks and thresholds; a member that is the refit's trial
    # is served by the refit's model, every other member by a model of its own
    assert refit_ensemble.members == ensemble.members and refit_ensemble.reference_picks == ensemble.reference_picks
    assert refit_ensemble.threshold == ensemble.threshold
    assert refit_ensemble.label_thresholds == ensemble.label_thresholds
    artifacts = refit_ensemble.artifacts()
    assert set(artifacts) == set(ensemble.members) and len(set(artifacts.values())) == len(artifacts)
    assert (artifacts.get(refit.trial) == refit.artifact_id) == (refit.trial in artifacts)
    assert refit_ensemble.train_documents == refit.train_documents
    saved = {t.number for t in study.trials if TrialRecord.from_trial(t).model_artifact_id}
    assert set(ensemble.members) <= set(ensemble.candidates) <= saved  # the reference is counted apart
    assert ensemble.size == len(ensemble.members) + ensemble.reference_picks >= 1
    assert 0.0 <= ensemble.valid_micro_f1 <= 1.0 and ensemble.valid_micro_f1 >= ensemble.best_single_valid_micro_f1
    assert refit.trial == study.best_trial.number
    assert refit.train_documents == 64 + _valid_size(url)
    assert refit.threshold == TrialRecord.from_trial(study.best_trial).threshold

    from search.report import make_report

    report = make_report("attn", storage=url, out=tmp_path / "report", resamples=RESAMPLES, log=lambda m: None)
    kinds = [f.kind for f in report.finals]
    # with per-label thresholds, the ensemble (and its refit) is scored with them and at its one threshold
    rows = 2 if ensemble.label_thresholds else 1
    assert kinds == ["ensemble"] * rows + ["refit"] + ["refit-ensemble"] * rows
    for final in report.finals:
        assert 0.0 <= final.metrics["micro_f1"] <= 1.0
        assert final.diff.estimate == pytest.approx(final.metrics["micro_f1"] - report.baseline.metrics["micro_f1"])
        assert final.diff.low <= final.diff.estimate <= final.diff.high
    text = report.markdown.read_text()
    assert ensemble.name in text and refit.name in text and refit_ensemble.name in text
    assert "Of the final models" in report.verdict
    assert "python -m search.export --study attn --final [ensemble|refit|refit-ensemble]" in text
    assert report.baseline.input == "raw text"


def test_the_ensemble_refit_of_the_refit_alone_scores_as_the_refit(studies: Path, tmp_path: Path) -> None:
    """An ensemble refit whose one member is the refit's model, at the refit's threshold, is the refit:
    the report must score it exactly as the refit row (its models are the study's artifacts, not the
    trials' own)."""
    from search._final import FinalRefitEnsemble
    from search._final._record import write_final
    from search.report import make_report

    url = _copy(studies, tmp_path)
    assert run_main(main, ["--study", "attn", "--storage", url, "--no-ensemble", "--no-refit-ensemble"]) == 0
    study = optuna.load_study(study_name="attn", storage=url)
    refit = read_refit(study)
    assert refit is not None and read_ensemble(study) is None and read_refit_ensemble(study) is None
    alone = FinalRefitEnsemble(members=(refit.trial,), artifact_ids=(refit.artifact_id,), epochs=(refit.epochs,),
                               threshold=refit.threshold, train_documents=refit.train_documents, seconds=0.0)
    write_final(study, alone)
    assert read_refit_ensemble(study) == alone
    report = make_report("attn", storage=url, out=tmp_path / "report", resamples=RESAMPLES, log=lambda m: None)
    by_kind = {f.kind: f for f in report.finals}
    assert set(by_kind) == {"refit", "refit-ensemble"} and by_kind["refit-ensemble"].name == alone.name
    assert by_kind["refit-ensemble"].metrics == pytest.approx(by_kind["refit"].metrics)


def test_refitting_an_earlier_ensemble_reusing_refits_and_forgetting_a_stale_one(studies: Path,
                                                                                   tmp_path: Path) -> None:
    """--no-ensemble refits the ensemble recorded earlier, reusing the refit recorded earlier, and a second
    time trains nothing; the same selection made again keeps the ensemble refit, another one forgets it
    (it refit another selection)."""
    import dataclasses

    from search._final._record import write_final

    url = _copy(studies, tmp_path)
    select = ["--study", "attn", "--storage", url, "--no-refit-ensemble", "--no-reference"]
    assert run_main(main, select) == 0
    study = optuna.load_study(study_name="attn", storage=url)
    ensemble, refit = read_ensemble(study), read_refit(study)
    assert ensemble is not None and refit is not None and read_refit_ensemble(study) is None
    refit_only = ["--study", "attn", "--storage", url, "--no-ensemble", "--no-refit"]
    assert run_main(main, refit_only) == 0
    study = optuna.load_study(study_name="attn", storage=url)
    refit_ensemble = read_refit_ensemble(study)
    assert refit_ensemble is not None and refit_ensemble.refits(ensemble)
    assert read_ensemble(study) == ensemble and read_refit(study) == refit  # untouched
    if refit.trial in refit_ensemble.artifacts():
        assert refit_ensemble.artifacts()[refit.trial] == refit.artifact_id
    assert run_main(main, refit_only) == 0  # every member refit already: nothing trains
    again = read_refit_ensemble(optuna.load_study(study_name="attn", storage=url))
    assert again is not None and again.artifact_ids == refit_ensemble.artifact_ids and again.seconds == 0

    assert run_main(main, [*select, "--no-refit"]) == 0  # the same selection: its refit stays
    assert read_refit_ensemble(optuna.load_study(study_name="attn", storage=url)) == again
    study = optuna.load_study(study_name="attn", storage=url)
    write_final(study, dataclasses.replace(again, threshold=again.threshold + 0.05))  # as if of another selection
    assert run_main(main, [*select, "--no-refit"]) == 0
    study = optuna.load_study(study_name="attn", storage=url)
    assert read_ensemble(study) == ensemble and read_refit_ensemble(study) is None


def test_an_ensemble_without_the_reference_and_one_the_report_averages_it_into(studies: Path,
                                                                             tmp_path: Path) -> None:
    import dataclasses

    from search._final._record import write_final
    from search.metrics import micro_f1
    from search.report import make_report

    url = _copy(studies, tmp_path)
    assert run_main(main, ["--study", "attn", "--storage", url, "--no-refit", "--no-refit-ensemble",
                           "--no-reference"]) == 0
    study = optuna.load_study(study_name="attn", storage=url)
    ensemble = read_ensemble(study)
    assert ensemble is not None and ensemble.reference_picks == 0 and "TF-IDF" not in ensemble.name
    # the best trial and the reference, one pick each: the report must average the reference's test
    # probabilities in, at the ensemble's threshold
    blend = dataclasses.replace(ensemble, members=(study.best_trial.number,), reference_picks=1,
                                label_thresholds=())
    write_final(study, blend)
    assert read_ensemble(study) == blend and blend.name.endswith("+ TF-IDF reference")
    report = make_report("attn", storage=url, out=tmp_path / "report", resamples=RESAMPLES, log=lambda m: None)
    (final,) = report.finals
    assert report.best.number == study.best_trial.number
    expected = micro_f1(_test_labels(url),
                        (report.best.test_prob + report.baseline.test_prob) / 2, blend.threshold)
    assert final.name == blend.name and final.metrics["micro_f1"] == pytest.approx(expected)


def test_an_ensemble_with_per_label_thresholds_is_scored_with_them_and_at_its_one_threshold(
        studies: Path, tmp_path: Path) -> None:
    import dataclasses

    from search._final._record import write_final
    from search.metrics import evaluate
    from search.report import make_report

    url = _copy(studies, tmp_path)
    assert run_main(main, ["--study", "attn", "--storage", url, "--no-refit", "--no-refit-ensemble",
                           "--no-reference"]) == 0
    study = optuna.load_study(study_name="attn", storage=url)
    ensemble = read_ensemble(study)
    assert ensemble is not None
    y_test = _test_labels(url)
    cuts = tuple(float(c) for c in np.linspace(0.1, 0.6, y_test.shape[1]).round(3))
    one = dataclasses.replace(ensemble, members=(study.best_trial.number,), label_thresholds=cuts,
                              label_threshold_shrink=0.5)
    write_final(study, one)
    assert read_ensemble(study) == one and one.decision() == cuts
    report = make_report("attn", storage=url, out=tmp_path / "report", resamples=RESAMPLES, log=lambda m: None)
    per_label, single = report.finals
    assert per_label.name == f"{one.name}, per-label thresholds" and per_label.threshold_text == "per label"
    assert single.name == f"{one.name}, one threshold" and single.threshold_text == f"{one.threshold:.2f}"
    for final, cut in ((per_label, np.asarray(cuts)), (single, one.threshold)):
        expected = evaluate(y_test, report.best.test_prob, cut)
        assert [final.metrics[k] for k in ("micro_f1", "macro_f1")] == pytest.approx(
            [expected[k] for k in ("micro_f1", "macro_f1")], abs=1e-6)
    assert "| per label |" in report.markdown.read_text()


def _test_labels(url: str) -> np.ndarray:
    from search._study import read_study
    from search.data import load_dataset
    from storage import create_storage

    config = read_study(create_storage(url), "attn").config
    return load_dataset(config.data, config.data_settings(), include_test=True).y_test


def _valid_size(url: str) -> int:
    from search._study import read_study
    from search.data import load_dataset
    from storage import create_storage

    config = read_study(create_storage(url), "attn").config
    return len(load_dataset(config.data, config.data_settings()).x_valid)


def test_report_without_final_models_says_how_to_make_them(studies: Path, tmp_path: Path) -> None:
    from search.report import make_report

    url = _copy(studies, tmp_path)
    report = make_report("attn", storage=url, out=tmp_path / "report", resamples=RESAMPLES, log=lambda m: None)
    assert report.finals == []
    assert any("python -m search.finalize --study attn" in n for n in report.notes)


@pytest.mark.parametrize("argv, needles", [
    (["--study", "nope"], ["study 'nope'", "no such study"]),
    (["--study", "attn", "--no-ensemble", "--no-refit", "--no-refit-ensemble"], ["--no-ensemble", "nothing to do"]),
    (["--study", "attn", "--no-ensemble", "--no-refit"], ["study 'attn'", "no final ensemble to refit",
                                                          "--no-refit-ensemble"]),
    (["--study", "attn", "--candidates", "0"], ["--candidates", "expected a number of trials"]),
])
def test_finalize_refuses_bad_input_writing_nothing(studies: Path, tmp_path: Path, argv: list[str],
                                                    needles: list[str]) -> None:
    url = _copy(studies, tmp_path)
    before = snapshot(tmp_path)
    result = run_cli("search.finalize", *argv, "--storage", url, cwd=tmp_path)
    assert_refused(result, *needles)
    assert snapshot(tmp_path) == before


def test_finalize_refuses_a_missing_store(tmp_path: Path) -> None:
    result = run_cli("search.finalize", "--study", "attn", "--storage", f"sqlite:///{tmp_path / 'none.db'}",
                     cwd=tmp_path)
    assert_refused(result, "none.db")
    assert not (tmp_path / "none.db").exists()


def _study_like_attn(url: str, name: str, *, value: float | None) -> None:
    """Study ``name`` with attn's stored settings and one trial: complete without a saved model (``value``)
    or pruned (``value`` None)."""
    from storage import close_storage, create_storage

    storage = create_storage(url)
    try:
        attn = optuna.load_study(study_name="attn", storage=storage)
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        for key, stored in attn.user_attrs.items():
            if not key.startswith("final_"):
                study.set_user_attr(key, stored)
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
        study.add_trial(optuna.trial.create_trial(state=state, value=value))
    finally:
        close_storage(storage)  # the last connection: SQLite folds its write-ahead log into the file


@pytest.mark.parametrize("name, value, needles", [
    ("pruned-only", None, ["study 'pruned-only'", "has no complete trial"]),
    ("no-models", 0.5, ["study 'no-models'", "has no saved model", "--no-ensemble"]),
])
def test_finalize_refuses_a_study_it_cannot_finalize(studies: Path, tmp_path: Path, name: str,
                                                     value: float | None, needles: list[str]) -> None:
    url = _copy(studies, tmp_path)
    _study_like_attn(url, name, value=value)
    before = snapshot(tmp_path)
    result = run_cli("search.finalize", "--study", name, "--storage", url, cwd=tmp_path)
    assert_refused(result, *needles)
    assert snapshot(tmp_path) == before
