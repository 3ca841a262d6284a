"""The reference a search must beat: TF-IDF + one-vs-rest logistic regression, scikit-learn only.

It is what a user gets without the service, in a minute: word 1-2 grams of the **raw text** of the same
documents (sublinear TF, ``min_df`` 2), logistic regression with C=10 per label, one global decision
threshold tuned on the validation split exactly as for the deep models. A dataset that holds only token
ids (the seed's ``.npz``) falls back to those ids as words, and :attr:`Reference.input` says so.

The launcher prints its validation score beside the best trial's; the report scores it on the test
split with a paired bootstrap against every deep row.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from search.metrics import tune_threshold

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier

    from search.data import Dataset, DataSettings

__all__ = ["Reference", "fit_reference", "RAW_TEXT", "TOKEN_IDS"]

RAW_TEXT = "raw text"
TOKEN_IDS = "token ids"
NGRAMS = (1, 2)
C = 10.0
#: Below this many training documents a term seen once is kept (min_df 1): a tiny split has few repeats.
MIN_DF_DOCUMENTS = 1000


@dataclass
class Reference:
    input: str  # RAW_TEXT, or TOKEN_IDS where the dataset has no text
    threshold: float
    valid_micro_f1: float
    valid_prob: np.ndarray
    test_prob: np.ndarray | None  # only when the test split was asked for
    seconds: float
    # the fitted model, only when asked for (an export carries it; others need not hold 60 MB of weights)
    vectorizer: TfidfVectorizer | None = None
    classifier: OneVsRestClassifier | None = None


def _id_documents(x: np.ndarray) -> list[str]:
    return [" ".join(f"t{int(i)}" for i in row[row != 0]) for row in np.asarray(x)]


def fit_reference(data: str, settings: DataSettings, *, dataset: Dataset | None = None,
                  include_test: bool = False, keep_model: bool = False) -> Reference:
    """Fit the reference on the training split of ``data`` (with ``settings``' split and ``limit``), tune
    its threshold on validation, and (``include_test``) predict the test split. ``dataset``: the loaded
    token-id dataset, when the caller has it (its labels are the reference's labels). ``keep_model``:
    the result holds the fitted vectorizer and classifier."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from search.data import load_dataset, load_texts

    start = time.perf_counter()
    if dataset is None or (include_test and dataset.x_test is None):
        dataset = load_dataset(data, settings, include_test=include_test)
    texts = load_texts(data, settings)
    splits = ("train", "valid", "test") if include_test else ("train", "valid")
    if texts is not None:
        documents, kind = {s: texts[s] for s in splits}, RAW_TEXT
    else:
        documents, kind = {s: _id_documents(dataset.split(s)[0]) for s in splits}, TOKEN_IDS
    vectorizer = TfidfVectorizer(ngram_range=NGRAMS, sublinear_tf=True,
                                 min_df=2 if len(documents["train"]) >= MIN_DF_DOCUMENTS else 1,
                                 token_pattern=r"\S+" if kind == TOKEN_IDS else r"(?u)\b\w\w+\b")
    x_train = vectorizer.fit_transform(documents["train"])
    # a fixed random_state: finalize's ensemble and the report fit it apart and must get the same model
    classifier = OneVsRestClassifier(LogisticRegression(C=C, solver="liblinear", random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a label absent from the training split: constant
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x_train, np.asarray(dataset.y_train))
        valid_prob = classifier.predict_proba(vectorizer.transform(documents["valid"]))
        test_prob = classifier.predict_proba(vectorizer.transform(documents["test"])) if include_test else None
    threshold, valid_f1 = tune_threshold(dataset.y_valid, valid_prob)
    return Reference(input=kind, threshold=float(threshold), valid_micro_f1=float(valid_f1),
                     valid_prob=np.asarray(valid_prob, dtype=np.float32),
                     test_prob=None if test_prob is None else np.asarray(test_prob, dtype=np.float32),
                     seconds=time.perf_counter() - start, vectorizer=vectorizer if keep_model else None,
                     classifier=classifier if keep_model else None)
