"""On-disk cache of vectorised arrays (and embeddings), keyed by a fingerprint of input + settings."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cache_dir", "file_digest", "fingerprint", "load_entry", "save_entry"]

CACHE_FORMAT = 1


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$SEARCH_CACHE_DIR``, else ``~/.cache/keras-text-search``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("SEARCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "keras-text-search"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(*parts: Any) -> str:
    payload = json.dumps([CACHE_FORMAT, *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def load_entry(root: Path, kind: str, key: str, names: list[str]) -> tuple[dict[str, np.ndarray], dict] | None:
    """Arrays ``names`` (missing files are skipped) and the meta of one entry, or None if not cached."""
    entry = root / kind / key
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arrays = {n: np.load(entry / f"{n}.npy") for n in names if (entry / f"{n}.npy").is_file()}
    except (OSError, ValueError):
        return None  # a damaged entry is rebuilt
    return arrays, meta


def save_entry(root: Path, kind: str, key: str, arrays: Mapping[str, np.ndarray], meta: dict) -> None:
    """Write atomically: into a temporary folder, then renamed into place (safe with several workers)."""
    final = root / kind / key
    if (final / "meta.json").is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr)
        (tmp / "meta.json").write_text(json.dumps(meta))
        with contextlib.suppress(OSError):  # another worker wrote it first
            tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
