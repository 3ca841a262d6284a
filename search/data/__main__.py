"""``python -m search.data info NAME|PATH [--json]``: what is in a dataset."""
from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from search._cli import CliParser, run_main
from search.data._dataset import SPLITS, Dataset, DataSettings, DataWarning
from search.data._loaders import load_dataset

__all__ = ["main", "dataset_info"]


def dataset_info(ds: Dataset) -> dict[str, Any]:
    """What ``info`` prints: documents per split, label counts, token lengths, release."""
    counts = np.zeros(ds.n_labels, dtype=np.int64)
    per_split: dict[str, int] = {}
    lengths: list[np.ndarray] = []
    for split in SPLITS:
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x is None:
            continue
        per_split[split] = len(x)
        counts += y.sum(axis=0).astype(np.int64)
        lengths.append((x > 0).sum(axis=1))
    order = np.argsort(-counts, kind="stable")
    labels = [(ds.label_names[i], int(counts[i])) for i in order]
    pcts = [5, 25, 50, 75, 95, 99]
    all_len = np.concatenate(lengths)
    all_labels = np.concatenate([getattr(ds, f"y_{s}") for s in per_split])
    info = {
        "name": ds.name,
        "source": ds.source,
        "fingerprint": ds.fingerprint,
        "documents": per_split,
        "labels": ds.n_labels,
        "labels_per_document": round(float(all_labels.sum(axis=1).mean()), 3),
        "most_frequent": labels[:10],
        "least_frequent": labels[::-1][:10],
        "sequence_length": ds.seq_len,
        "token_length_percentiles": {
            f"p{p}": float(v) for p, v in zip(pcts, np.percentile(all_len, pcts), strict=True)
        },
        "vocab_size": ds.vocab_size,
    }
    if "token_length_percentiles" in ds.meta:
        info["untruncated_length_percentiles"] = ds.meta["token_length_percentiles"]
    release = ds.meta.get("dataset", {}).get("release")
    if release:
        info["release"] = release
    return info


def _print_text(info: dict[str, Any]) -> None:
    print(f"dataset  {info['name']}  ({info['source']})")
    if "release" in info:
        r = info["release"]
        print(f"release  {r.get('description', '')} [{r.get('codename', '')}], index dated {r.get('date', '?')}")
    print("documents  " + "  ".join(f"{k}={v}" for k, v in info["documents"].items()))
    print(f"labels  {info['labels']}  ({info['labels_per_document']} per document)")
    print(f"sequence length  {info['sequence_length']}  vocabulary  {info['vocab_size']}")
    print("token length percentiles (after truncation)  " +
          "  ".join(f"{k}={v:g}" for k, v in info["token_length_percentiles"].items()))
    width = max(len(n) for n, _ in info["most_frequent"] + info["least_frequent"])
    print("\nmost frequent labels")
    for name, count in info["most_frequent"]:
        print(f"  {name:<{width}}  {count}")
    print("least frequent labels")
    for name, count in info["least_frequent"]:
        print(f"  {name:<{width}}  {count}")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    # A data warning (an unseen label, a shared document) is one line for the user, not a source location.
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m search.data", description="Inspect a dataset.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    p = sub.add_parser("info", help="documents per split, label counts, token length percentiles")
    p.add_argument("dataset", help="a bundled name (debtags50) or a .npz/.csv/.jsonl path")
    p.add_argument("--vocab-size", type=int, default=DataSettings.vocab_size, help="vocabulary size for text")
    p.add_argument("--max-len", type=int, default=DataSettings.max_len, help="tokens per document for text")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        warnings.showwarning = _show_warning
        ds = load_dataset(args.dataset, DataSettings(vocab_size=args.vocab_size, max_len=args.max_len),
                          include_test=True)
    info = dataset_info(ds)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_text(info)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
