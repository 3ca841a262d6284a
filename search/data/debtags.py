"""Build the bundled ``debtags50`` dataset from the Debian archive's index files.

Usage::

    apt-get -o Acquire::Languages=en update        # fetches Packages and Translation-en
    python -m search.data.debtags build [--lists /var/lib/apt/lists] [--out search/data/bundled/debtags50.json.gz]

Each document is one binary package of the ``main`` component: its English description (short line plus
long description, from Translation-en) labelled with its Debtags (the ``Tag:`` field of Packages), kept
to the 50 most frequent tags. Packages built from one source package often share their text, so the
70/15/15 split is made by source package with a fixed seed: no source straddles two splits.
"""
from __future__ import annotations

import collections
import datetime as _dt
import gzip
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search._cli import CliParser, run_main
from search.data._deb822 import iter_stanzas, read_index_text
from search.errors import DataError

__all__ = ["build_debtags", "write_dataset", "check_out", "split_by_group", "BUNDLED_PATH", "TOP_K", "SPLIT_SEED"]

BUNDLED_PATH = Path(__file__).with_name("bundled") / "debtags50.json.gz"
DEFAULT_LISTS = Path("/var/lib/apt/lists")
TOP_K = 50
SPLIT_SEED = 20221113  # the seed question's date
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


def _find_indexes(lists: Path, codename: str | None) -> tuple[list[Path], list[Path], Path | None]:
    packages = sorted(lists.glob("*_dists_*_main_binary-*_Packages*"))
    translations = sorted(lists.glob("*_dists_*_main_i18n_Translation-en*"))
    releases = sorted(lists.glob("*_dists_*_InRelease")) + sorted(lists.glob("*_dists_*_Release"))

    def dist_of(p: Path) -> str:
        m = re.search(r"_dists_([^_]+)_", p.name)
        return m.group(1) if m else ""

    if codename is None:
        # The release itself: the dist whose name has no '-' suffix (bookworm, not bookworm-updates).
        dists = sorted({dist_of(p) for p in packages if "-" not in dist_of(p)})
        if not dists:
            raise DataError("no main Packages index found; run `apt-get -o Acquire::Languages=en update`",
                            source=str(lists))
        codename = dists[0]
    packages = [p for p in packages if dist_of(p) == codename]
    translations = [p for p in translations if dist_of(p) == codename]
    release = next((p for p in releases if dist_of(p) == codename), None)
    if not packages:
        raise DataError(f"no Packages index for release '{codename}'", source=str(lists))
    if not translations:
        raise DataError(
            f"no Translation-en index for release '{codename}'; run `apt-get -o Acquire::Languages=en update`",
            source=str(lists),
        )
    return packages, translations, release


def _release_info(release: Path | None) -> dict[str, str]:
    if release is None:
        return {}
    info = {}
    for line in release.read_text(errors="replace").splitlines():
        for key in ("Origin", "Suite", "Version", "Codename", "Date", "Description"):
            if line.startswith(key + ":"):
                info[key.lower()] = line.partition(":")[2].strip()
    return info


def _clean_description(desc: str) -> str:
    first, _, rest = desc.partition("\n")
    paragraphs = []
    for line in rest.splitlines():
        line = line.rstrip()
        paragraphs.append("" if line.strip() == "." else line.strip())
    body = "\n".join(paragraphs).strip()
    return (first.strip() + "\n" + body).strip()


def split_by_group(groups: Sequence[str], fractions: Sequence[float] = SPLIT_FRACTIONS,
                   seed: int = SPLIT_SEED) -> list[str]:
    """Assign each item a split so that items sharing a group land in one split.

    Groups are shuffled with a fixed seed and filled into train, valid, test in turn until each holds its
    fraction of the *documents*. (scikit-learn's GroupShuffleSplit draws a fraction of the *groups*, and
    sources differ widely in size, so the document fractions would drift; hence this small function.)
    """
    sizes = collections.Counter(groups)
    order = sorted(sizes)
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    total = len(groups)
    bounds = np.cumsum(fractions) * total
    assign: dict[str, str] = {}
    names = ("train", "valid", "test")
    filled = 0
    for group in order:
        idx = int(np.searchsorted(bounds, filled, side="right"))
        assign[group] = names[min(idx, len(names) - 1)]
        filled += sizes[group]
    return [assign[g] for g in groups]


def _split_groups(docs: list[dict[str, Any]]) -> list[str]:
    """Group key per document: its source package, with sources that share a description merged, so no
    text (e.g. a transitional package's stock description) lands in two splits."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first_source_of_text: dict[str, str] = {}
    for d in docs:
        other = first_source_of_text.setdefault(d["text"], d["source"])
        ra, rb = find(d["source"]), find(other)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(d["source"]) for d in docs]


def build_debtags(lists: Path = DEFAULT_LISTS, codename: str | None = None, top_k: int = TOP_K) -> dict[str, Any]:
    """Read the indexes and return the dataset as a JSON-ready dict (``meta`` + ``documents``)."""
    packages_files, translation_files, release = _find_indexes(Path(lists), codename)
    translations: dict[tuple[str, str], str] = {}
    for path in translation_files:
        for st in iter_stanzas(read_index_text(path)):
            if "Description-en" in st:
                translations[(st.get("Package", ""), st.get("Description-md5", ""))] = st["Description-en"]

    records: dict[str, dict[str, Any]] = {}
    for path in packages_files:
        for st in iter_stanzas(read_index_text(path)):
            tags = [t.strip() for t in st.get("Tag", "").replace("\n", " ").split(",") if t.strip()]
            name = st.get("Package")
            if not tags or not name or name in records:
                continue
            desc = translations.get((name, st.get("Description-md5", "")))
            if desc is None:
                # Packages files may carry the full description themselves.
                desc = st.get("Description", "") if "\n" in st.get("Description", "") else None
            if not desc:
                continue
            source = st.get("Source", name).split(" ")[0]
            records[name] = {"id": name, "source": source, "text": _clean_description(desc), "tags": tags}

    counts = collections.Counter(t for r in records.values() for t in r["tags"])
    top = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]]
    top_set = set(top)
    docs = []
    for name in sorted(records):
        r = records[name]
        labels = [t for t in r["tags"] if t in top_set]
        if labels:
            docs.append({"id": r["id"], "source": r["source"], "text": r["text"], "labels": sorted(labels)})
    if not docs:
        # Written out, an empty result would replace the bundled dataset (the default --out) with one no
        # search can use.
        raise DataError(f"no package in {len(packages_files)} Packages index(es) has both Debtags and an English "
                        "description; expected at least one tagged, described package (nothing written)",
                        source=str(lists), field="Tag")
    splits = split_by_group(_split_groups(docs))
    for d, s in zip(docs, splits, strict=True):
        d["split"] = s

    index_dates = {}
    for p in packages_files + translation_files:
        index_dates[p.name] = _dt.datetime.fromtimestamp(p.stat().st_mtime, _dt.UTC).isoformat(timespec="seconds")
    split_counts = collections.Counter(splits)
    meta = {
        "name": "debtags50",
        "description": "Debian package descriptions labelled with their Debtags (top 50 tags)",
        "release": _release_info(release),
        "index_files": index_dates,
        "label_names": top,
        "label_counts": {t: counts[t] for t in top},
        "documents": len(docs),
        "split_counts": {k: split_counts[k] for k in ("train", "valid", "test")},
        "split_rule": f"by source package (sources sharing a description kept together), "
                      f"fractions {list(SPLIT_FRACTIONS)} of documents, seed {SPLIT_SEED}",
        "licence": "Debian package descriptions and Debtags: from the Debian archive (DFSG-free packages of main); "
                   "each description is the package maintainer's text under the package's licence",
    }
    return {"meta": meta, "documents": docs}


def check_out(out: Path) -> None:
    """Refuse an --out that cannot be written before the indexes are read (which takes a while).

    The folders it names need not exist (they are made when writing), but the nearest existing one must
    be a writable folder.
    """
    if out.is_dir():
        raise DataError("is a folder; expected the path of the .json.gz file to write", source=f"--out {out}")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"'{parent}' is not a folder; expected a path inside a folder", source=f"--out {out}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"folder '{parent}' is not writable; expected a writable folder", source=f"--out {out}")


def write_dataset(data: dict[str, Any], out: Path) -> None:
    """Write atomically: a temporary file beside ``out``, renamed over it; on failure nothing is left."""
    check_out(out)
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp",
                                         delete=False) as fh:
            tmp = Path(fh.name)
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9, mtime=0) as gz:
                gz.write(raw)
        os.chmod(tmp, 0o644)  # NamedTemporaryFile makes it private; a dataset file is for every user
        tmp.replace(out)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise DataError(f"cannot be written ({exc.strerror or exc}); expected a writable file path",
                        source=f"--out {out}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m search.data.debtags", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    b = sub.add_parser("build", help="build the dataset file from apt's index files")
    b.add_argument("--lists", type=Path, default=DEFAULT_LISTS, help="apt's lists folder (default %(default)s)")
    b.add_argument("--codename", default=None, help="release codename (default: the one found, e.g. bookworm)")
    b.add_argument("--out", type=Path, default=BUNDLED_PATH, help="output file (default: the bundled file)")
    args = parser.parse_args(argv)
    check_out(args.out)
    data = build_debtags(args.lists, args.codename)
    m = data["meta"]
    if not all(m["split_counts"].values()):
        # The loader refuses a dataset with an empty split: writing it would only move the error to the
        # next search (and, with the default --out, lose the bundled dataset).
        raise DataError(f"the {m['documents']} document(s) found give splits {m['split_counts']}; expected "
                        "documents in each of train, valid and test (nothing written)", source=str(args.lists))
    write_dataset(data, args.out)
    avg = sum(len(d["labels"]) for d in data["documents"]) / max(1, m["documents"])
    print(f"wrote {args.out}: {m['documents']} documents, {len(m['label_names'])} labels, "
          f"{avg:.2f} labels/document, splits {m['split_counts']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
