"""``python -m search.predict DIR (--text "..." | --input FILE)``: labels and probabilities for new text.

DIR is a folder made by ``python -m search.export``. One JSON line per document, on stdout or into
``--output``: the labels whose probability reaches the threshold (the tuned one, or a final ensemble's
per-label ones, unless ``--threshold``),
most probable first, at most ``--top-k`` of them, with their probabilities.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from search._cli import CliParser, HelpFormatter, int_in, run_main
from search.errors import InputError

__all__ = ["build_parser", "main"]

PROG = "python -m search.predict"


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


_top_k = int_in(1, None, "a positive integer")


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog=PROG, formatter_class=HelpFormatter,
                  description="Predict labels for new text with a folder made by python -m search.export: one JSON "
                  "line per document with its labels and their probabilities.")
    p.add_argument("folder", metavar="DIR", help="the export folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", action="append", metavar="TEXT", help="a document (repeat for several)")
    src.add_argument("--input", metavar="FILE", help="documents: .jsonl (a 'text' field per line), .csv (a 'text' "
                     "column) or .txt (one per line); an 'id' field or column is copied to the output")
    p.add_argument("--output", metavar="FILE.jsonl", help="write the JSON lines here (default: stdout); written "
                   "whole or not at all")
    p.add_argument("--top-k", type=_top_k, metavar="K", help="at most K labels per document (default: all that "
                   "reach the threshold)")
    p.add_argument("--threshold", type=_threshold, metavar="T", help="probability a label must reach, in (0, 1) "
                   "for every label (default: the threshold tuned on the validation split, or a final "
                   "ensemble's per-label thresholds, in export.json)")
    return p


def _check_output(output: str | None, input_file: str | None) -> Path | None:
    if output is None:
        return None
    path = Path(output)
    if path.is_dir():
        raise InputError("is a folder; expected a file to write", source=f"--output {output}")
    if not path.parent.is_dir():
        raise InputError(f"folder '{path.parent}' does not exist; expected an existing folder",
                         source=f"--output {output}")
    if input_file is not None and Path(input_file).resolve() == path.resolve():
        raise InputError("is the input file; expected another file", source=f"--output {output}")
    return path


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    """Into a temporary file beside ``path``, renamed over it once complete: never a partial file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = _check_output(args.output, args.input)
    from search._serving._bundle import read_manifest, read_vocabulary
    from search._serving._inputs import read_documents

    folder = Path(args.folder)
    manifest = read_manifest(folder)
    vocabulary = read_vocabulary(folder, manifest)
    # Every input is read and checked before keras loads or anything is written.
    if args.input is not None:
        documents = read_documents(args.input)
        texts = [d.text for d in documents]
        heads: list[dict[str, Any]] = [{"line": d.line} | ({"id": d.id} if d.id is not None else {})
                                       for d in documents]
    else:
        texts = list(args.text)
        heads = [{"text": t} for t in texts]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process only: quiet TensorFlow
    from search._serving._predictor import open_predictor

    predictor = open_predictor(folder, manifest, vocabulary)
    predictions = predictor.predict(texts, threshold=args.threshold, top_k=args.top_k, progress=None)
    lines = (json.dumps(head | p.to_json(), ensure_ascii=False) for head, p in zip(heads, predictions, strict=True))
    if output is None:
        for line in lines:
            print(line)
    else:
        _write_atomically(output, lines)
        print(f"{len(predictions)} predictions written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
