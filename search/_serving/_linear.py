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

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.errors import InputError

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier

__all__ = ["REFERENCE_FILE", "LinearTextModel"]

REFERENCE_FILE = "reference.npz"
_ARRAYS = ("terms", "idf", "coef", "intercept", "ngram_range", "flags", "token_pattern")
#: TfidfVectorizer settings the file does not store: the features are only reproduced with these values.
_FIXED_SETTINGS = {"analyzer": "word", "binary": False, "norm": "l2", "use_idf": True, "strip_accents": None,
                   "stop_words": None, "preprocessor": None, "tokenizer": None}
# Terms are one UTF-8 text joined by line breaks, which no term holds (the token patterns match no line
# break and n-grams are joined by a space): a fixed-width string array would take the longest term's
# width for every term.
_SEPARATOR = "\n"


@dataclass(eq=False)
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
    _vectorizer: Any = field(default=None, init=False, repr=False)

    @property
    def n_labels(self) -> int:
        return int(self.coef.shape[0])

    @classmethod
    def from_fitted(cls, vectorizer: TfidfVectorizer, classifier: OneVsRestClassifier) -> LinearTextModel:
        """From a fitted ``TfidfVectorizer`` and ``OneVsRestClassifier(LogisticRegression)``."""
        from sklearn.linear_model import LogisticRegression

        # private, but the only way OneVsRestClassifier says a label was constant in training
        from sklearn.multiclass import _ConstantPredictor

        settings = vectorizer.get_params()
        changed = {k: settings[k] for k, v in _FIXED_SETTINGS.items() if settings.get(k) != v}
        if changed:
            raise ValueError(f"the export stores TF-IDF features with {_FIXED_SETTINGS} only; the vectorizer has "
                             f"{changed}")
        terms = tuple(str(t) for t in vectorizer.get_feature_names_out())
        if any(_SEPARATOR in t for t in terms):
            raise ValueError("a TF-IDF term holds a line break; the export keeps one term per line")
        coef = np.zeros((len(classifier.estimators_), len(terms)), dtype=np.float64)
        intercept = np.zeros(len(classifier.estimators_), dtype=np.float64)
        for i, estimator in enumerate(classifier.estimators_):
            if isinstance(estimator, LogisticRegression):
                coef[i] = np.asarray(estimator.coef_, dtype=np.float64).reshape(-1)
                intercept[i] = float(np.asarray(estimator.intercept_).reshape(-1)[0])
            elif isinstance(estimator, _ConstantPredictor):  # the label was always (1) or never (0) present
                intercept[i] = np.inf if float(np.asarray(estimator.y_).reshape(-1)[0]) > 0.5 else -np.inf
            else:
                raise TypeError(f"label {i}: got a {type(estimator).__name__}; expected a LogisticRegression")
        low, high = vectorizer.ngram_range
        return cls(terms=terms, idf=np.asarray(vectorizer.idf_, dtype=np.float64), coef=coef, intercept=intercept,
                   ngram_range=(int(low), int(high)), sublinear_tf=bool(vectorizer.sublinear_tf),
                   lowercase=bool(vectorizer.lowercase), token_pattern=str(vectorizer.token_pattern))

    def vectorizer(self) -> TfidfVectorizer:
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
        blob = np.frombuffer(_SEPARATOR.join(self.terms).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as fh:  # a file object: np.savez would add ".npz" to a name without it
            np.savez_compressed(
                fh, terms=blob, idf=self.idf, coef=self.coef.astype(np.float32), intercept=self.intercept,
                ngram_range=np.array(self.ngram_range, dtype=np.int64),
                flags=np.array([self.sublinear_tf, self.lowercase], dtype=np.bool_),
                token_pattern=np.frombuffer(self.token_pattern.encode("utf-8"), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path, n_labels: int) -> LinearTextModel:
        """Read ``path``; :class:`InputError` naming it when it is not the reference an export writes."""
        expected = "expected the TF-IDF reference python -m search.export writes"

        def refuse(what: str) -> InputError:
            return InputError(f"{what}; {expected}", source=str(path))

        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [name for name in _ARRAYS if name not in data.files]
                if missing:
                    raise refuse(f"has no {', '.join(missing)}")
                arrays = {name: data[name] for name in _ARRAYS}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise refuse(f"cannot be read ({f'{type(exc).__name__}: {exc}'.splitlines()[0][:200]})") from None
        for name in ("terms", "token_pattern"):
            if arrays[name].dtype != np.uint8 or arrays[name].ndim != 1:
                raise refuse(f"its {name} are {arrays[name].dtype} of shape {arrays[name].shape}, not UTF-8 bytes")
        try:
            text, pattern = (bytes(arrays[n]).decode("utf-8") for n in ("terms", "token_pattern"))
            re.compile(pattern)
        except (UnicodeDecodeError, re.error) as exc:
            raise refuse(f"its terms or token pattern cannot be used ({type(exc).__name__}: {exc})") from None
        terms = tuple(text.split(_SEPARATOR)) if text else ()
        if not terms or len(set(terms)) != len(terms):
            raise refuse(f"holds {len(terms)} terms, {len(terms) - len(set(terms))} of them repeated")
        coef, idf, intercept = arrays["coef"], arrays["idf"], arrays["intercept"]
        shape = (n_labels, len(terms))
        if coef.shape != shape or idf.shape != (len(terms),) or intercept.shape != (n_labels,):
            raise refuse(f"holds weights of shape {coef.shape} for {len(terms)} terms, expected {shape} (the "
                         "export's labels by its terms), idf and intercept to match")
        if not (np.isfinite(coef).all() and np.isfinite(idf).all() and not np.isnan(intercept).any()):
            raise refuse("holds weights that are not finite numbers")
        if arrays["ngram_range"].shape != (2,) or arrays["flags"].shape != (2,):
            raise refuse("its ngram_range and flags are not pairs")
        low, high = (int(v) for v in arrays["ngram_range"])
        if not 1 <= low <= high:
            raise refuse(f"its ngram_range is ({low}, {high})")
        sublinear_tf, lowercase = (bool(v) for v in arrays["flags"])
        return cls(terms=terms, idf=idf.astype(np.float64), coef=coef.astype(np.float64),
                   intercept=intercept.astype(np.float64), ngram_range=(low, high), sublinear_tf=sublinear_tf,
                   lowercase=lowercase, token_pattern=pattern)
