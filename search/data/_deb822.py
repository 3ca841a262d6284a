"""Reading Debian archive index files (``Packages``, ``Translation-en``) as apt keeps them.

apt stores its lists compressed (``.lz4`` on current Debian, ``.gz`` / ``.xz`` elsewhere, or plain). The
Python standard library reads gzip, xz and bz2; for lz4 we use the ``lz4`` package when it is installed
and otherwise apt's own ``apt-helper cat-file``, which every apt-based system has.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from search.errors import DataError

__all__ = ["read_index_text", "iter_stanzas"]

_APT_HELPER = "/usr/lib/apt/apt-helper"


def read_index_text(path: str | Path) -> str:
    """Return the decompressed text of one index file."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found; expected a Debian index file (Packages or Translation-en)", source=str(path))
    suffix = path.suffix
    if suffix == ".gz":
        data = gzip.decompress(path.read_bytes())
    elif suffix == ".xz":
        data = lzma.decompress(path.read_bytes())
    elif suffix == ".bz2":
        data = bz2.decompress(path.read_bytes())
    elif suffix == ".lz4":
        data = _read_lz4(path)
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace")


def _read_lz4(path: Path) -> bytes:
    try:
        import lz4.frame  # type: ignore[import-not-found]
    except ImportError:
        helper = _APT_HELPER if Path(_APT_HELPER).exists() else shutil.which("apt-helper")
        if not helper:
            raise DataError(
                "cannot decompress .lz4: install the 'lz4' Python package or apt", source=str(path)
            ) from None
        return subprocess.run([helper, "cat-file", str(path)], check=True, capture_output=True).stdout
    return lz4.frame.decompress(path.read_bytes())


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
