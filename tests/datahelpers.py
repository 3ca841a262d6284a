"""Small text datasets cut from the bundled debtags50 file, for tests whose cost is the size of the splits.

The report, finalize and ablation tests score every model on the whole validation and test splits
(4,494 and 4,489 documents of debtags50): with a few hundred documents a split they test the same code
paths in a fraction of the time. The file is a ``.jsonl`` with the documents' own ``split`` field, so a
study on it sees debtags50's texts, labels and split assignment, only fewer documents.
"""
from __future__ import annotations

import json
from pathlib import Path

from search.data import BUNDLED
from search.data._textfiles import read_bundled


def debtags_subset(folder: Path, *, train: int, valid: int, test: int) -> Path:
    """The first ``train`` / ``valid`` / ``test`` documents of each debtags50 split as ``folder/subset.jsonl``."""
    records, _ = read_bundled(BUNDLED["debtags50"])
    wanted = {"train": train, "valid": valid, "test": test}
    taken = dict.fromkeys(wanted, 0)
    path = folder / "subset.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            split = str(record.split)
            if taken[split] < wanted[split]:
                taken[split] += 1
                fh.write(json.dumps({"text": record.text, "labels": record.labels, "split": split}) + "\n")
    return path
