from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from search.data import DataSettings, DataWarning, load_dataset, train_word2vec


@pytest.fixture(scope="module")
def debtags():
    return load_dataset("debtags50", DataSettings(vocab_size=5000, max_len=64))


def test_debtags_shapes_and_test_split_not_loaded(debtags) -> None:
    ds = debtags
    assert ds.x_train.dtype == np.int32 and ds.y_train.dtype == np.uint8
    assert ds.x_train.shape[1] == 64 and ds.n_labels == 50
    assert 0.78 < len(ds.x_train) / (len(ds.x_train) + len(ds.x_valid)) < 0.86  # 70 / (70 + 15)
    assert ds.x_test is None and ds.y_test is None
    assert ds.x_train.max() < 5000 and ds.vocab_size == 5000
    assert ds.vocabulary[:2] == ["<pad>", "<oov>"]
    # post-padding: once a row has a zero, the rest of the row is zero
    row = ds.x_train[np.argmin((ds.x_train > 0).sum(axis=1))]
    nz = int((row > 0).sum())
    assert (row[:nz] > 0).all() and (row[nz:] == 0).all()
    assert 1.5 < ds.y_train.sum(axis=1).mean() < 5


def test_include_test_and_limit(debtags) -> None:
    full = load_dataset("debtags50", DataSettings(vocab_size=5000, max_len=64), include_test=True)
    assert full.x_test is not None and len(full.x_test) > 4000
    small = load_dataset("debtags50", DataSettings(vocab_size=5000, max_len=64, limit=100))
    assert len(small.x_train) == 100 and len(small.x_valid) == len(debtags.x_valid)
    np.testing.assert_array_equal(small.x_train, debtags.x_train[:100])
    assert small.fingerprint != debtags.fingerprint


def test_cache_is_used(tmp_path: Path) -> None:
    settings = DataSettings(vocab_size=3000, max_len=32)
    t0 = time.perf_counter()
    a = load_dataset("debtags50", settings, cache=tmp_path)
    cold = time.perf_counter() - t0
    assert any((tmp_path / "arrays").iterdir())
    t0 = time.perf_counter()
    b = load_dataset("debtags50", settings, cache=tmp_path)
    warm = time.perf_counter() - t0
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.fingerprint == b.fingerprint
    assert warm < cold  # the ratio itself is measured in bench/data_load.py


def test_npz_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "seed.npz"
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    np.savez(path, x_train=rng.integers(0, 30, (20, 10)), y_train=rng.integers(0, 2, (20, 4)),
             x_valid=rng.integers(0, 30, (5, 10)), y_valid=rng.integers(0, 2, (5, 4)),
             x_test=rng.integers(0, 30, (6, 10)), y_test=rng.integers(0, 2, (6, 4)),
             embedding_matrix=emb, label_names=np.array(["a", "b", "c", "d"]))
    ds = load_dataset(path)
    assert ds.label_names == ["a", "b", "c", "d"]
    assert ds.x_test is None and ds.vocab_size == 30
    np.testing.assert_array_equal(ds.embedding_matrix, emb)
    assert load_dataset(path, include_test=True).x_test.shape == (6, 10)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_and_csv_with_and_without_split(tmp_path: Path) -> None:
    words = ["alpha", "beta", "gamma", "delta", "kernel", "audio", "graphics", "perl"]
    rng = np.random.default_rng(1)
    rows = [{"text": " ".join(rng.choice(words, 6)), "labels": [words[i % 3]] + ([words[3]] if i % 2 else [])}
            for i in range(60)]
    ds = load_dataset(_write_jsonl(tmp_path / "t.jsonl", rows), DataSettings(max_len=8))
    assert ds.n_labels == 4 and ds.seq_len == 8
    assert len(ds.x_train) == 42 and len(ds.x_valid) == 9
    csv = tmp_path / "t.csv"
    csv.write_text("text,labels,split\n" + "\n".join(
        f"\"{r['text']}\",{';'.join(r['labels'])},{['train', 'valid', 'test'][i % 3]}" for i, r in enumerate(rows)))
    with pytest.warns(DataWarning, match="appear in no training document: beta, gamma"):
        ds2 = load_dataset(csv)
    assert len(ds2.x_train) == 20 and ds2.label_names == sorted({l for r in rows for l in r["labels"]})


def test_word2vec_trained_on_train_only_and_cached(tmp_path: Path) -> None:
    ds = load_dataset("debtags50", DataSettings(vocab_size=2000, max_len=32, limit=300), cache=tmp_path)
    m1 = train_word2vec(ds, dim=16, epochs=1, cache=tmp_path)
    assert m1.shape == (2000, 16) and m1.dtype == np.float32
    assert np.all(m1[0] == 0)
    assert np.isfinite(m1).all()
    assert any((tmp_path / "embeddings").iterdir())
    m2 = train_word2vec(ds, dim=16, epochs=1, cache=tmp_path)
    np.testing.assert_array_equal(m1, m2)
