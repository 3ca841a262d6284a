"""Labels and probabilities for new text from an export folder, under any Keras backend.

The folder is checked (manifest, checksums, vocabulary) without keras; keras is imported when the models
are loaded, with whatever backend ``KERAS_BACKEND`` names (TensorFlow, JAX or PyTorch): the saved models
use keras.ops only. A final ensemble's TF-IDF reference is scikit-learn's, from arrays (``_linear``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search._serving._bundle import KERAS, Manifest, ModelEntry, check_threshold, read_manifest, read_vocabulary
from search._serving._linear import LinearTextModel
from search.config import PREDICT_BATCH
from search.errors import InputError

__all__ = ["Prediction", "Predictor", "load_predictor", "open_predictor"]


@dataclass(frozen=True)
class Prediction:
    """One document's predicted labels, most probable first, with their probabilities."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "probabilities": [round(p, 6) for p in self.probabilities]}


class Predictor:
    """An exported model: text in, labels out. Made by :func:`load_predictor`.

    ``predict(texts)`` returns one :class:`Prediction` per text; ``predict_proba(texts)`` the
    probabilities of every label (``label_names`` order); ``vectorize(texts)`` the token ids the Keras
    models read, exactly as the training pipeline made them.

    ``models`` holds one loaded model per manifest entry, in its order: a Keras model, or the
    :class:`LinearTextModel` of a ``tfidf-logreg`` entry (it reads the raw text).
    """

    def __init__(self, folder: Path, manifest: Manifest, vocabulary: Sequence[str],
                 models: Sequence[Any]) -> None:
        from search.data._vectorize import tokenizer

        if len(models) != len(manifest.models):
            raise ValueError(f"got {len(models)} models for the manifest's {len(manifest.models)} entries")
        self.folder = folder
        self.manifest = manifest
        self.vocabulary = list(vocabulary)
        self.models = list(models)
        self._analyse = tokenizer(**manifest.tokenizer)

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.label_names)

    @property
    def threshold(self) -> float:
        """The global threshold tuned on validation (see :attr:`thresholds` for what ``predict`` uses)."""
        return self.manifest.threshold

    @property
    def thresholds(self) -> np.ndarray:
        """What each label's probability must reach by default, in label order: the per-label thresholds of
        a final ensemble that has them, else the global threshold for every label."""
        return np.broadcast_to(np.asarray(self.manifest.decision(), dtype=np.float64),
                               (len(self.manifest.label_names),))

    @property
    def max_len(self) -> int:
        return self.manifest.max_len

    def vectorize(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids ``[n, max_len]`` (int32, post-padded, unknown words = 1), as the study's data cache."""
        from search.data._vectorize import texts_to_ids

        ids, _ = texts_to_ids([self._analyse(text) for text in _texts(texts)], self.vocabulary, self.max_len)
        return ids

    def predict_proba(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        """Probabilities ``[n, n_labels]`` (float32); an ensemble's are the mean of its models', each
        counted its weight times.

        ``progress``: a bar on stderr (``None``: only when stderr is a terminal and the input is long).
        Documents go through in chunks of the size the study predicted with, so a split scored here gets
        the same numbers the study recorded.
        """
        texts = _texts(texts)
        out = np.zeros((len(texts), len(self.manifest.label_names)), dtype=np.float32)
        entries = self.manifest.models
        total = sum(entry.weight for entry in entries)
        bar = _progress_bar(len(texts), progress)
        try:
            for start in range(0, len(texts), PREDICT_BATCH):
                chunk = texts[start:start + PREDICT_BATCH]
                ids = self.vectorize(chunk)
                probs = [_predict(entry, model, chunk, ids) for entry, model in zip(entries, self.models, strict=True)]
                if len(probs) == 1:
                    out[start:start + len(ids)] = probs[0]
                else:  # in float64, as the ensemble's selection averaged them
                    mean = sum(entry.weight * p.astype(np.float64) for entry, p in zip(entries, probs, strict=True))
                    out[start:start + len(ids)] = mean / total
                if bar is not None:
                    bar.update(len(ids))
        finally:
            if bar is not None:
                bar.close()
        return out

    def predict(self, texts: Sequence[str], *, threshold: float | None = None, top_k: int | None = None,
                progress: bool | None = False) -> list[Prediction]:
        """The labels whose probability reaches ``threshold`` (default: the tuned ones, :attr:`thresholds`),
        most probable first, at most ``top_k`` of them."""
        cut = self.thresholds if threshold is None else np.full(len(self.manifest.label_names),
                                                                check_threshold(threshold, "threshold"))
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"got {top_k!r}; expected a positive integer", source="top_k")
        probabilities = self.predict_proba(texts, progress=progress)
        names = self.manifest.label_names
        out = []
        for row in probabilities:
            order = [int(i) for i in np.argsort(-row, kind="stable") if row[i] >= cut[i]][:top_k]
            out.append(Prediction(tuple(names[i] for i in order), tuple(float(row[i]) for i in order)))
        return out


def load_predictor(folder: str | Path) -> Predictor:
    """The predictor of export ``folder`` (made by ``python -m search.export``).

    Raises :class:`~search.errors.InputError` naming the file when the folder is not an export or a file
    in it is missing, damaged, or not a Keras model (or TF-IDF reference) as the manifest says.
    """
    root = Path(folder)
    manifest = read_manifest(root)
    return open_predictor(root, manifest, read_vocabulary(root, manifest))


def open_predictor(folder: Path, manifest: Manifest, vocabulary: Sequence[str]) -> Predictor:
    """The predictor of a folder whose manifest and vocabulary were read (and checked) already."""
    models = [_load_model(folder / m.file, manifest) if m.kind == KERAS
              else LinearTextModel.load(folder / m.file, len(manifest.label_names)) for m in manifest.models]
    return Predictor(folder, manifest, vocabulary, models)


def _predict(entry: ModelEntry, model: Any, texts: list[str], ids: np.ndarray) -> np.ndarray:
    if entry.kind == KERAS:
        from search.model import predict_probabilities

        return predict_probabilities(model, ids, PREDICT_BATCH, any_length=entry.any_length)
    return np.asarray(model.predict_proba(texts), dtype=np.float32)


def _load_model(path: Path, manifest: Manifest) -> Any:
    from search.model import load_model

    try:
        model = load_model(path, compile=False)  # predicting needs no optimizer
    except Exception as exc:  # keras raises many kinds for a file that is not a model it can read
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise InputError(f"cannot be loaded as a Keras model ({reason}); expected the model as exported",
                         source=str(path)) from None
    outputs = model.outputs[0].shape[-1] if model.outputs else None
    if outputs != len(manifest.label_names):
        raise InputError(f"predicts {outputs} labels; expected {len(manifest.label_names)} as export.json's "
                         "label_names", source=str(path))
    return model


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got one string; pass [text]")
    out = list(texts)
    for n, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text {n} is {type(text).__name__}; expected str")
    return out


def _progress_bar(total: int, progress: bool | None) -> Any:
    """tqdm on stderr for inputs of more than one chunk; ``None`` leaves it to tqdm (off unless a terminal)."""
    if progress is False or total <= PREDICT_BATCH:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="doc", desc="predicting", disable=None if progress is None else False)
