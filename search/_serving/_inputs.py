"""Documents to predict, read from ``.jsonl`` / ``.csv`` / ``.txt`` with one-line refusals (keras-free).

The whole file is read and checked before anything is predicted or written, so a bad line late in a
long file costs no output and no half-written file.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.data._decode import decode_utf8, read_bytes
from search.errors import InputError

__all__ = ["Document", "INPUT_EXTENSIONS", "TEXT_FIELD", "ID_FIELD", "read_documents"]

INPUT_EXTENSIONS = (".jsonl", ".csv", ".txt")
TEXT_FIELD = "text"
#: Passed through to the output line when the input has it, so predictions join back to their documents.
ID_FIELD = "id"


@dataclass(frozen=True)
class Document:
    text: str
    line: int  # where the document starts in the file (1-based)
    id: Any = None


def _decode(path: Path) -> str:
    source = str(path)
    if path.suffix not in INPUT_EXTENSIONS:
        raise InputError(f"unsupported extension '{path.suffix}'; expected one of {', '.join(INPUT_EXTENSIONS)}",
                         source=source)
    if not path.is_file():
        raise InputError("file not found; expected an existing input file", source=source)
    # The dataset loaders' decoding: UTF-16 and binary files named as such, a bad byte with its line.
    return decode_utf8(read_bytes(path, source), source)


def _jsonl(text: str, source: str) -> list[Document]:
    docs = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n}: not valid JSON ({exc.msg}); expected one JSON object per line",
                             source=source) from None
        if not isinstance(obj, dict):
            raise InputError(f"line {n}: got {type(obj).__name__}; expected a JSON object with a '{TEXT_FIELD}' field",
                             source=source)
        if TEXT_FIELD not in obj:
            raise InputError(f"line {n}: missing (found {sorted(obj)[:8]}); expected a '{TEXT_FIELD}' string",
                             source=source, field=TEXT_FIELD)
        if not isinstance(obj[TEXT_FIELD], str):
            raise InputError(f"line {n}: got {type(obj[TEXT_FIELD]).__name__}; expected a string", source=source,
                             field=TEXT_FIELD)
        docs.append(Document(obj[TEXT_FIELD], n, obj.get(ID_FIELD)))
    return docs


def _csv(text: str, source: str) -> list[Document]:
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # a long document is a legitimate field
    reader = csv.DictReader(io.StringIO(text, newline=""))
    docs = []
    try:
        columns = list(reader.fieldnames or [])
        if columns and TEXT_FIELD not in columns:
            raise InputError(f"column missing (found {columns[:8]}); expected a '{TEXT_FIELD}' column", source=source,
                             field=TEXT_FIELD)
        start = reader.line_num + 1
        for row in reader:
            docs.append(Document(row.get(TEXT_FIELD) or "", start, row.get(ID_FIELD) or None))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: cannot be parsed as CSV ({exc}); expected comma-separated values "
                         "with a header row", source=source) from None
    return docs


def _txt(text: str) -> list[Document]:
    return [Document(line, n) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_documents(path: str | Path) -> list[Document]:
    """The documents of ``path``: ``.jsonl`` (a ``text`` field per line), ``.csv`` (a ``text`` column) or
    ``.txt`` (one document per non-blank line); an optional ``id`` field or column is kept."""
    path = Path(path)
    source = str(path)
    text = _decode(path)
    if path.suffix == ".jsonl":
        docs = _jsonl(text, source)
    elif path.suffix == ".csv":
        docs = _csv(text, source)
    else:
        docs = _txt(text)
    if not docs:
        what = {".jsonl": "a JSON object per line", ".csv": "a header row and one row per document",
                ".txt": "one document per line"}[path.suffix]
        raise InputError(f"no documents; expected {what}", source=source)
    return docs
