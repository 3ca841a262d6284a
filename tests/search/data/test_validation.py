"""Every bad input gives one line naming the file and field, exit status 2, no traceback."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clihelpers import assert_one_line_error, run_cli
from search._cli import run_main
from search.data import DataWarning, load_dataset
from search.data.__main__ import main as info_main
from search.errors import DataError


def _npz(path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(1, 20, (12, 6)), y_train=np.eye(3, dtype=np.uint8)[np.arange(12) % 3],
                  x_valid=rng.integers(1, 20, (4, 6)), y_valid=np.eye(3, dtype=np.uint8)[np.arange(4) % 3],
                  x_test=rng.integers(1, 20, (4, 6)), y_test=np.eye(3, dtype=np.uint8)[np.arange(4) % 3])
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _info_error(capsys, path: str | Path) -> str:
    code = run_main(info_main, ["info", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


BAD_NPZ = {
    "missing_key": (dict(y_valid=None), ["y_valid", "expected"]),
    "length_mismatch": (dict(y_train=np.eye(3, dtype=np.uint8)[np.arange(11) % 3]), ["y_train", "12", "11"]),
    "labels_not_binary": (dict(y_valid=np.full((4, 3), 2)), ["y_valid", "0/1"]),
    "width_between_splits": (dict(y_valid=np.eye(4, dtype=np.uint8)[np.arange(4) % 4]), ["y_valid", "label widths"]),
    "width_vs_names": (dict(label_names=np.array(["a", "b"])), ["label_names", "one name per label"]),
    "negative_ids": (dict(x_train=-np.ones((12, 6), dtype=np.int64)), ["x_train", "negative"]),
    "ids_beyond_embedding": (dict(embedding_matrix=np.zeros((10, 4), np.float32)), ["beyond the embedding", "x_train"]),
    "nan_embedding": (dict(embedding_matrix=np.full((30, 4), np.nan, np.float32)), ["embedding_matrix", "NaN"]),
    "empty_split": (dict(x_valid=np.zeros((0, 6), np.int64), y_valid=np.zeros((0, 3), np.uint8)),
                    ["x_valid", "empty split"]),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz(case: str, tmp_path: Path, capsys) -> None:
    overrides, needles = BAD_NPZ[case]
    path = _npz(tmp_path / f"{case}.npz", **overrides)
    line = _info_error(capsys, path)
    assert str(path) in line
    for needle in needles:
        assert needle in line, line


def test_missing_file_and_unknown_name_and_extension(tmp_path: Path, capsys) -> None:
    assert "file not found" in _info_error(capsys, tmp_path / "nope.npz")
    assert "unknown dataset name" in _info_error(capsys, "imdb")
    (tmp_path / "d.parquet").write_text("x")
    assert "unsupported extension '.parquet'" in _info_error(capsys, tmp_path / "d.parquet")


def test_text_files_without_columns(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text("body,labels\nhello,a\n")
    assert "field 'text'" in _info_error(capsys, csv)
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps({"text": "hello"}) + "\n")
    assert "field 'labels'" in _info_error(capsys, jsonl)
    jsonl.write_text("{not json\n")
    assert "line 1" in _info_error(capsys, jsonl)


def test_text_file_empty_split(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text("text,labels,split\nhello world,a,train\nbye,b,valid\n")
    assert "empty split 'test'" in _info_error(capsys, csv)


def test_warnings_do_not_fail(tmp_path: Path) -> None:
    x = np.arange(1, 13 * 6 + 1).reshape(13, 6)[:12]
    y = np.zeros((12, 3), np.uint8)
    y[:, 0] = 1  # labels 1 and 2 appear in no training document
    path = _npz(tmp_path / "w.npz", x_train=x, y_train=y, x_valid=x[:4])  # the same documents in train and valid
    with pytest.warns(DataWarning) as record:
        ds = load_dataset(path)
    messages = " | ".join(str(w.message) for w in record)
    assert "appear in no training document" in messages
    assert "4 document(s) appear in both the train and valid splits" in messages
    assert ds.n_labels == 3


def test_error_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(_npz(tmp_path / "e.npz", y_valid=None))
    assert exc.value.field == "y_valid"


def test_cli_subprocess_exit_status(tmp_path: Path) -> None:
    result = run_cli("search.data", "info", str(tmp_path / "missing.csv"))
    assert_one_line_error(result, "missing.csv", "file not found")


def test_info_cli_json() -> None:
    result = run_cli("search.data", "info", "debtags50", "--json", "--max-len", "64")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["labels"] == 50 and set(info["documents"]) == {"train", "valid", "test"}
    assert len(info["most_frequent"]) == 10 and len(info["least_frequent"]) == 10
    assert info["most_frequent"][0][1] >= info["most_frequent"][-1][1]
    assert {"p5", "p50", "p95"} <= set(info["token_length_percentiles"])
