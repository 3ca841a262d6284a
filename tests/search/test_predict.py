"""``python -m search.predict`` and ``search.load_predictor``: labels for new text, under TensorFlow and JAX."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from clihelpers import REPO, CliResult, assert_one_line_error, run_cli
from servinghelpers import tiny_studies

import search
from search._cli import run_main
from search.predict import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

TEXTS = ["A C++ library for parsing JSON documents", "graphical web browser with tabs", ""]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_studies(tmp_path_factory) / "export"


@pytest.fixture(scope="module")
def predictor(export: Path) -> search._serving.Predictor:
    return search.load_predictor(export)


def _predict(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    code = run_main(main, list(argv))
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def test_predictions_are_the_labels_that_reach_the_threshold(predictor: search._serving.Predictor) -> None:
    prob = predictor.predict_proba(TEXTS)
    assert prob.shape == (3, len(predictor.label_names)) and prob.dtype == np.float32
    for threshold, top_k in ((None, None), (0.05, None), (0.05, 2)):
        cut = predictor.threshold if threshold is None else threshold
        for row, p in zip(prob, predictor.predict(TEXTS, threshold=threshold, top_k=top_k), strict=True):
            expected = [predictor.label_names[i] for i in np.argsort(-row, kind="stable") if row[i] >= cut][:top_k]
            assert list(p.labels) == expected
            assert list(p.probabilities) == sorted(p.probabilities, reverse=True)
            assert all(q >= cut for q in p.probabilities)
    with pytest.raises(TypeError, match="one string"):
        predictor.predict("one text")  # type: ignore[arg-type]


def test_text_on_the_command_line(export: Path, predictor: search._serving.Predictor,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    result = _predict(capsys, str(export), "--text", TEXTS[0], "--text", TEXTS[1], "--threshold", "0.05",
                      "--top-k", "3")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = predictor.predict(TEXTS[:2], threshold=0.05, top_k=3)
    assert [line["text"] for line in lines] == TEXTS[:2]
    assert [line["labels"] for line in lines] == [list(p.labels) for p in expected]
    for line, p in zip(lines, expected, strict=True):
        np.testing.assert_allclose(line["probabilities"], p.probabilities, atol=1e-6)


def _write_input(folder: Path, suffix: str) -> Path:
    path = folder / f"docs{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps({"id": f"d{n}", "text": t}) for n, t in enumerate(TEXTS)) + "\n")
    elif suffix == ".csv":
        path.write_text("id,text\n" + "".join(f'd{n},"{t}"\n' for n, t in enumerate(TEXTS)))
    else:
        path.write_text("\n".join(TEXTS[:2]) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".txt"])
def test_an_input_file_gives_one_line_per_document(suffix: str, export: Path, predictor: search._serving.Predictor,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write_input(tmp_path, suffix)
    output = tmp_path / "out.jsonl"
    result = _predict(capsys, str(export), "--input", str(source), "--output", str(output), "--threshold", "0.05")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    n = 2 if suffix == ".txt" else 3
    assert len(lines) == n
    if suffix != ".txt":
        assert [line["id"] for line in lines] == [f"d{i}" for i in range(n)]
    assert [line["line"] for line in lines] == [i + (2 if suffix == ".csv" else 1) for i in range(n)]
    expected = predictor.predict(TEXTS[:n], threshold=0.05)
    assert [line["labels"] for line in lines] == [list(p.labels) for p in expected]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, "out.jsonl"])


def test_a_progress_bar_for_long_inputs(predictor: search._serving.Predictor,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    texts = [f"document {n} about a library" for n in range(600)]
    quiet = predictor.predict_proba(texts)
    assert capsys.readouterr().err == ""
    np.testing.assert_allclose(predictor.predict_proba(texts, progress=True), quiet, atol=1e-6)
    assert "600/600" in capsys.readouterr().err


# -- bad input: one line naming the file or field, exit 2, nothing written ----------------------------------------


def _corrupt(folder: Path, case: str) -> None:
    manifest_path = folder / "export.json"
    manifest = json.loads(manifest_path.read_text())
    if case == "manifest missing":
        manifest_path.unlink()
    elif case == "manifest not JSON":
        manifest_path.write_text("{not json")
    elif case == "threshold outside (0, 1)":
        manifest["threshold"] = 1.5
        manifest_path.write_text(json.dumps(manifest))
    elif case == "model missing":
        (folder / "model-0.keras").unlink()
    elif case == "model corrupt":
        data = bytearray((folder / "model-0.keras").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / "model-0.keras").write_bytes(bytes(data))
    elif case == "model not a model":  # a consistent manifest around a file keras cannot read
        (folder / "model-0.keras").write_bytes(b"not a zip archive")
        manifest["models"][0]["sha256"] = hashlib.sha256(b"not a zip archive").hexdigest()
        manifest_path.write_text(json.dumps(manifest))
    elif case in ("version unknown", "weight not positive", "kind unknown", "export kind unknown",
                  "any_length not a boolean"):
        if case == "version unknown":
            manifest["version"] = 4
        elif case == "export kind unknown":
            manifest["kind"] = "ensemble"
        elif case == "any_length not a boolean":
            manifest["models"][0]["any_length"] = "yes"
        else:
            manifest["models"][0]["weight" if case == "weight not positive" else "kind"] = 0 if case == \
                "weight not positive" else "onnx"
        manifest_path.write_text(json.dumps(manifest))
    elif case in ("reference not a reference", "reference of other labels"):
        # a consistent manifest around a TF-IDF reference file that is not one (or is one for 3 labels)
        path = folder / "reference.npz"
        if case == "reference not a reference":
            path.write_bytes(b"not an npz archive")
        else:
            from search._serving._linear import LinearTextModel
            LinearTextModel(terms=("a", "b"), idf=np.ones(2), coef=np.zeros((3, 2)), intercept=np.zeros(3),
                            ngram_range=(1, 2), sublinear_tf=True, lowercase=True, token_pattern=r"\w+").save(path)
        manifest["models"].append({"file": "reference.npz", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                   "kind": "tfidf-logreg", "weight": 1})
        manifest_path.write_text(json.dumps(manifest))
    elif case in ("label thresholds of the wrong length", "label threshold outside (0, 1)"):
        n_labels = len(manifest["label_names"])
        manifest["version"] = 3
        manifest["label_thresholds"] = [0.3] * (n_labels - 1) if case == "label thresholds of the wrong length" \
            else [0.3] * (n_labels - 1) + [1.5]
        manifest_path.write_text(json.dumps(manifest))
    elif case == "vocabulary missing":
        (folder / "vocabulary.txt").unlink()
    elif case == "vocabulary corrupt":
        with open(folder / "vocabulary.txt", "a", encoding="utf-8") as fh:
            fh.write("extra\n")


FOLDER_CASES = {
    "not a folder": ("missing-folder", ["missing-folder", "not a folder"]),
    "not an export": ("", ["not an export", "export.json"]),
    "manifest missing": ("", ["not an export", "export.json"]),
    "manifest not JSON": ("", ["export.json", "not valid JSON"]),
    "threshold outside (0, 1)": ("", ["export.json", "field 'threshold'", "strictly between 0 and 1"]),
    "model missing": ("", ["model-0.keras", "missing"]),
    "model corrupt": ("", ["model-0.keras", "corrupt"]),
    "model not a model": ("", ["model-0.keras", "cannot be loaded as a Keras model"]),
    "version unknown": ("", ["export.json", "field 'version'", "got 4", "expected 1, 2 or 3"]),
    "weight not positive": ("", ["export.json", "field 'models[0].weight'", "got 0", "positive integer"]),
    "kind unknown": ("", ["export.json", "field 'models[0].kind'", "'onnx'", "keras, tfidf-logreg"]),
    "export kind unknown": ("", ["export.json", "field 'kind'", "'ensemble'", "'trial' or 'final'"]),
    "any_length not a boolean": ("", ["export.json", "field 'models[0].any_length'", "got 'yes'",
                                      "expected true or false"]),
    "reference not a reference": ("", ["reference.npz", "cannot be read", "TF-IDF reference"]),
    "reference of other labels": ("", ["reference.npz", "shape (3, 2)", "expected (50, 2)"]),
    "label thresholds of the wrong length": ("", ["export.json", "field 'label_thresholds'",
                                                  "expected a list of 50 thresholds"]),
    "label threshold outside (0, 1)": ("", ["export.json", "field 'label_thresholds[49]'", "got 1.5",
                                            "strictly between 0 and 1"]),
    "vocabulary missing": ("", ["vocabulary.txt", "missing"]),
    "vocabulary corrupt": ("", ["vocabulary.txt", "corrupt"]),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_a_bad_export_folder(case: str, export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, needles = FOLDER_CASES[case]
    folder = tmp_path / (name or "copy")
    if case == "not an export":
        folder.mkdir()
    elif not name:
        shutil.copytree(export, folder)
        _corrupt(folder, case)
    output = tmp_path / "out" / "p.jsonl"
    output.parent.mkdir()
    result = _predict(capsys, str(folder), "--text", "a library", "--output", str(output))
    assert_one_line_error(result, *needles)
    assert list(output.parent.iterdir()) == []


def test_a_format_1_folder_is_still_read(export: Path, predictor: search._serving.Predictor, tmp_path: Path) -> None:
    """Exports made before ensembles (format 1: no weights, no model kinds) predict as before."""
    folder = tmp_path / "v1"
    shutil.copytree(export, folder)
    manifest = json.loads((folder / "export.json").read_text())
    manifest["version"] = 1
    manifest["models"] = [{k: v for k, v in m.items() if k not in ("kind", "weight", "any_length")}
                          for m in manifest["models"]]
    (folder / "export.json").write_text(json.dumps(manifest))
    old = search.load_predictor(folder)
    assert old.manifest.kind == "trial" and [(m.kind, m.weight) for m in old.manifest.models] == [("keras", 1)]
    assert predictor.manifest.models[0].any_length and not old.manifest.models[0].any_length  # padded batches
    np.testing.assert_allclose(old.predict_proba(TEXTS), predictor.predict_proba(TEXTS), atol=1e-5)


INPUT_CASES: dict[str, tuple[str, bytes, list[str]]] = {
    "empty file": (".jsonl", b"", ["docs.jsonl", "no documents"]),
    "blank lines only": (".txt", b"\n  \n", ["docs.txt", "no documents"]),
    "not UTF-8": (".txt", "caf\u00e9 library\n".encode("latin-1"), ["docs.txt", "is not valid UTF-8", "line 1", "expected UTF-8"]),
    "line without text": (".jsonl", b'{"text": "a"}\n{"body": "b"}\n', ["docs.jsonl", "field 'text'", "line 2"]),
    "text not a string": (".jsonl", b'{"text": 3}\n', ["docs.jsonl", "field 'text'", "expected a string"]),
    "not JSON": (".jsonl", b'{"text": "a"\n', ["docs.jsonl", "line 1", "not valid JSON"]),
    "csv without text column": (".csv", b"body\nhello\n", ["docs.csv", "field 'text'", "column"]),
    "unsupported extension": (".pdf", b"%PDF", ["docs.pdf", "unsupported extension"]),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_a_bad_input_file(case: str, export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suffix, data, needles = INPUT_CASES[case]
    source = tmp_path / f"docs{suffix}"
    source.write_bytes(data)
    output = tmp_path / "p.jsonl"
    result = _predict(capsys, str(export), "--input", str(source), "--output", str(output))
    assert_one_line_error(result, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


FLAG_CASES = {
    "threshold 0": (["--threshold", "0"], ["--threshold", "strictly between 0 and 1"]),
    "threshold 1": (["--threshold", "1"], ["--threshold", "strictly between 0 and 1"]),
    "threshold above 1": (["--threshold", "1.5"], ["--threshold", "strictly between 0 and 1"]),
    "threshold negative": (["--threshold", "-0.1"], ["--threshold", "strictly between 0 and 1"]),
    "threshold not a number": (["--threshold", "nan"], ["--threshold", "strictly between 0 and 1"]),
    "top-k 0": (["--top-k", "0"], ["--top-k", "positive integer"]),
    "missing input file": (["--input", "nowhere.jsonl"], ["nowhere.jsonl", "file not found"]),
    "no text and no input": ([], ["one of the arguments --text --input is required"]),
    "output folder missing": (["--output", "no/such/dir/p.jsonl"], ["--output", "does not exist"]),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_a_bad_flag(case: str, export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv, needles = FLAG_CASES[case]
    text = [] if case == "no text and no input" or "--input" in argv else ["--text", "a library"]
    output = [] if "--output" in argv else ["--output", "p.jsonl"]
    result = _predict(capsys, str(export), *text, *argv, *output)
    assert_one_line_error(result, *needles)
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_refuses_without_a_traceback(tmp_path: Path) -> None:
    result = run_cli("search.predict", str(tmp_path), "--text", "a library", "--threshold", "0.5")
    assert_one_line_error(result, str(tmp_path), "not an export")


# -- other backends -------------------------------------------------------------------------------------------------

_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    import search
    predictor = search.load_predictor(sys.argv[1])
    texts = json.loads(sys.argv[2])
    prob = predictor.predict_proba(texts)
    labels = [list(p.labels) for p in predictor.predict(texts, threshold=0.05)]
    print(json.dumps({"backend": keras.backend.backend(), "prob": prob.tolist(), "labels": labels}))
    """
)


@pytest.mark.parametrize("backend", ["jax"])
def test_the_predictor_under_another_backend(backend: str, export: Path,
                                             predictor: search._serving.Predictor) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT, str(export), json.dumps(TEXTS)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    np.testing.assert_allclose(np.array(report["prob"]), predictor.predict_proba(TEXTS), atol=1e-5)
    assert report["labels"] == [list(p.labels) for p in predictor.predict(TEXTS, threshold=0.05)]
