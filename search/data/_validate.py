"""Checks every dataset passes before a search may use it, whatever file it came from.

Each failed check raises :class:`DataError` naming the file, the field and what was expected; the two
soft checks (a label never seen in training, a document in two splits) warn with :class:`DataWarning`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from search.data._dataset import warn
from search.errors import DataError

__all__ = ["validate_arrays", "check_embedding_matrix"]


# Token ids are stored as int32 (what Keras' Embedding takes): a larger id would wrap to a negative one.
_MAX_TOKEN_ID = int(np.iinfo(np.int32).max)


def _is_real(dtype: np.dtype) -> bool:
    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_)


def _check_token_ids(x: np.ndarray, source: str, field: str) -> None:
    """Whole, non-negative numbers that fit int32 (checked before the cast, so nothing wraps)."""
    if np.issubdtype(x.dtype, np.floating):
        whole = bool(np.isfinite(x).all()) and bool((np.mod(x, 1) == 0).all())
    else:
        whole = bool(np.issubdtype(x.dtype, np.integer))
    if not whole:
        raise DataError(f"got dtype {x.dtype}; expected integer token ids", source=source, field=field)
    if x.size and x.min() < 0:
        raise DataError(f"token id {int(x.min())} is negative; expected ids >= 0 (0 = padding)",
                        source=source, field=field)
    if x.size and x.max() > _MAX_TOKEN_ID:
        raise DataError(f"token id {int(x.max())} is too large; expected ids <= {_MAX_TOKEN_ID} (int32)",
                        source=source, field=field)


def check_embedding_matrix(matrix: np.ndarray, source: str) -> None:
    if matrix.ndim != 2:
        raise DataError(f"got shape {matrix.shape}; expected a 2-D (vocabulary x dimension) matrix",
                        source=source, field="embedding_matrix")
    if not (np.issubdtype(matrix.dtype, np.integer) or np.issubdtype(matrix.dtype, np.floating)):
        raise DataError(f"got dtype {matrix.dtype}; expected floats", source=source, field="embedding_matrix")
    bad = ~np.isfinite(matrix)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(f"{int(bad.sum())} NaN/inf values (first in row {row}); expected finite numbers",
                        source=source, field="embedding_matrix")


def _row_hashes(x: np.ndarray) -> set[bytes]:
    x = np.ascontiguousarray(x)
    return {hashlib.blake2b(row.tobytes(), digest_size=12).digest() for row in x}


def validate_arrays(arrays: Mapping[str, np.ndarray | None], source: str, *, label_names: list[str] | None,
                    embedding_matrix: np.ndarray | None, check_duplicates: bool = True) -> None:
    """Validate the x_/y_ arrays of the splits present in ``arrays`` (a split's x being None is skipped)."""
    widths: dict[str, int] = {}
    lengths: dict[str, int] = {}
    for split in ("train", "valid", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None and y is None:
            continue
        if x is None or y is None:
            present, missing = (f"x_{split}", f"y_{split}") if x is not None else (f"y_{split}", f"x_{split}")
            raise DataError(f"'{present}' is present but '{missing}' is not; expected both", source=source,
                            field=missing)
        if x.ndim != 2:
            raise DataError(f"got shape {x.shape}; expected 2-D (documents x tokens)", source=source,
                            field=f"x_{split}")
        if y.ndim != 2:
            raise DataError(f"got shape {y.shape}; expected 2-D multi-hot (documents x labels)", source=source,
                            field=f"y_{split}")
        if len(x) == 0:
            raise DataError("empty split; expected at least one document", source=source, field=f"x_{split}")
        if len(x) != len(y):
            raise DataError(f"x has {len(x)} documents but y has {len(y)}; expected the same number",
                            source=source, field=f"y_{split}")
        _check_token_ids(x, source, f"x_{split}")
        if embedding_matrix is not None and x.max(initial=0) >= embedding_matrix.shape[0]:
            rows = embedding_matrix.shape[0]
            raise DataError(f"token id {int(x.max())} is beyond the embedding matrix's {rows} rows; "
                            f"expected ids < {rows}", source=source, field=f"x_{split}")
        if x.shape[1] == 0:
            raise DataError(f"got shape {x.shape}; expected at least one token per document", source=source,
                            field=f"x_{split}")
        if y.shape[1] == 0:
            raise DataError(f"got shape {y.shape}; expected at least one label", source=source, field=f"y_{split}")
        if not _is_real(y.dtype):
            raise DataError(f"got dtype {y.dtype}; expected multi-hot 0/1 numbers", source=source,
                            field=f"y_{split}")
        if not np.isin(y, (0, 1)).all():
            odd = np.unique(y[~np.isin(y, (0, 1))])[:3]
            raise DataError(f"got label values {odd.tolist()}; expected multi-hot 0/1", source=source,
                            field=f"y_{split}")
        widths[split] = int(y.shape[1])
        lengths[split] = int(x.shape[1])
    if "train" not in widths or "valid" not in widths:
        missing = "x_train" if "train" not in widths else "x_valid"
        raise DataError("split missing; expected x_train, y_train, x_valid and y_valid", source=source, field=missing)
    if len(set(widths.values())) > 1:
        raise DataError(f"label widths differ between splits ({widths}); expected the same number of labels",
                        source=source, field="y_" + next(s for s in widths if widths[s] != widths["train"]))
    if len(set(lengths.values())) > 1:
        raise DataError(f"tokens per document differ between splits ({lengths}); expected the same length",
                        source=source, field="x_" + next(s for s in lengths if lengths[s] != lengths["train"]))
    if label_names is not None and len(label_names) != widths["train"]:
        raise DataError(f"{len(label_names)} names but y has {widths['train']} labels; expected one name per label",
                        source=source, field="label_names")

    y_train = arrays["y_train"]
    unseen = np.flatnonzero(np.asarray(y_train).sum(axis=0) == 0)
    if unseen.size:
        names = [label_names[i] if label_names else str(i) for i in unseen[:5]]
        warn(f"{source}: {unseen.size} label(s) appear in no training document: {', '.join(names)}")
    if not check_duplicates:
        return
    hashes = {s: _row_hashes(x) for s in ("train", "valid", "test") if (x := arrays.get(f"x_{s}")) is not None}
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        if a in hashes and b in hashes:
            shared = len(hashes[a] & hashes[b])
            if shared:
                warn(f"{source}: {shared} document(s) appear in both the {a} and {b} splits")
