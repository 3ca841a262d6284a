"""The one place a dataset file's bytes become text: read, decompress, decode UTF-8.

Every text source (``.csv``, ``.jsonl``, the bundled file, the builder's Debian indexes) goes through
here, so a file that is not what it claims to be (UTF-16 from a spreadsheet, a binary file renamed, a
truncated download) is refused the same way: one :class:`DataError` naming the file and where in it
the problem is, never a decoder's traceback.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path

from search.errors import DataError

__all__ = ["read_bytes", "decompress", "decode_utf8", "read_text"]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_DECOMPRESSORS = {".gz": gzip.decompress, ".xz": lzma.decompress, ".bz2": bz2.decompress}
# What each standard-library decompressor raises on bytes that are not (or no longer) its format.
_DECOMPRESS_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


def read_bytes(path: Path, source: str | None = None) -> bytes:
    """The file's bytes; a folder, a missing or unreadable file is refused by name."""
    source = source or str(path)
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError("is a folder; expected a dataset file", source=source) from None
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc}); expected a readable file", source=source) from None


def decompress(data: bytes, suffix: str, source: str) -> bytes:
    """``data`` decompressed by the format its suffix names (.gz, .xz, .bz2); other suffixes are returned as-is."""
    decompressor = _DECOMPRESSORS.get(suffix)
    if decompressor is None:
        return data
    try:
        return decompressor(data)
    except _DECOMPRESS_ERRORS as exc:
        raise DataError(f"cannot be decompressed as {suffix} ({exc or type(exc).__name__}); expected a complete "
                        f"{suffix} file", source=source) from None


def decode_utf8(data: bytes, source: str) -> str:
    """UTF-8 text (a leading byte-order mark, as spreadsheets write, is dropped).

    UTF-16 and binary files are refused with what they look like, and an invalid byte with its line and
    byte offset, so the user can find it.
    """
    if data.startswith(_UTF16_BOMS):
        raise DataError("starts with a UTF-16 byte-order mark; expected UTF-8 text (save the file as UTF-8)",
                        source=source)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(f"NUL byte at line {_line_of(data, nul)} (byte offset {nul}); expected UTF-8 text, not a "
                        "binary or UTF-16 file", source=source)
    base = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        return data[base:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = base + exc.start
        raise DataError(f"byte 0x{data[at]:02x} at line {_line_of(data, at)} (byte offset {at}) is not valid "
                        "UTF-8; expected UTF-8 text", source=source) from None


def read_text(path: Path, source: str | None = None) -> str:
    """Read, decompress (by suffix) and decode one file."""
    source = source or str(path)
    return decode_utf8(decompress(read_bytes(path, source), Path(path).suffix, source), source)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
