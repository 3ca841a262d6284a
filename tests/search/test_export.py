"""``python -m search.export``: a study's model as a folder that needs nothing of the study, and its refusals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from clihelpers import REPO, CliResult, assert_one_line_error, run_cli
from servinghelpers import NO_MODEL_STUDY, STUDY, TINY, storage_url, tiny_config, tiny_studies

from search._cli import run_main
from search.export import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_studies(tmp_path_factory)


def _export(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    code = run_main(main, list(argv))
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def test_the_folder_holds_model_vocabulary_settings_and_card(studies: Path) -> None:
    export = studies / "export"
    assert sorted(p.name for p in export.iterdir()) == ["README.md", "export.json", "model-0.keras", "vocabulary.txt"]
    manifest = json.loads((export / "export.json").read_text())
    best = optuna.load_study(study_name=STUDY, storage=storage_url(studies)).best_trial
    assert manifest["kind"] == "trial" and manifest["study"]["trial"] == best.number
    assert manifest["max_len"] == TINY["max_len"] and manifest["vocab_size"] == TINY["vocab_size"]
    assert manifest["threshold"] == best.user_attrs["threshold"]
    # the attn space's models mask their padding: the predictor may cut each batch to its longest text
    assert [m["any_length"] for m in manifest["models"]] == [True]
    assert len(manifest["label_names"]) == 50 and manifest["tokenizer"]["lowercase"] is True
    vocabulary = (export / "vocabulary.txt").read_text().split("\n")[:-1]
    assert vocabulary[:2] == ["<pad>", "<oov>"] and len(vocabulary) == TINY["vocab_size"]
    card = (export / "README.md").read_text()
    for section in ("## Data", "## Parameters", "## Validation", "## Test", "## Made by", "search.report"):
        assert section in card
    assert f"python -m search.export --study {STUDY} --storage {storage_url(studies)} --out {export}" in card
    assert f"{best.value:.4f}" in card
    assert manifest["command"] in card


def test_validation_through_the_export_equals_the_study(studies: Path) -> None:
    """Raw validation text -> the folder's tokeniser and model gives the study's token ids and micro-F1."""
    import search
    from search.data import load_dataset, load_texts
    from search.metrics import micro_f1

    predictor = search.load_predictor(studies / "export")
    config = tiny_config(studies)
    dataset = load_dataset(config.data, config.data_settings())
    texts = load_texts(config.data, config.data_settings())["valid"]  # type: ignore[index]
    np.testing.assert_array_equal(predictor.vectorize(texts), dataset.x_valid)
    assert predictor.label_names == dataset.label_names
    prob = predictor.predict_proba(texts)
    # batches of similar length give the padded batches' probabilities
    from search.config import PREDICT_BATCH
    from search.model import predict_probabilities
    padded = predict_probabilities(predictor.models[0], dataset.x_valid, PREDICT_BATCH, any_length=False)
    np.testing.assert_allclose(prob, padded, atol=1e-5)
    best = optuna.load_study(study_name=STUDY, storage=storage_url(studies)).best_trial
    assert best.value is not None
    assert f"{micro_f1(dataset.y_valid, prob, predictor.threshold):.4f}" == f"{best.value:.4f}"


def test_a_chosen_trial_with_attention_and_force(studies: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import search

    out = tmp_path / "label"
    result = _export(capsys, "--study", STUDY, "--storage", storage_url(studies), "--trial", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["study"]["trial"] == 1
    if optuna.load_study(study_name=STUDY, storage=storage_url(studies)).best_trial.number != 1:
        assert "not the best" in (out / "README.md").read_text()
    predictions = search.load_predictor(out).predict(["a C++ library for parsing JSON", ""], threshold=0.01,
                                                     top_k=3)
    assert len(predictions) == 2 and all(len(p.labels) <= 3 for p in predictions)
    # --force replaces an earlier export, and only an export
    again = _export(capsys, "--study", STUDY, "--storage", storage_url(studies), "--trial", "0", "--out", str(out),
                    "--force")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "export.json").read_text())["study"]["trial"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label"]  # no staging folder left behind


BAD = {
    "unknown study": (["--study", "nope"], ["study 'nope'", "no such study"]),
    "no saved model": (["--study", NO_MODEL_STUDY], [f"study '{NO_MODEL_STUDY}'", "no saved model",
                                                     "--no-save-models"]),
    "no such trial": (["--study", STUDY, "--trial", "99"], ["--trial", "no trial 99"]),
    "bad trial number": (["--study", STUDY, "--trial", "x"], ["--trial", "expected a trial number"]),
    "final without one": (["--study", STUDY, "--final"], [f"study '{STUDY}'", "no final model", "search.finalize"]),
    "trial and final": (["--study", STUDY, "--final", "--trial", "0"], ["not allowed with"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case: str, studies: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    argv, needles = BAD[case]
    out = tmp_path / "out" / "model"
    result = _export(capsys, *argv, "--storage", storage_url(studies), "--out", str(out))
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "out").exists()


def test_a_missing_store_or_a_full_folder_is_refused(studies: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.db"
    result = _export(capsys, "--study", STUDY, "--storage", f"sqlite:///{missing}", "--out", str(tmp_path / "m"))
    assert_one_line_error(result, "--storage", "does not exist")
    assert not missing.exists() and not (tmp_path / "m").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    for extra, needle in (((), "not empty"), (("--force",), "not an earlier export")):
        result = _export(capsys, "--study", STUDY, "--storage", storage_url(studies), "--out", str(full), *extra)
        assert_one_line_error(result, f"--out {full}", needle)
        assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_the_command_line_refuses_without_a_traceback(studies: Path, tmp_path: Path) -> None:
    out = tmp_path / "final"
    result = run_cli("search.export", "--study", STUDY, "--storage", storage_url(studies), "--final",
                     "--out", str(out))
    assert_one_line_error(result, "no final model")
    assert not out.exists()


def test_the_export_does_not_need_the_study(studies: Path, tmp_path: Path) -> None:
    """The folder alone: the store, the artifacts and the data cache gone, predictions unchanged."""
    import search

    moved = tmp_path / "alone"
    shutil.copytree(studies / "export", moved)
    expected = search.load_predictor(studies / "export").predict_proba(["graphical web browser"])
    result = run_cli("search.predict", str(moved), "--text", "graphical web browser", "--threshold", "0.01",
                     env={"SEARCH_CACHE_DIR": str(tmp_path / "empty-cache"), "OPTUNA_STORAGE": "sqlite:///nope.db",
                          "PYTHONPATH": str(REPO)},
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    names = search.load_predictor(moved).label_names
    for label, p in zip(line["labels"], line["probabilities"], strict=True):
        assert abs(expected[0][names.index(label)] - p) < 1e-5
    assert not (tmp_path / "empty-cache").exists() and not (tmp_path / "nope.db").exists()
