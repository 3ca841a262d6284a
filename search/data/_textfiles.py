"""Text sources: ``.csv`` / ``.jsonl`` files and the bundled ``debtags50`` file, read into records."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.data._dataset import SPLITS
from search.data._decode import read_text
from search.errors import DataError

__all__ = ["Record", "read_text_file", "read_bundled", "assign_splits"]

TEXT_COLUMN, LABELS_COLUMN, SPLIT_COLUMN = "text", "labels", "split"
_SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
                  "dev": "valid", "test": "test", "testing": "test"}


@dataclass
class Record:
    text: str
    labels: list[str]
    split: str | None


def _parse_labels(value: object, source: str, where: str) -> list[str]:
    if isinstance(value, list):
        if not all(isinstance(v, (str, int)) for v in value):
            raise DataError(f"{where}: got a list with non-string items; expected a list of label names",
                            source=source, field=LABELS_COLUMN)
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{where}: got {text[:40]!r}; expected a JSON list or ';'-separated labels",
                                source=source, field=LABELS_COLUMN) from None
            return _parse_labels(parsed, source, where)
        return [p.strip() for p in text.split(";") if p.strip()]
    raise DataError(f"{where}: got {type(value).__name__}; expected a list of labels or a ';'-separated string",
                    source=source, field=LABELS_COLUMN)


def _parse_split(value: object, source: str, where: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    split = _SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise DataError(f"{where}: got {value!r}; expected one of train, valid, test", source=source,
                        field=SPLIT_COLUMN)
    return split


def _check_columns(columns: list[str], source: str) -> None:
    for col in (TEXT_COLUMN, LABELS_COLUMN):
        if col not in columns:
            raise DataError(f"column missing (found {sorted(columns)}); expected a '{col}' column",
                            source=source, field=col)


def read_text_file(path: Path) -> list[Record]:
    source = str(path)
    text = read_text(path, source)
    records = _read_csv(text, source) if path.suffix == ".csv" else _read_jsonl(text, source)
    if not records:
        raise DataError("no documents; expected at least one row with text and labels", source=source)
    return records


def _read_csv(text: str, source: str) -> list[Record]:
    # A long document is a legitimate field: the csv module's default limit (128 KiB) would refuse it.
    # Raised, never lowered, since the limit is the module's, shared by the process.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    records: list[Record] = []
    try:
        _check_columns(list(reader.fieldnames or []), source)
        for row in reader:
            where = f"line {reader.line_num}"
            labels = _parse_labels(row[LABELS_COLUMN] or "", source, where)
            split = _parse_split(row.get(SPLIT_COLUMN), source, where)
            records.append(Record(str(row[TEXT_COLUMN] or ""), labels, split))
    except csv.Error as exc:
        raise DataError(f"line {reader.line_num}: cannot be parsed as CSV ({exc}); expected comma-separated "
                        "values with a header row", source=source) from None
    return records


def _read_jsonl(text: str, source: str) -> list[Record]:
    records: list[Record] = []
    # Split on newlines only: str.splitlines would also break a line at U+2028 and other separators that
    # JSON strings may hold unescaped.
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}); expected one JSON object per line",
                            source=source) from None
        except RecursionError:
            raise DataError(f"{where}: JSON nested too deeply; expected one flat JSON object per line",
                            source=source) from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: got {type(obj).__name__}; expected a JSON object", source=source)
        _check_columns(list(obj), f"{source} ({where})")
        value = obj[TEXT_COLUMN]
        if not isinstance(value, str):
            # str() of an object or a list would train on its Python repr.
            raise DataError(f"{where}: got a JSON {_json_type(value)}; expected a string", source=source,
                            field=TEXT_COLUMN)
        records.append(Record(value, _parse_labels(obj[LABELS_COLUMN], source, where),
                              _parse_split(obj.get(SPLIT_COLUMN), source, where)))
    return records


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def read_bundled(path: Path) -> tuple[list[Record], dict]:
    """The bundled debtags file: records with their fixed split, and its metadata (label order, release)."""
    source = str(path)
    try:
        data = json.loads(read_text(path, source))
        records = [Record(str(d["text"]), [str(t) for t in d["labels"]], str(d["split"])) for d in data["documents"]]
        meta = dict(data["meta"])
        meta["label_names"] = list(meta["label_names"])
    except (json.JSONDecodeError, RecursionError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"not a dataset file written by `python -m search.data.debtags build` ({exc!r}); "
                        "expected its JSON with 'meta' and 'documents'", source=source) from None
    return records, meta


def assign_splits(records: list[Record], seed: int, source: str) -> None:
    """Give every record a split: all or none must have one; without, a seeded 70/15/15 split by row."""
    have = [r.split is not None for r in records]
    if all(have):
        return
    if any(have):
        missing = have.index(False)
        raise DataError(f"row {missing + 1} has no split but others do; expected a split on every row or on none",
                        source=source, field=SPLIT_COLUMN)
    n = len(records)
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_valid = round(n * 0.70), round(n * 0.15)
    for rank, idx in enumerate(order):
        records[idx].split = SPLITS[0] if rank < n_train else SPLITS[1] if rank < n_train + n_valid else SPLITS[2]
