"""``python -m search.export --final``: a study's ensemble (weighted members, the TF-IDF reference), refit
model or ensemble refit as a folder, predicting what search.finalize selected; and its refusals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from clihelpers import CliResult, assert_one_line_error
from servinghelpers import STUDY, storage_url, tiny_config, tiny_studies

from search._cli import run_main
from search.export import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture(scope="module")
def finalized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny study, finalized for real: its greedy ensemble and its refit recorded."""
    from search._final._finalize import finalize_study

    folder = tmp_path_factory.mktemp("finalized")
    shutil.copytree(tiny_studies(tmp_path_factory), folder, dirs_exist_ok=True)
    shutil.rmtree(folder / "export")
    finalize_study(STUDY, storage=storage_url(folder), log=lambda m: None)
    return folder


@pytest.fixture(scope="module")
def validation(finalized: Path) -> tuple[list[str], np.ndarray]:
    from search.data import load_dataset, load_texts

    config = tiny_config(finalized)
    texts = load_texts(config.data, config.data_settings())
    assert texts is not None
    return texts["valid"], load_dataset(config.data, config.data_settings()).y_valid


def _export(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    code = run_main(main, list(argv))
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def _copy_with_ensemble(finalized: Path, tmp_path: Path, **fields: object) -> Path:
    """A copy of the finalized study whose recorded ensemble is ``fields`` (a hand-made selection)."""
    from search._final._record import FinalEnsemble, write_final

    copy = tmp_path / "copy"
    shutil.copytree(finalized, copy)
    study = optuna.load_study(study_name=STUDY, storage=storage_url(copy))
    values = {"threshold": 0.3, "valid_micro_f1": 0.0, "best_single_valid_micro_f1": 0.0, "candidates": (0, 1)}
    write_final(study, FinalEnsemble(**(values | fields)))  # type: ignore[arg-type]
    study.set_user_attr("final_refit_ensemble", None)  # it refit the selection this one replaces
    return copy


def test_an_ensemble_with_the_reference_predicts_the_weighted_mean(finalized: Path, tmp_path: Path,
                                                                   validation: tuple[list[str], np.ndarray],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Trial 1 picked twice, trial 0 once, the reference once: the folder's probabilities are
    (2 p1 + p0 + p_reference) / 4, each part computed here on its own, and its micro-F1 at the ensemble's
    threshold is the one search.finalize recorded."""
    import search
    from search.metrics import micro_f1
    from search.reference import fit_reference

    texts, y_valid = validation
    singles = {}
    for number in (0, 1):
        out = tmp_path / f"trial-{number}"
        assert _export(capsys, "--study", STUDY, "--storage", storage_url(finalized), "--trial", str(number),
                       "--out", str(out)).returncode == 0
        singles[number] = search.load_predictor(out).predict_proba(texts).astype(np.float64)
    config = tiny_config(finalized)
    reference = fit_reference(config.data, config.data_settings()).valid_prob.astype(np.float64)
    expected = (2 * singles[1] + singles[0] + reference) / 4
    score = micro_f1(y_valid, expected, 0.3)
    copy = _copy_with_ensemble(finalized, tmp_path, members=(1, 0, 1), reference_picks=1, valid_micro_f1=score)

    out = tmp_path / "ensemble"
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(copy), "--final", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "exported ensemble of 2 trials (0, 1) + TF-IDF reference" in result.stdout
    assert f"search.finalize recorded {score:.4f}" in result.stdout and "note:" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "export.json", "model-0.keras", "model-1.keras",
                                                     "reference.npz", "vocabulary.txt"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["kind"] == "final" and manifest["version"] == 2 and manifest["threshold"] == 0.3
    assert "label_thresholds" not in manifest  # one threshold for every label: the format older readers read
    assert [(m["file"], m["kind"], m["weight"], m["source"].get("trial")) for m in manifest["models"]] == [
        ("model-0.keras", "keras", 2, 1), ("model-1.keras", "keras", 1, 0), ("reference.npz", "tfidf-logreg", 1, None)]
    predictor = search.load_predictor(out)
    assert predictor.manifest.kind == "final"
    assert [(m.kind, m.weight) for m in predictor.manifest.models] == [("keras", 2), ("keras", 1), ("tfidf-logreg", 1)]
    np.testing.assert_allclose(predictor.predict_proba(texts), expected, atol=1e-5)
    assert micro_f1(y_valid, predictor.predict_proba(texts), predictor.threshold) == pytest.approx(score, abs=1e-4)
    card = (out / "README.md").read_text()
    for needle in ("final model: ensemble of 2 trials (0, 1) + TF-IDF reference", "## Models", "`reference.npz` | 1 |",
                   "`model-0.keras` | 2 | trial 1", "selected on these documents", f"{score:.4f}", "search.report"):
        assert needle in card, needle


def test_the_real_finalize_ensemble_and_refit_export_by_name(finalized: Path, tmp_path: Path,
                                                             validation: tuple[list[str], np.ndarray],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import search
    from search._final import read_ensemble, read_refit
    from search.metrics import micro_f1

    texts, y_valid = validation
    study = optuna.load_study(study_name=STUDY, storage=storage_url(finalized))
    ensemble, refit = read_ensemble(study), read_refit(study)
    assert ensemble is not None and refit is not None
    bare = tmp_path / "bare"  # without its refit, a bare --final is the ensemble
    copy = tmp_path / "copy"
    shutil.copytree(finalized, copy)
    optuna.load_study(study_name=STUDY, storage=storage_url(copy)).set_user_attr("final_refit_ensemble", None)
    assert _export(capsys, "--study", STUDY, "--storage", storage_url(copy), "--final",
                   "--out", str(bare)).returncode == 0
    manifest = json.loads((bare / "export.json").read_text())
    assert manifest["study"]["final"] == "ensemble" and manifest["study"]["final_name"] == ensemble.name
    assert sum(m["weight"] for m in manifest["models"]) == ensemble.size
    predictor = search.load_predictor(bare)
    assert micro_f1(y_valid, predictor.predict_proba(texts), predictor.threshold) == pytest.approx(
        ensemble.valid_micro_f1, abs=1e-4)

    out = tmp_path / "refit"
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(finalized), "--final", "refit",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"exported {refit.name}" in result.stdout and "trained on validation too" in result.stdout
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["threshold"] == refit.threshold
    assert [m["source"] for m in manifest["models"]] == [
        {"study": STUDY, "refit_of_trial": refit.trial, "epochs": refit.epochs, "artifact_id": refit.artifact_id}]
    card = (out / "README.md").read_text()
    assert "not held-out" in card and f"final model: {refit.name}" in card
    assert search.load_predictor(out).predict(["graphical web browser"], threshold=0.01)[0].labels


def test_the_ensemble_refit_exports_its_refit_members_with_the_ensembles_weights(
        finalized: Path, tmp_path: Path, validation: tuple[list[str], np.ndarray],
        capsys: pytest.CaptureFixture[str]) -> None:
    """--final refit-ensemble: one refit model per distinct member, at the member's weight, the reference
    at its picks, the ensemble's thresholds; the card says validation was trained on."""
    import search
    from search._final import read_ensemble, read_refit_ensemble

    texts, _ = validation
    study = optuna.load_study(study_name=STUDY, storage=storage_url(finalized))
    ensemble, refit_ensemble = read_ensemble(study), read_refit_ensemble(study)
    assert ensemble is not None and refit_ensemble is not None
    out = tmp_path / "refit-ensemble"  # a bare --final: the ensemble refit, where there is one
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(finalized), "--final", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"exported {refit_ensemble.name}" in result.stdout and "trained on validation too" in result.stdout
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["study"]["final"] == "refit-ensemble" and manifest["threshold"] == ensemble.threshold
    epochs = dict(zip(refit_ensemble.weights(), refit_ensemble.epochs, strict=True))
    keras_models = [m for m in manifest["models"] if m["kind"] == "keras"]
    assert [(m["source"], m["weight"]) for m in keras_models] == [
        ({"study": STUDY, "refit_of_trial": n, "epochs": epochs[n], "artifact_id": refit_ensemble.artifacts()[n]}, w)
        for n, w in refit_ensemble.weights().items()]
    assert sum(m["weight"] for m in manifest["models"]) == refit_ensemble.size == ensemble.size
    card = (out / "README.md").read_text()
    assert "not held-out" in card and f"refit of trial {keras_models[0]['source']['refit_of_trial']} on train" in card
    assert search.load_predictor(out).predict_proba(texts[:5]).shape[0] == 5


def test_an_ensemble_with_per_label_thresholds_decides_with_them(finalized: Path, tmp_path: Path,
                                                                  validation: tuple[list[str], np.ndarray],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The folder carries the ensemble's per-label thresholds; predict() cuts each label at its own, a
    --threshold given by the user at that one for all; a manifest whose list does not fit the labels is
    refused by name."""
    import search
    from search.errors import InputError
    from search.metrics import evaluate

    texts, y_valid = validation
    n_labels = y_valid.shape[1]
    cuts = tuple(float(c) for c in np.linspace(0.1, 0.6, n_labels).round(3))
    copy = _copy_with_ensemble(finalized, tmp_path, members=(1,), label_thresholds=cuts, label_threshold_shrink=0.5)
    out = tmp_path / "per-label"
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(copy), "--final", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["version"] == 3 and manifest["threshold"] == 0.3 and tuple(manifest["label_thresholds"]) == cuts
    predictor = search.load_predictor(out)
    np.testing.assert_array_equal(predictor.thresholds, cuts)
    prob = predictor.predict_proba(texts[:20])
    for row, prediction in zip(prob, predictor.predict(texts[:20]), strict=True):
        assert set(prediction.labels) == {predictor.label_names[j] for j in range(n_labels) if row[j] >= cuts[j]}
    for row, prediction in zip(prob, predictor.predict(texts[:20], threshold=0.3), strict=True):
        assert set(prediction.labels) == {predictor.label_names[j] for j in range(n_labels) if row[j] >= 0.3}
    card = (out / "README.md").read_text()
    assert "one threshold per label" in card and "per-label thresholds (`label_thresholds`" in card
    assert "at the per-label thresholds (what it decides with)" in card
    assert "at its per-label thresholds, what it decides with" in result.stdout
    assert evaluate(y_valid, predictor.predict_proba(texts), np.asarray(cuts))["micro_f1"] >= 0.0

    manifest["label_thresholds"] = list(cuts[:-1])
    (out / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=f"field 'label_thresholds'.*expected a list of {n_labels} thresholds"):
        search.load_predictor(out)
    manifest["label_thresholds"] = [*cuts[:-1], 1.5]
    (out / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=rf"label_thresholds\[{n_labels - 1}\].*strictly between 0 and 1"):
        search.load_predictor(out)


BAD = {
    "no such final": ({"members": (0,)}, ["--final", "refit"], ["has no final refit", "ensemble of 1 trial (0)"]),
    "ensemble of a missing trial": ({"members": (0, 7)}, ["--final"], ["names trial 7", "not a complete trial",
                                                                       "search.finalize"]),
    "not a final model": ({"members": (0,)}, ["--final", "best"], ["--final", "expected one of ensemble, refit"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_final_is_one_line_and_writes_nothing(case: str, finalized: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ensemble, flags, needles = BAD[case]
    copy = _copy_with_ensemble(finalized, tmp_path, **ensemble)
    study = optuna.load_study(study_name=STUDY, storage=storage_url(copy))
    study.set_user_attr("final_refit", None)  # only the hand-made ensemble
    study.set_user_attr("final_refit_ensemble", None)
    out = tmp_path / "out" / "model"
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(copy), *flags, "--out", str(out))
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "out").exists()


def test_a_member_whose_model_is_gone_fails_the_export_writing_nothing(finalized: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The second member's saved model deleted: refused once the first is copied, and no folder is left."""
    from search.record import TrialRecord

    copy = _copy_with_ensemble(finalized, tmp_path, members=(1, 0))
    trial = optuna.load_study(study_name=STUDY, storage=storage_url(copy)).trials[0]
    artifact = str(TrialRecord.from_trial(trial).model_artifact_id)
    (gone,) = [p for p in copy.rglob(f"*{artifact}*") if p.is_file()]
    gone.unlink()
    out = tmp_path / "out" / "model"
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(copy), "--final", "ensemble",
                     "--out", str(out))
    assert_one_line_error(result, "--artifacts", f"model artifact {artifact}")
    assert not (tmp_path / "out").exists()
