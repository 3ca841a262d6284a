"""The TF-IDF reference inside an export folder: its terms, idf and logistic-regression weights as arrays.

A final ensemble may average in the reference (TF-IDF + one-vs-rest logistic regression, see
:mod:`search.reference`), so an export of it must carry a scikit-learn model. Not as a pickle: loading
a pickle runs code from the folder and breaks across scikit-learn versions; these arrays (``.npz``,
read with ``allow_pickle=False``) give only numbers, under any version. Loaded, the terms and idf
become scikit-learn's own ``TfidfVectorizer`` (fixed vocabulary, the fitted idf), and each label's
probability is the logistic regression's ``expit(x . coef + intercept)``, what its ``predict_proba``
computes; a label the training split never had (scikit-learn's constant predictor) has zero weights
and an intercept of -inf or +inf, so its probability is exactly 0 or 1 as before.

The file stores the weights as float32 (half the size: 158k terms x 50 labels is 32 MB on debtags50);
loaded, they are float64 again, and the probabilities differ from the fitted model's by about 1e-7.
"""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.errors import InputError

__all__ = ["REFERENCE_FILE", "LinearTextModel"]

REFERENCE_FILE = "reference.npz"
_ARRAYS = ("terms", "idf", "coef", "intercept", "ngram_range", "flags", "token_pattern")


@dataclass
class LinearTextModel:
    """TF-IDF features of raw text (``terms`` with their ``idf``), one logistic regression per label."""

    terms: tuple[str, ...]
    idf: np.ndarray  # (n_terms,) float64
    coef: np.ndarray  # (n_labels, n_terms) float64 (float32 in the file)
    intercept: np.ndarray  # (n_labels,) float64; -inf / +inf for a label that was constant in training
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    lowercase: bool
    token_pattern: str
    _vectorizer: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_labels(self) -> int:
        return int(self.coef.shape[0])

    @classmethod
    def from_fitted(cls, vectorizer: Any, classifier: Any) -> LinearTextModel:
        """From a fitted ``TfidfVectorizer`` and ``OneVsRestClassifier(LogisticRegression)``."""
        terms = tuple(str(t) for t in vectorizer.get_feature_names_out())
        coef = np.zeros((len(classifier.estimators_), len(terms)), dtype=np.float64)
        intercept = np.zeros(len(classifier.estimators_), dtype=np.float64)
        for i, estimator in enumerate(classifier.estimators_):
            if hasattr(estimator, "coef_"):
                coef[i] = np.asarray(estimator.coef_, dtype=np.float64).reshape(-1)
                intercept[i] = float(np.asarray(estimator.intercept_).reshape(-1)[0])
            else:  # scikit-learn's _ConstantPredictor: the label was always (1) or never (0) present
                intercept[i] = np.inf if float(np.asarray(estimator.y_).reshape(-1)[0]) > 0.5 else -np.inf
        low, high = vectorizer.ngram_range
        return cls(terms=terms, idf=np.asarray(vectorizer.idf_, dtype=np.float64), coef=coef, intercept=intercept,
                   ngram_range=(int(low), int(high)), sublinear_tf=bool(vectorizer.sublinear_tf),
                   lowercase=bool(vectorizer.lowercase), token_pattern=str(vectorizer.token_pattern))

    def vectorizer(self) -> Any:
        """scikit-learn's ``TfidfVectorizer`` with these terms and idf (made once)."""
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(ngram_range=self.ngram_range, sublinear_tf=self.sublinear_tf,
                                         lowercase=self.lowercase, token_pattern=self.token_pattern,
                                         vocabulary={term: i for i, term in enumerate(self.terms)})
            vectorizer.idf_ = self.idf
            self._vectorizer = vectorizer
        return self._vectorizer

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``[n, n_labels]`` (float32) of raw ``texts``."""
        from scipy.special import expit

        scores = np.asarray(self.vectorizer().transform(list(texts)) @ self.coef.T) + self.intercept
        return expit(scores).astype(np.float32)

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:  # a file object: np.savez would add ".npz" to a name without it
            np.savez_compressed(
                fh, terms=np.array(self.terms, dtype=np.str_), idf=self.idf, coef=self.coef.astype(np.float32),
                intercept=self.intercept,
                ngram_range=np.array(self.ngram_range, dtype=np.int64),
                flags=np.array([self.sublinear_tf, self.lowercase], dtype=np.bool_),
                token_pattern=np.array(self.token_pattern, dtype=np.str_))

    @classmethod
    def load(cls, path: Path, n_labels: int) -> LinearTextModel:
        """Read ``path``; :class:`InputError` naming it when it is not the reference an export writes."""
        expected = "expected the TF-IDF reference python -m search.export writes"
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [name for name in _ARRAYS if name not in data.files]
                if missing:
                    raise InputError(f"has no {', '.join(missing)}; {expected}", source=str(path))
                arrays = {name: data[name] for name in _ARRAYS}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise InputError(f"cannot be read ({reason}); {expected}", source=str(path)) from None
        terms, coef = arrays["terms"], arrays["coef"]
        shape = (n_labels, len(terms))
        if coef.ndim != 2 or coef.shape != shape or arrays["idf"].shape != (len(terms),) \
                or arrays["intercept"].shape != (n_labels,):
            raise InputError(f"holds weights of shape {coef.shape} for {len(terms)} terms; expected {shape} (the "
                             "export's labels by its terms), idf and intercept to match", source=str(path))
        low, high = (int(v) for v in arrays["ngram_range"])
        sublinear_tf, lowercase = (bool(v) for v in arrays["flags"])
        return cls(terms=tuple(str(t) for t in terms), idf=arrays["idf"].astype(np.float64),
                   coef=coef.astype(np.float64), intercept=arrays["intercept"].astype(np.float64),
                   ngram_range=(low, high), sublinear_tf=sublinear_tf, lowercase=lowercase,
                   token_pattern=str(arrays["token_pattern"]))
