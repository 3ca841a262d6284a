"""Fuzzing every dataset format: random bytes, truncated files, flipped bytes and wrong encodings either
load or raise :class:`DataError` with a one-line message, never another exception.

Seeded and bounded (a few hundred small cases, seconds), so a failure reproduces: the case name says
the format, the mutation and its index.
"""
from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from search.data import DataSettings, load_dataset
from search.data.debtags import build_debtags
from search.errors import DataError

SEED = 20240514
CASES_PER_FORMAT = 90
SETTINGS = DataSettings(vocab_size=200, max_len=16)
WORDS = ["kernel", "audio", "graphics", "perl", "caf\xe9", "na\xefve", "\u65e5\u672c", "x11", "c++", "\U0001f600"]
PUNCTUATION = ',";\n\r{}[]:\\ a1-\t\u2028'
ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis", "gb18030")


def _rows(rng: np.random.Generator, n: int = 30) -> list[dict]:
    return [{"text": " ".join(rng.choice(WORDS, 5)), "labels": [f"t{i % 3}", f"t{(i + 1) % 4}"]} for i in range(n)]


def _csv(rng: np.random.Generator) -> str:
    return "text,labels,split\n" + "".join(
        f"\"{r['text']}\",{';'.join(r['labels'])},{('train', 'valid', 'test')[i % 3]}\n"
        for i, r in enumerate(_rows(rng)))


def _jsonl(rng: np.random.Generator) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(rng))


def _npz(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    y = np.eye(3, dtype=np.uint8)
    np.savez(buffer, x_train=rng.integers(0, 50, (12, 8)), y_train=y[np.arange(12) % 3],
             x_valid=rng.integers(0, 50, (4, 8)), y_valid=y[np.arange(4) % 3],
             x_test=rng.integers(0, 50, (4, 8)), y_test=y[np.arange(4) % 3],
             embedding_matrix=rng.normal(size=(50, 4)).astype(np.float32), label_names=np.array(["a", "b", "c"]))
    return buffer.getvalue()


def _odd_array(rng: np.random.Generator) -> np.ndarray:
    shape = tuple(int(d) for d in rng.integers(0, 6, int(rng.integers(0, 4))))
    kind = int(rng.integers(0, 9))
    if kind == 0:
        return rng.integers(-3, 2**40, shape, dtype=np.int64)
    if kind == 1:
        return rng.integers(0, 2**63, shape, dtype=np.uint64)
    if kind == 2:
        return rng.choice(np.array([0.0, 1.0, 0.5, np.nan, np.inf, -1.0, 1e30]), shape)
    if kind == 3:
        return rng.integers(0, 2, shape).astype(bool)
    if kind == 4:
        return (rng.normal(size=shape) + 1j).astype(np.complex64)
    if kind == 5:
        return rng.choice(np.array(["0", "1", "ab"]), shape)
    if kind == 6:
        return rng.choice(np.array([b"0", b"1"]), shape)
    if kind == 7:
        return np.zeros(shape, dtype=[("a", np.int32), ("b", np.float32)])
    return np.array([[1, "a"], [None, 2.0]], dtype=object)  # pickled by savez, refused unread


def _odd_npz(rng: np.random.Generator) -> bytes:
    """A real .npz whose members have random shapes and dtypes (some keys missing, some right)."""
    good = np.load(io.BytesIO(_npz(rng)))
    arrays = {}
    for key in good.files:
        roll = rng.random()
        if roll < 0.15:
            continue
        arrays[key] = good[key] if roll < 0.6 else _odd_array(rng)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _packages(rng: np.random.Generator) -> str:
    return "".join(f"Package: p{i}\nDescription: P{i} {rng.choice(WORDS)}\n more text\nDescription-md5: m{i}\n"
                   f"Tag: role::program, use::t{i % 3}\n\n" for i in range(30))


def _mutations(rng: np.random.Generator, valid: bytes, text: str | None) -> Iterator[tuple[str, bytes]]:
    """``CASES_PER_FORMAT`` damaged versions of ``valid`` (whose text, for text formats, is ``text``)."""
    for i in range(CASES_PER_FORMAT):
        kind = i % 6
        if kind == 0:
            yield f"random{i}", rng.bytes(int(rng.integers(0, 600)))
        elif kind == 1:
            yield f"truncated{i}", valid[: int(rng.integers(0, len(valid)))]
        elif kind == 2:
            data = bytearray(valid)
            for at in rng.integers(0, len(data), int(rng.integers(1, 12))):
                data[at] = int(rng.integers(0, 256))
            yield f"flipped{i}", bytes(data)
        elif kind == 3 and text is not None:
            encoding = ENCODINGS[(i // 6) % len(ENCODINGS)]
            yield f"encoded-{encoding}{i}", text.encode(encoding, errors="replace")
        elif kind == 4 and text is not None:  # still UTF-8, but the structure broken: quotes, commas, braces
            chars = list(text)
            for at in rng.integers(0, len(chars), int(rng.integers(1, 12))):
                chars[at] = PUNCTUATION[int(rng.integers(0, len(PUNCTUATION)))]
            yield f"restructured{i}", "".join(chars).encode()
        elif kind == 4:  # a well-formed archive of arrays of the wrong kinds
            yield f"arrays{i}", _odd_npz(rng)
        else:  # a valid prefix followed by junk: a half-written or concatenated file
            cut = int(rng.integers(0, len(valid)))
            yield f"spliced{i}", valid[:cut] + rng.bytes(int(rng.integers(1, 200))) + valid[cut:]


def _assert_contract(load: Callable[[], object], case: str) -> str:
    """Either ``load()`` succeeds, or it raises a one-line DataError; returns which."""
    try:
        load()
    except DataError as exc:
        message = str(exc)
        assert message and "\n" not in message, (case, message)
        return "refused"
    return "loaded"


FORMATS = ("csv", "jsonl", "npz", "packages_gz")


@pytest.mark.filterwarnings("ignore::search.data.DataWarning")  # a mutated file may have odd labels: fine
@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_dataset_format(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng([SEED, FORMATS.index(fmt)])
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    text: str | None
    if fmt == "csv":
        text = _csv(rng)
        valid = text.encode()
    elif fmt == "jsonl":
        text = _jsonl(rng)
        valid = text.encode()
    elif fmt == "npz":
        text, valid = None, _npz(rng)
    else:  # the builder's input: a gzip-compressed Packages index (its text mutated, then the .gz bytes)
        text = _packages(rng)
        valid = gzip.compress(text.encode(), mtime=0)
    outcomes: dict[str, int] = {"loaded": 0, "refused": 0}
    for case, data in _mutations(rng, valid, text):
        if fmt == "packages_gz":
            if case.startswith("encoded-"):
                data = gzip.compress(data, mtime=0)  # a well-formed .gz of wrongly encoded text
            lists = tmp_path / case
            lists.mkdir()
            (lists / "h_dists_trixie_main_binary-amd64_Packages.gz").write_bytes(data)
            (lists / "h_dists_trixie_main_i18n_Translation-en").write_text("")
            outcome = _assert_contract(lambda lists=lists: build_debtags(lists), f"{fmt}/{case}")
        else:
            path = tmp_path / f"{case}.{fmt}"
            path.write_bytes(data)
            outcome = _assert_contract(lambda path=path: load_dataset(path, SETTINGS, include_test=True),
                                       f"{fmt}/{case}")
        outcomes[outcome] += 1
    assert outcomes["refused"] > 0  # the mutations do damage: the fuzzing is not vacuous
    if fmt != "packages_gz":
        path = tmp_path / f"valid.{fmt}"
        path.write_bytes(valid)
        load_dataset(path, SETTINGS, include_test=True)  # and the undamaged file loads
