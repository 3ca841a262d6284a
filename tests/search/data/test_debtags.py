from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import pytest

from clihelpers import assert_one_line_error, run_cli
from search.data.debtags import BUNDLED_PATH, build_debtags, split_by_group

PACKAGES = """\
Package: alpha
Version: 1.0
Description: Alpha tool
Description-md5: aaa
Tag: role::program, interface::commandline,
 scope::utility

Package: alpha-doc
Source: alpha (1.0)
Version: 1.0
Description: Alpha docs
Description-md5: bbb
Tag: role::documentation

Package: beta
Version: 2
Description: Beta lib
Description-md5: ccc
Tag: role::shared-lib, devel::library

Package: untagged
Version: 2
Description: No tags
Description-md5: ddd

"""
TRANSLATIONS = """\
Package: alpha
Description-md5: aaa
Description-en: Alpha tool
 Alpha does things.
 .
 Second paragraph.

Package: alpha-doc
Description-md5: bbb
Description-en: Alpha docs
 Documentation for alpha.

Package: beta
Description-md5: ccc
Description-en: Beta lib
 A library.

Package: untagged
Description-md5: ddd
Description-en: No tags
 Nothing.
"""


def _lists(tmp_path: Path) -> Path:
    lists = tmp_path / "lists"
    lists.mkdir()
    base = "deb.debian.org_debian_dists_trixie"
    (lists / f"{base}_main_binary-amd64_Packages.gz").write_bytes(gzip.compress(PACKAGES.encode()))
    (lists / f"{base}_main_i18n_Translation-en").write_text(TRANSLATIONS)
    (lists / f"{base}_InRelease").write_text("Origin: Debian\nSuite: testing\nCodename: trixie\nDate: Mon, 01 Jan 2026\n")
    return lists


def test_build_from_index_files(tmp_path: Path) -> None:
    data = build_debtags(_lists(tmp_path), top_k=3)
    meta, docs = data["meta"], data["documents"]
    assert meta["release"]["codename"] == "trixie"
    assert len(meta["index_files"]) == 2
    assert len(meta["label_names"]) == 3
    ids = {d["id"] for d in docs}
    assert "untagged" not in ids
    alpha = next(d for d in docs if d["id"] == "alpha")
    assert alpha["text"] == "Alpha tool\nAlpha does things.\n\nSecond paragraph."
    assert alpha["labels"] == sorted(set(alpha["labels"]) & set(meta["label_names"]))
    # alpha and alpha-doc share a source package, so they share a split
    splits = {d["id"]: d["split"] for d in docs}
    if "alpha-doc" in splits:
        assert splits["alpha"] == splits["alpha-doc"]


def test_build_cli_missing_translations(tmp_path: Path) -> None:
    lists = _lists(tmp_path)
    next(lists.glob("*Translation-en")).unlink()
    result = run_cli("search.data.debtags", "build", "--lists", str(lists), "--out", str(tmp_path / "o.json.gz"))
    assert_one_line_error(result, "Translation-en")
    assert not (tmp_path / "o.json.gz").exists()


def test_split_by_group_keeps_groups_together() -> None:
    groups = [f"g{i % 97}" for i in range(5000)]
    splits = split_by_group(groups)
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for g, s in zip(groups, splits):
        seen[g].add(s)
    assert all(len(v) == 1 for v in seen.values())
    counts = collections.Counter(splits)
    assert abs(counts["train"] / 5000 - 0.70) < 0.05
    assert split_by_group(groups) == splits  # fixed seed


def test_bundled_file_is_real_debtags() -> None:
    with gzip.open(BUNDLED_PATH, "rt") as fh:
        data = json.load(fh)
    meta, docs = data["meta"], data["documents"]
    assert 25_000 <= len(docs) <= 35_000
    assert len(meta["label_names"]) == 50
    assert meta["release"]["origin"] == "Debian"
    assert all(d["labels"] and set(d["labels"]) <= set(meta["label_names"]) for d in docs)
    by_source: dict[str, set[str]] = collections.defaultdict(set)
    by_text: dict[str, set[str]] = collections.defaultdict(set)
    for d in docs:
        by_source[d["source"]].add(d["split"])
        by_text[d["text"]].add(d["split"])
    assert all(len(v) == 1 for v in by_source.values()), "a source package straddles two splits"
    assert all(len(v) == 1 for v in by_text.values()), "a description appears in two splits"
    frac = collections.Counter(d["split"] for d in docs)
    assert frac["train"] / len(docs) == pytest.approx(0.70, abs=0.01)
