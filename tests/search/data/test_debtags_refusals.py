"""The dataset builder refuses damaged indexes, an unusable --out and an empty result in one line (exit
2, no traceback), and leaves the output folder as it was: no partial file, no temporary file."""
from __future__ import annotations

import gzip
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest

from clihelpers import assert_one_line_error, run_cli
from search._cli import run_main
from search.data import debtags
from search.data.debtags import main as build_main

BASE = "deb.debian.org_debian_dists_trixie"
PACKAGES_NAME = f"{BASE}_main_binary-amd64_Packages"
TRANSLATION_NAME = f"{BASE}_main_i18n_Translation-en"
# Enough packages (one source each) that every split gets documents.
PACKAGES = "".join(f"Package: p{i}\nDescription: P{i}\nDescription-md5: m{i}\nTag: role::program, use::t{i % 3}\n\n"
                   for i in range(30))
TRANSLATIONS = "".join(f"Package: p{i}\nDescription-md5: m{i}\nDescription-en: P{i} tool\n Does thing {i}.\n\n"
                       for i in range(30))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"/") for p in sorted(folder.rglob("*"))}


def _lists(folder: Path, packages: bytes | None = None, name: str = PACKAGES_NAME + ".gz") -> Path:
    lists = folder / "lists"
    lists.mkdir()
    (lists / name).write_bytes(gzip.compress(PACKAGES.encode()) if packages is None else packages)
    (lists / TRANSLATION_NAME).write_text(TRANSLATIONS)
    return lists


def _truncated_gz() -> bytes:
    return gzip.compress(PACKAGES.encode())[:60]


def _flipped_gz() -> bytes:
    data = bytearray(gzip.compress(PACKAGES.encode()))
    data[-6] ^= 0xFF  # the CRC32 trailer no longer matches
    return bytes(data)


# name -> (Packages file name, its bytes, what the one error line must contain)
BAD_INDEXES: dict[str, tuple[str, Callable[[], bytes], list[str]]] = {
    "truncated_gz": (PACKAGES_NAME + ".gz", _truncated_gz, [PACKAGES_NAME + ".gz", "cannot be decompressed as .gz"]),
    "bad_crc_gz": (PACKAGES_NAME + ".gz", _flipped_gz, [PACKAGES_NAME + ".gz", "cannot be decompressed as .gz"]),
    "not_gzip": (PACKAGES_NAME + ".gz", lambda: PACKAGES.encode(), ["cannot be decompressed as .gz"]),
    "truncated_xz": (PACKAGES_NAME + ".xz", lambda: lzma.compress(PACKAGES.encode())[:40],
                     ["cannot be decompressed as .xz"]),
    "latin1_text": (PACKAGES_NAME + ".gz", lambda: gzip.compress(("Maintainer: Jos\xe9\n" + PACKAGES).encode("latin-1")),
                    ["byte 0xe9 at line 1", "expected UTF-8"]),
    "no_tags": (PACKAGES_NAME + ".gz",
                lambda: gzip.compress("".join(line + "\n" for line in PACKAGES.splitlines()
                                              if not line.startswith("Tag:")).encode()),
                ["field 'Tag'", "no package", "expected at least one"]),
    "too_few_documents": (PACKAGES_NAME + ".gz", lambda: gzip.compress(PACKAGES.split("\n\n")[0].encode() + b"\n"),
                          ["'valid': 0", "expected documents in each of train, valid and test"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INDEXES))
def test_bad_index_is_refused_and_nothing_written(case: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    name, make, needles = BAD_INDEXES[case]
    lists = _lists(tmp_path, make(), name)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "debtags50.json.gz").write_bytes(b"the previous dataset")  # what a refusal must not replace
    before = snapshot(tmp_path)
    assert run_main(build_main, ["build", "--lists", str(lists), "--out", str(out_dir / "debtags50.json.gz")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err, captured
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)
    assert snapshot(tmp_path) == before


def _out_is_folder(tmp: Path) -> Path:
    (tmp / "out.json.gz").mkdir()
    return tmp / "out.json.gz"


def _out_under_a_file(tmp: Path) -> Path:
    (tmp / "plain").write_text("a file")
    return tmp / "plain" / "out.json.gz"


BAD_OUTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "is_a_folder": (_out_is_folder, "is a folder; expected the path of the .json.gz file"),
    "under_a_file": (_out_under_a_file, "is not a folder; expected a path inside a folder"),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTS))
def test_unusable_out_is_refused(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, fragment = BAD_OUTS[case]
    lists = _lists(tmp_path)
    out = make(tmp_path)
    before = snapshot(tmp_path)
    assert run_main(build_main, ["build", "--lists", str(lists), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --out {out}: ") and fragment in err, err
    assert snapshot(tmp_path) == before


def test_write_failure_leaves_no_temporary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lists = _lists(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "d.json.gz").write_bytes(b"the previous dataset")
    before = snapshot(tmp_path)

    def disk_full(self: object, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(debtags.gzip.GzipFile, "write", disk_full)
    assert run_main(build_main, ["build", "--lists", str(lists), "--out", str(out_dir / "d.json.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out_dir / 'd.json.gz'}: cannot be written (No space left on device)"), err
    assert snapshot(tmp_path) == before


def test_build_writes_a_loadable_file(tmp_path: Path) -> None:
    from search.data._textfiles import read_bundled

    lists = _lists(tmp_path)
    out = tmp_path / "new" / "d.json.gz"
    assert run_main(build_main, ["build", "--lists", str(lists), "--out", str(out)]) == 0
    records, meta = read_bundled(out)
    assert len(records) == 30 and {r.split for r in records} == {"train", "valid", "test"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["d.json.gz"]  # the temporary file is gone


def test_corrupt_index_in_a_subprocess(tmp_path: Path) -> None:
    lists = _lists(tmp_path, _truncated_gz())
    before = snapshot(tmp_path)
    result = run_cli("search.data.debtags", "build", "--lists", str(lists), "--out", str(tmp_path / "o.json.gz"))
    assert_one_line_error(result, PACKAGES_NAME + ".gz", "cannot be decompressed as .gz")
    assert snapshot(tmp_path) == before
