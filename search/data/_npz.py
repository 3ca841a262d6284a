"""The seed's ``.npz`` format: x_/y_ train, valid, test; optional ``embedding_matrix`` and ``label_names``."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from search.data._dataset import Dataset, DataSettings
from search.data._validate import check_embedding_matrix, validate_arrays
from search.errors import DataError

__all__ = ["load_npz"]

REQUIRED = ("x_train", "y_train", "x_valid", "y_valid")
# What numpy and zipfile raise on a damaged archive or member (a bad CRC, a truncated member, a header
# that is not .npy); each becomes one DataError naming the member.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def _member(npz: Any, key: str, source: str) -> np.ndarray:
    """One array of the archive, read inside the error handling (numpy reads members lazily)."""
    try:
        value = npz[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays are refused unread: unpickling runs code
            raise DataError("holds Python objects (an object array); expected a numeric array",
                            source=source, field=key) from None
        raise DataError(f"cannot be read ({exc}); expected a .npy array", source=source, field=key) from None
    except _READ_ERRORS as exc:
        raise DataError(f"cannot be read ({exc or type(exc).__name__}); expected a .npy array",
                        source=source, field=key) from None
    return np.asarray(value)


def _label_names(values: np.ndarray, source: str) -> list[str]:
    if values.ndim != 1:
        raise DataError(f"got shape {values.shape}; expected a 1-D array of names", source=source,
                        field="label_names")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.tolist()]


def load_npz(path: Path, settings: DataSettings, digest: str, fingerprint: str, include_test: bool) -> Dataset:
    source = str(path)
    # numpy would read a file that is not a zip archive as a pickle and then say "pickled data", which
    # sends the user looking for the wrong problem; a renamed .npy would come back as a bare array.
    if not zipfile.is_zipfile(path):
        raise DataError("is not a complete zip archive; expected a numpy .npz archive (as written by numpy.savez)",
                        source=source)
    try:
        npz = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise DataError(f"cannot be read as .npz ({exc}); expected a numpy .npz archive", source=source) from None
    with npz:
        keys = set(npz.files)
        for key in REQUIRED:
            if key not in keys:
                raise DataError(f"key missing (found {sorted(keys)}); expected {', '.join(REQUIRED)}",
                                source=source, field=key)
        wanted = list(REQUIRED) + (["x_test", "y_test"] if include_test else [])
        arrays: dict[str, np.ndarray | None] = {k: (_member(npz, k, source) if k in keys else None) for k in wanted}
        matrix = _member(npz, "embedding_matrix", source) if "embedding_matrix" in keys else None
        names = _label_names(_member(npz, "label_names", source), source) if "label_names" in keys else None
    if include_test and arrays.get("x_test") is None:
        raise DataError("key missing; expected x_test and y_test for evaluation on the test split",
                        source=source, field="x_test")
    if matrix is not None:
        check_embedding_matrix(matrix, source)
        matrix = matrix.astype(np.float32)
    validate_arrays(arrays, source, label_names=names, embedding_matrix=matrix)
    # validate_arrays refused a missing required split: each array left is one the file holds.
    out: dict[str, np.ndarray] = {
        k: v.astype(np.int32) if k.startswith("x_") else v.astype(np.uint8) for k, v in arrays.items() if v is not None
    }
    if names is None:
        names = [f"label_{i}" for i in range(out["y_train"].shape[1])]
    if settings.limit is not None:
        out["x_train"], out["y_train"] = out["x_train"][: settings.limit], out["y_train"][: settings.limit]
    return Dataset(
        name=path.stem, source=source, label_names=names, fingerprint=fingerprint, embedding_matrix=matrix,
        x_train=out["x_train"], y_train=out["y_train"], x_valid=out["x_valid"], y_valid=out["y_valid"],
        x_test=out.get("x_test"), y_test=out.get("y_test"),
        meta={"format": "npz", "file_sha256": digest},
    )
