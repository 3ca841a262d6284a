"""The seed's ``.npz`` format: x_/y_ train, valid, test; optional ``embedding_matrix`` and ``label_names``."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from search.data._dataset import Dataset, DataSettings
from search.data._validate import check_embedding_matrix, validate_arrays
from search.errors import DataError

__all__ = ["load_npz"]

REQUIRED = ("x_train", "y_train", "x_valid", "y_valid")


def load_npz(path: Path, settings: DataSettings, digest: str, fingerprint: str, include_test: bool) -> Dataset:
    source = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot be read as .npz ({exc}); expected a numpy .npz archive", source=source) from None
    with npz:
        keys = set(npz.files)
        for key in REQUIRED:
            if key not in keys:
                raise DataError(f"key missing (found {sorted(keys)}); expected {', '.join(REQUIRED)}",
                                source=source, field=key)
        wanted = list(REQUIRED) + (["x_test", "y_test"] if include_test else [])
        arrays: dict[str, np.ndarray | None] = {k: (npz[k] if k in keys else None) for k in wanted}
        matrix = npz["embedding_matrix"].astype(np.float32) if "embedding_matrix" in keys else None
        names = [str(n) for n in npz["label_names"].tolist()] if "label_names" in keys else None
    if include_test and arrays.get("x_test") is None:
        raise DataError("key missing; expected x_test and y_test for evaluation on the test split",
                        source=source, field="x_test")
    if matrix is not None:
        check_embedding_matrix(matrix, source)
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
