"""The TF-IDF reference as an export carries it (``reference.npz``): the fitted scikit-learn model's
probabilities from plain arrays, constant labels included, and a file that is not one refused by name."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from search._serving._linear import LinearTextModel
from search.errors import InputError

TEXTS = ["a graphical web browser", "web server for http", "a text editor for the console", "http client library",
         "graphical image editor", "console web browser", "a library for parsing json", "json web server"]
# label 0 varies; label 1 is never present and label 2 always (scikit-learn keeps a constant for them)
LABELS = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1]])


def _fitted(**vectorizer_settings: object) -> tuple[TfidfVectorizer, OneVsRestClassifier]:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, **vectorizer_settings)  # type: ignore[arg-type]
    features = vectorizer.fit_transform(TEXTS)
    with pytest.warns(UserWarning, match="present in all training examples"):
        classifier = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear", random_state=0))
        classifier.fit(features, LABELS)
    return vectorizer, classifier


def test_the_arrays_give_the_fitted_models_probabilities(tmp_path: Path) -> None:
    vectorizer, classifier = _fitted()
    model = LinearTextModel.from_fitted(vectorizer, classifier)
    new = ["a web browser for json", "nothing known here", ""]
    expected = classifier.predict_proba(vectorizer.transform(new))
    np.testing.assert_allclose(model.predict_proba(new), expected, atol=1e-6)
    path = tmp_path / "reference.npz"
    model.save(path)
    loaded = LinearTextModel.load(path, 3)
    prob = loaded.predict_proba(new)
    np.testing.assert_allclose(prob, expected, atol=1e-6)
    assert (prob[:, 1] == 0.0).all() and (prob[:, 2] == 1.0).all()  # the constant labels, exactly
    assert loaded.terms == model.terms and loaded.ngram_range == (1, 2) and loaded.sublinear_tf


def test_features_the_file_cannot_describe_are_refused_when_saving() -> None:
    vectorizer, classifier = _fitted(binary=True)
    with pytest.raises(ValueError, match="'binary': True"):
        LinearTextModel.from_fitted(vectorizer, classifier)


def _write(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _good_arrays(model: LinearTextModel) -> dict[str, np.ndarray]:
    return {"terms": np.frombuffer("\n".join(model.terms).encode(), dtype=np.uint8), "idf": model.idf,
            "coef": model.coef.astype(np.float32), "intercept": model.intercept, "ngram_range": np.array([1, 2]),
            "flags": np.array([True, True]), "token_pattern": np.frombuffer(model.token_pattern.encode(), np.uint8)}


BAD = {
    "no coef": (lambda a: a.pop("coef"), "has no coef"),
    "terms as strings": (lambda a: a.update(terms=np.array(["a", "b"])), "not UTF-8 bytes"),
    "repeated terms": (lambda a: a.update(terms=np.frombuffer(b"web\nweb", np.uint8), idf=np.ones(2),
                                          coef=np.zeros((3, 2), np.float32)), "1 of them repeated"),
    "wrong shape": (lambda a: a.update(coef=np.zeros((2, 5), np.float32)), "expected (3,"),
    "not finite": (lambda a: a["idf"].__setitem__(0, np.nan), "not finite"),
    "bad pattern": (lambda a: a.update(token_pattern=np.frombuffer(b"(", np.uint8)), "token pattern"),
    "bad ngram range": (lambda a: a.update(ngram_range=np.array([2, 1])), "ngram_range is (2, 1)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_file_that_is_not_the_reference_is_refused_by_name(case: str, tmp_path: Path) -> None:
    change, needle = BAD[case]
    arrays = _good_arrays(LinearTextModel.from_fitted(*_fitted()))
    change(arrays)
    path = tmp_path / "reference.npz"
    _write(path, **arrays)
    with pytest.raises(InputError) as info:
        LinearTextModel.load(path, 3)
    assert str(path) in str(info.value) and needle in str(info.value), str(info.value)
    assert "expected the TF-IDF reference" in str(info.value)
