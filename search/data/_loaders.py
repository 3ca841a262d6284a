"""``load_dataset``: one entry point for the bundled dataset, ``.npz`` files and ``.csv`` / ``.jsonl`` text."""
from __future__ import annotations

import collections
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from search.data._cache import cache_dir, file_digest, fingerprint, load_entry, save_entry
from search.data._dataset import SPLITS, Dataset, DataSettings, warn
from search.data._npz import load_npz
from search.data._textfiles import Record, assign_splits, read_bundled, read_text_file
from search.data._validate import validate_arrays
from search.data._vectorize import build_vocabulary, texts_to_ids, tokenizer
from search.errors import DataError

__all__ = ["load_dataset", "load_texts", "resolve_source", "BUNDLED", "SUPPORTED_EXTENSIONS"]

BUNDLED = {"debtags50": Path(__file__).with_name("bundled") / "debtags50.json.gz"}
SUPPORTED_EXTENSIONS = (".npz", ".csv", ".jsonl")
#: Largest token-id arrays (all splits together) vectorising may build.
MAX_TOKEN_BYTES = 4 * 2**30
_TEXT_FORMAT = 2  # bump when vectorising changes: old cache entries are then ignored


def resolve_source(spec: str | os.PathLike) -> tuple[str, Path]:
    """A dataset name or path -> (kind, file). Kinds: 'bundled', 'npz', 'text'."""
    text = str(spec)
    if text in BUNDLED:
        return "bundled", BUNDLED[text]
    path = Path(text)
    looks_like_path = os.sep in text or path.suffix != ""
    if not looks_like_path:
        raise DataError(f"unknown dataset name; expected one of {', '.join(sorted(BUNDLED))} or a path to a "
                        f"{'/'.join(SUPPORTED_EXTENSIONS)} file", source=text)
    if path.suffix not in SUPPORTED_EXTENSIONS:
        raise DataError(f"unsupported extension '{path.suffix}'; expected one of {', '.join(SUPPORTED_EXTENSIONS)}",
                        source=text)
    if not path.is_file():
        raise DataError("file not found; expected an existing dataset file", source=text)
    return ("npz" if path.suffix == ".npz" else "text"), path


def load_dataset(spec: str | os.PathLike = "debtags50", settings: DataSettings | None = None, *,
                 include_test: bool = False, cache: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset by bundled name or path.

    The test split is read only with ``include_test=True`` (the report); a search never asks for it.
    Text is vectorised once per (file content, settings) and cached on disk, so trials and workers
    never re-tokenise.
    """
    settings = settings or DataSettings()
    kind, path = resolve_source(spec)
    digest = file_digest(path)
    if kind == "npz":
        fp = fingerprint("npz", digest, settings.limit)
        return load_npz(path, settings, digest, fp, include_test)
    return _load_text(kind, path, digest, settings, include_test, cache_dir(cache))


def _load_text(kind: str, path: Path, digest: str, settings: DataSettings, include_test: bool,
               root: Path) -> Dataset:
    key_settings = {"vocab_size": settings.vocab_size, "max_len": settings.max_len,
                    "split_seed": settings.split_seed}
    key = fingerprint("text", _TEXT_FORMAT, digest, key_settings)
    names = ["x_train", "y_train", "x_valid", "y_valid"] + (["x_test", "y_test"] if include_test else [])
    hit = load_entry(root, "arrays", key, names)
    if hit is None:
        arrays, meta = _vectorise(kind, path, settings)
        save_entry(root, "arrays", key, arrays, meta)
        arrays = {n: arrays[n] for n in names}
    else:
        arrays, meta = hit
        for w in meta.get("warnings", []):
            warn(w)
    if settings.limit is not None:
        arrays["x_train"], arrays["y_train"] = arrays["x_train"][: settings.limit], arrays["y_train"][: settings.limit]
    name = path.name.split(".")[0] if kind == "bundled" else path.stem
    return Dataset(
        name=name, source=str(path), label_names=meta["label_names"], vocabulary=meta["vocabulary"],
        fingerprint=fingerprint(key, settings.limit),
        x_train=arrays["x_train"], y_train=arrays["y_train"], x_valid=arrays["x_valid"], y_valid=arrays["y_valid"],
        x_test=arrays.get("x_test"), y_test=arrays.get("y_test"),
        meta={k: v for k, v in meta.items() if k not in ("vocabulary", "label_names")} | {"file_sha256": digest},
    )


def load_texts(spec: str | os.PathLike, settings: DataSettings | None = None) -> dict[str, list[str]] | None:
    """The raw text of every document, by split, in the order of :func:`load_dataset`'s rows (the same
    split assignment and ``limit``); None for an ``.npz`` file, which holds token ids only.

    The TF-IDF reference reads words, not the deep models' truncated, vocabulary-capped token ids: what a
    user gets from scikit-learn on the same documents without the service.
    """
    settings = settings or DataSettings()
    kind, path = resolve_source(spec)
    if kind == "npz":
        return None
    records, _ = _read_records(kind, path, settings)
    texts = {s: [r.text for r in records if r.split == s] for s in SPLITS}
    if settings.limit is not None:
        texts["train"] = texts["train"][: settings.limit]
    return texts


def _read_records(kind: str, path: Path, settings: DataSettings) -> tuple[list[Record], dict]:
    """Every record with its split, and the bundled file's metadata (empty for a text file)."""
    if kind == "bundled":
        return read_bundled(path)
    records = read_text_file(path)
    assign_splits(records, settings.split_seed, str(path))
    return records, {}


def _vectorise(kind: str, path: Path, settings: DataSettings) -> tuple[dict[str, np.ndarray], dict]:
    source = str(path)
    records, extra = _read_records(kind, path, settings)
    if kind == "bundled":
        label_names = list(extra["label_names"])
    else:
        counts = collections.Counter(label for r in records for label in r.labels)
        label_names = sorted(counts)
    if not label_names:
        raise DataError("no labels in any document; expected at least one label", source=source, field="labels")
    by_split: dict[str, list[Record]] = {s: [r for r in records if r.split == s] for s in SPLITS}
    for split in SPLITS:
        if not by_split[split]:
            raise DataError(f"empty split '{split}'; expected at least one document in each of train, valid, test",
                            source=source, field="split")
    _check_array_size(len(records), settings.max_len)
    warnings_seen = _text_warnings(by_split, source)
    analyse = tokenizer()
    tokens = {s: [analyse(r.text) for r in by_split[s]] for s in SPLITS}
    vocabulary = build_vocabulary(tokens["train"], settings.vocab_size)
    index = {name: i for i, name in enumerate(label_names)}
    arrays: dict[str, np.ndarray] = {}
    lengths: dict[str, list[float]] = {}
    for split in SPLITS:
        x, raw_len = texts_to_ids(tokens[split], vocabulary, settings.max_len)
        y = np.zeros((len(by_split[split]), len(label_names)), dtype=np.uint8)
        for row, rec in enumerate(by_split[split]):
            for label in rec.labels:
                if label in index:
                    y[row, index[label]] = 1
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        lengths[split] = np.percentile(raw_len, [5, 25, 50, 75, 95, 99]).tolist() if len(raw_len) else []
    with_warnings = _capture_warnings(lambda: validate_arrays(arrays, source, label_names=label_names,
                                                              embedding_matrix=None, check_duplicates=False))
    meta = {"label_names": label_names, "vocabulary": vocabulary, "token_length_percentiles": lengths,
            "percentiles": [5, 25, 50, 75, 95, 99], "warnings": warnings_seen + with_warnings,
            "settings": settings.as_dict() | {"limit": None}}
    if extra:
        meta["dataset"] = {k: v for k, v in extra.items() if k != "label_names"}
    return arrays, meta


def _check_array_size(documents: int, max_len: int) -> None:
    """Refuse a --max-len whose token arrays would not fit in memory, before allocating them.

    The arrays are allocated lazily, so an oversized request does not fail at once but later, while they
    are filled or written to the cache; the bound keeps every worker's copy of the data a small part of a
    machine's memory.
    """
    needed = documents * max_len * np.dtype(np.int32).itemsize
    if needed > MAX_TOKEN_BYTES:
        fits = max(1, MAX_TOKEN_BYTES // (documents * np.dtype(np.int32).itemsize))
        raise DataError(f"got {max_len:,}: {documents:,} documents x {max_len:,} tokens would take "
                        f"{needed / 2**30:,.1f} GiB; expected at most {fits:,} for this dataset "
                        f"({MAX_TOKEN_BYTES // 2**30} GiB of token ids)", source="--max-len")


def _text_warnings(by_split: dict[str, list[Record]], source: str) -> list[str]:
    """Duplicate documents across splits, judged on the raw text (before truncation)."""
    texts = {s: {r.text.strip() for r in by_split[s]} for s in SPLITS}
    out = []
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        shared = len(texts[a] & texts[b])
        if shared:
            out.append(f"{source}: {shared} document(s) appear in both the {a} and {b} splits")
    for message in out:
        warn(message)
    return out


def _capture_warnings(fn: Callable[[], object]) -> list[str]:
    import warnings

    from search.data._dataset import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        fn()
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    for message in messages:
        warn(message)
    return messages
