"""Dataset files that are not what they claim to be, and settings too large to allocate: one line naming
the file (or flag) and field, exit status 2, no traceback, nothing written (the folder, cache included,
byte for byte as it was)."""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from clihelpers import assert_one_line_error, run_cli
from search._cli import run_main
from search.data import DataSettings, load_dataset
from search.data.__main__ import main as info_main

ROWS = [{"text": f"word{i % 7} common text {i}", "labels": [f"l{i % 3}"]} for i in range(40)]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} | {
        str(p.relative_to(folder)) + "/": b"" for p in folder.rglob("*") if p.is_dir()}


def _csv_text() -> str:
    return "text,labels\n" + "".join(f"{r['text']},{r['labels'][0]}\n" for r in ROWS)


def _jsonl_text(rows: list[dict] = ROWS) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _arrays(**overrides: np.ndarray | None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.eye(3, dtype=np.uint8)
    arrays = dict(x_train=rng.integers(1, 20, (12, 6)), y_train=y[np.arange(12) % 3],
                  x_valid=rng.integers(1, 20, (4, 6)), y_valid=y[np.arange(4) % 3],
                  x_test=rng.integers(1, 20, (4, 6)), y_test=y[np.arange(4) % 3])
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


def _npz_bytes(**overrides: np.ndarray | None) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **_arrays(**overrides))
    return buffer.getvalue()


def _object_array_npz() -> bytes:
    # np.savez pickles object arrays; the loader must refuse them without unpickling.
    return _npz_bytes(x_train=np.array([[1, "a", None]] * 12, dtype=object))


def _corrupt_member_npz() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, array in _arrays().items():
            member = io.BytesIO()
            np.save(member, array)
            zf.writestr(f"{name}.npy", member.getvalue())
    data = bytearray(buffer.getvalue())
    start = data.index(b"x_valid.npy") + len("x_valid.npy") + 20  # inside x_valid's stored bytes
    data[start:start + 40] = bytes(40)  # the CRC check fails when the member is read
    return bytes(data)


def _npy_renamed() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(10))
    return buffer.getvalue()


# name -> (file name, its bytes, what the one error line must contain besides the file name)
BAD_FILES: dict[str, tuple[str, Callable[[], bytes], list[str]]] = {
    "utf16_csv": ("d.csv", lambda: _csv_text().encode("utf-16"), ["UTF-16", "expected UTF-8"]),
    "utf16_jsonl_without_bom": ("d.jsonl", lambda: _jsonl_text().encode("utf-16-le"), ["NUL byte", "line 1"]),
    "latin1_csv": ("d.csv", lambda: (_csv_text() + "caf\xe9,l1\n").encode("latin-1"),
                   ["byte 0xe9", f"line {len(ROWS) + 2}", "byte offset", "expected UTF-8"]),
    "binary_jsonl": ("d.jsonl", lambda: bytes(range(128, 256)) * 4, ["byte 0x80", "line 1", "byte offset 0"]),
    "binary_csv": ("d.csv", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["NUL byte", "line 3", "byte offset 8"]),
    "json_object_as_text": ("d.jsonl", lambda: _jsonl_text([{"text": {"title": "a"}, "labels": ["x"]}] + ROWS).encode(),
                            ["field 'text'", "line 1", "got a JSON object; expected a string"]),
    "json_list_as_text": ("d.jsonl", lambda: _jsonl_text(ROWS + [{"text": ["a"], "labels": ["x"]}]).encode(),
                          ["field 'text'", f"line {len(ROWS) + 1}", "JSON array"]),
    "npz_object_array": ("d.npz", _object_array_npz, ["field 'x_train'", "Python objects"]),
    "npz_string_array": ("d.npz", lambda: _npz_bytes(x_train=np.array([["a", "b"]] * 12)),
                         ["field 'x_train'", "dtype <U1", "integer token ids"]),
    "npz_string_labels": ("d.npz", lambda: _npz_bytes(y_train=np.array([["0", "1", "0"]] * 12)),
                          ["field 'y_train'", "dtype <U1"]),
    "npz_not_a_zip": ("d.npz", lambda: b"x_train,y_train\n1,0\n", ["not a complete zip archive"]),
    "npz_is_a_npy": ("d.npz", _npy_renamed, ["not a complete zip archive"]),
    "npz_truncated": ("d.npz", lambda: _npz_bytes()[:300], ["not a complete zip archive"]),
    "npz_corrupt_member": ("d.npz", _corrupt_member_npz, ["field 'x_valid'", "cannot be read"]),
    "npz_id_beyond_int32": ("d.npz", lambda: _npz_bytes(x_train=np.full((12, 6), 2**31, dtype=np.int64)),
                            ["field 'x_train'", "2147483648", "int32"]),
    "npz_id_beyond_int64_float": ("d.npz", lambda: _npz_bytes(x_valid=np.full((4, 6), 1e30)),
                                  ["field 'x_valid'", "too large"]),
    "npz_names_not_a_list": ("d.npz", lambda: _npz_bytes(label_names=np.array("abc")),
                             ["field 'label_names'", "1-D"]),
    "npz_no_tokens": ("d.npz", lambda: _npz_bytes(x_train=np.zeros((12, 0), np.int64)),
                      ["field 'x_train'", "at least one token"]),
    "npz_lengths_differ": ("d.npz", lambda: _npz_bytes(x_valid=np.ones((4, 9), np.int64)),
                           ["field 'x_valid'", "tokens per document differ"]),
}


def _info_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = run_main(info_main, argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err and captured.out == "", captured
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_dataset_file(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    name, make, needles = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(make())
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    before = snapshot(tmp_path)
    line = _info_error(capsys, ["info", str(path)])
    assert str(path) in line
    for needle in needles:
        assert needle in line, (needle, line)
    assert snapshot(tmp_path) == before  # no cache entry, nothing else


SETTINGS = {
    "max_len_beyond_bound": (["--max-len", str(10**9)], "--max-len", "expected an integer from 1 to 100,000"),
    "max_len_past_any_array": (["--max-len", str(10**30)], "--max-len", "got 1000000000000000000000000000000"),
    "max_len_zero": (["--max-len", "0"], "--max-len", "expected an integer from 1"),
    "vocab_beyond_bound": (["--vocab-size", str(10**12)], "--vocab-size", "expected an integer from 3 to 10,000,000"),
    "vocab_too_small": (["--vocab-size", "2"], "--vocab-size", "got 2"),
}


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_settings_name_their_flag(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    flags, flag, fragment = SETTINGS[case]
    path = tmp_path / "d.csv"
    path.write_text(_csv_text())
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    before = snapshot(tmp_path)
    line = _info_error(capsys, ["info", str(path), *flags])
    assert line.startswith(f"error: {flag}: ") and "settings" not in line, line
    assert fragment in line, line
    assert snapshot(tmp_path) == before


def test_max_len_that_would_not_fit_in_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import search.data._loaders as loaders

    path = tmp_path / "d.csv"
    path.write_text(_csv_text())
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    # 40 documents x 100 tokens x 4 bytes = 16,000 bytes: over a bound of 8,000, which fits 50 tokens
    monkeypatch.setattr(loaders, "MAX_TOKEN_BYTES", 8000)
    before = snapshot(tmp_path)
    line = _info_error(capsys, ["info", str(path), "--max-len", "100"])
    assert line.startswith("error: --max-len: got 100: 40 documents x 100 tokens"), line
    assert "expected at most 50 for this dataset" in line
    assert snapshot(tmp_path) == before


def test_long_csv_field_and_byte_order_mark_load(tmp_path: Path) -> None:
    """A document longer than the csv module's default field limit (128 KiB) is a document, and a UTF-8
    byte-order mark (as spreadsheets save) does not hide the header's first column."""
    path = tmp_path / "long.csv"
    long_text = "lengthy " * 40_000  # 320,000 characters in one field
    path.write_bytes(b"\xef\xbb\xbf" + (_csv_text() + f'"{long_text}",l0\n').encode())
    ds = load_dataset(path, DataSettings(max_len=16), include_test=True, cache=tmp_path / "cache")
    assert sum(ds.sizes().values()) == len(ROWS) + 1
    assert ds.seq_len == 16


@pytest.mark.parametrize("case", ["utf16_csv", "npz_object_array", "npz_not_a_zip"])
def test_bad_file_in_a_subprocess(case: str, tmp_path: Path) -> None:
    name, make, needles = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(make())
    before = snapshot(tmp_path)
    result = run_cli("search.data", "info", str(path), env={"SEARCH_CACHE_DIR": str(tmp_path / "cache")})
    assert_one_line_error(result, str(path), *needles)
    assert snapshot(tmp_path) == before


def test_max_len_in_a_subprocess(tmp_path: Path) -> None:
    result = run_cli("search.data", "info", "debtags50", "--max-len", str(10**9),
                     env={"SEARCH_CACHE_DIR": str(tmp_path / "cache")})
    assert_one_line_error(result, "--max-len", "expected an integer from 1 to 100,000")
    assert not (tmp_path / "cache").exists()
