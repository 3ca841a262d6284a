"""Reading Debian archive index files (``Packages``, ``Translation-en``) as apt keeps them.

apt stores its lists compressed (``.lz4`` on current Debian, ``.gz`` / ``.xz`` elsewhere, or plain). The
Python standard library reads gzip, xz and bz2; for lz4 we use the ``lz4`` package when it is installed
and otherwise apt's own ``apt-helper cat-file``, which every apt-based system has.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from search.data._decode import decode_utf8, decompress, read_bytes
from search.errors import DataError

__all__ = ["read_index_text", "iter_stanzas"]

_APT_HELPER = "/usr/lib/apt/apt-helper"


def read_index_text(path: str | Path) -> str:
    """Return the decompressed text of one index file (apt's lists are UTF-8, as Debian policy requires)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError("file not found; expected a Debian index file (Packages or Translation-en)", source=source)
    data = _read_lz4(path) if path.suffix == ".lz4" else decompress(read_bytes(path, source), path.suffix, source)
    return decode_utf8(data, source)


def _read_lz4(path: Path) -> bytes:
    try:
        import lz4.frame  # type: ignore[import-not-found]
    except ImportError:
        return _apt_helper_cat(path)
    try:
        return lz4.frame.decompress(read_bytes(path))
    except RuntimeError as exc:  # lz4.frame's error for bytes that are not an lz4 frame
        raise DataError(f"cannot be decompressed as .lz4 ({exc}); expected a complete .lz4 file",
                        source=str(path)) from None


def _apt_helper_cat(path: Path) -> bytes:
    helper = _APT_HELPER if Path(_APT_HELPER).exists() else shutil.which("apt-helper")
    if not helper:
        raise DataError("cannot decompress .lz4: install the 'lz4' Python package or apt", source=str(path))
    done = subprocess.run([helper, "cat-file", str(path)], capture_output=True)
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"apt-helper exit status {done.returncode}"
        raise DataError(f"cannot be decompressed as .lz4 ({reason}); expected a complete .lz4 file",
                        source=str(path))
    return done.stdout


def iter_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Yield each deb822 stanza as a dict; continuation lines are kept, joined by newlines."""
    fields: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
            continue
        if line[0] in " \t" and key is not None:
            fields[key] += "\n" + line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip()
        fields[key] = value.strip()
    if fields:
        yield fields
