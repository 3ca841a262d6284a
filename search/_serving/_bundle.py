"""The export folder's format: what ``export.json`` holds, and reading it back with every check (keras-free).

An export is a folder that needs nothing of the study, the store or the data cache::

    export.json       the manifest: models, threshold, label names, max_len, tokeniser settings, checksums
    vocabulary.txt    one token per line; line i is token id i (0 = padding, 1 = unknown)
    model-0.keras     the Keras model(s); several are averaged (an ensemble), one threshold for all
    reference.npz     a final ensemble's TF-IDF reference, when it joined (see ``_linear``)
    README.md         the model card

An ensemble's members carry a weight (how many times the greedy selection picked them): its
probabilities are the weighted mean of its members'. A final ensemble may decide with one threshold
per label (``label_thresholds``, in the label order) instead of the global ``threshold``. Format 1
(trial exports before ensembles) had neither weights nor a reference, format 2 no per-label
thresholds; both are still read. A folder with per-label thresholds is written as format 3, so that a
reader of format 2 refuses it rather than silently deciding with the one threshold; every other folder
is still written as format 2, which older installations read.

Every file the manifest lists carries its SHA-256, so a truncated or damaged copy is refused by name
before keras ever reads it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.data._cache import file_digest
from search.errors import InputError

__all__ = ["FORMAT", "VERSION", "MANIFEST", "VOCABULARY", "CARD", "KERAS", "TFIDF_LOGREG", "ModelEntry", "Manifest",
           "sha256_of", "read_manifest", "read_vocabulary", "write_vocabulary", "check_threshold"]

FORMAT = "keras-text-search export"
VERSION = 3  # the newest format written: a folder with per-label thresholds
#: The format of a folder without per-label thresholds.
VERSION_ONE_THRESHOLD = 2
READS = (1, 2, 3)
#: What a model entry is: a Keras model (token ids in), or the TF-IDF reference (raw text in).
KERAS = "keras"
TFIDF_LOGREG = "tfidf-logreg"
MODEL_KINDS = (KERAS, TFIDF_LOGREG)
#: What the folder holds: one trial's model, or the study's final model (ensemble or refit).
EXPORT_KINDS = ("trial", "final")
MANIFEST = "export.json"
VOCABULARY = "vocabulary.txt"
CARD = "README.md"
#: How an ensemble's members are combined: the mean of their probabilities, scored at one threshold.
COMBINE_MEAN = "mean"

_EXPECTED = "expected a folder made by python -m search.export"


@dataclass(frozen=True)
class ModelEntry:
    """One model of the export: its file and checksum, where it came from (study trial, refit or the
    reference), what it is (``kind``) and its ``weight`` in the mean.

    ``any_length``: a Keras model that takes token ids of any length with the same prediction whatever
    padding follows a text (the factory's masked RCNN), so the predictor feeds it batches of texts of
    similar length, each cut to its longest. Absent (a folder of an earlier version, or a reader that
    predates the key and ignores it): padded batches, which give the same probabilities, more slowly."""

    file: str
    sha256: str
    source: dict[str, Any] = field(default_factory=dict)
    kind: str = KERAS
    weight: int = 1
    any_length: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {"file": self.file, "sha256": self.sha256, "kind": self.kind, "weight": self.weight,
               "source": dict(self.source)}
        return out | {"any_length": self.any_length} if self.kind == KERAS else out


@dataclass(frozen=True)
class Manifest:
    """What ``export.json`` says. ``kind`` is ``"trial"`` (one trial's model) or ``"final"`` (the study's
    ensemble or refit model); an ensemble lists several models, combined by ``combine``: the mean of
    their probabilities, each counted its entry's ``weight`` times."""

    kind: str
    models: tuple[ModelEntry, ...]
    threshold: float
    label_names: tuple[str, ...]
    max_len: int
    vocab_size: int
    vocabulary_sha256: str
    tokenizer: dict[str, Any]
    combine: str = COMBINE_MEAN
    study: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    created: str = ""
    #: one per label (in ``label_names``' order), what a label's probability must reach; empty: ``threshold``
    label_thresholds: tuple[float, ...] = ()

    def decision(self) -> float | tuple[float, ...]:
        """What a label's probability must reach: the per-label thresholds where there are, else the one."""
        return self.label_thresholds or self.threshold

    def to_json(self) -> dict[str, Any]:
        version = VERSION if self.label_thresholds else VERSION_ONE_THRESHOLD
        return {"format": FORMAT, "version": version, "kind": self.kind, "combine": self.combine,
                "models": [m.to_json() for m in self.models], "threshold": self.threshold,
                "label_names": list(self.label_names), "max_len": self.max_len, "vocabulary": VOCABULARY,
                "vocab_size": self.vocab_size, "vocabulary_sha256": self.vocabulary_sha256,
                "tokenizer": dict(self.tokenizer), "study": dict(self.study), "command": self.command,
                "created": self.created} | ({"label_thresholds": list(self.label_thresholds)}
                                            if self.label_thresholds else {})


#: A file's SHA-256, as the data cache fingerprints dataset files.
sha256_of = file_digest


def check_threshold(value: object, source: str, field_name: str | None = None) -> float:
    """A decision threshold: a number strictly between 0 and 1 (0 would predict every label, 1 none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value < 1:
        raise InputError(f"got {value!r}; expected a number strictly between 0 and 1", source=source,
                         field=field_name)
    return float(value)


def _field(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], source: str, what: str) -> Any:
    value = data.get(name)
    if value is None or not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        got = "nothing" if value is None else type(value).__name__
        raise InputError(f"got {got}; expected {what}", source=source, field=name)
    return value


def _checked_file(folder: Path, name: str, digest: str, source: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise InputError(f"missing; expected the file {MANIFEST} lists", source=str(path))
    if sha256_of(path) != digest:
        raise InputError(f"corrupt (its SHA-256 differs from the one in {MANIFEST}); expected the file as "
                         "exported", source=str(path))
    return path


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of export ``folder``, every listed file present and intact; :class:`InputError` naming
    the file and field otherwise."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"not a folder; {_EXPECTED}", source=str(root))
    path = root / MANIFEST
    source = str(path)
    if not path.is_file():
        raise InputError(f"not an export (no {MANIFEST}); {_EXPECTED}", source=str(root))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text; expected the JSON manifest search.export writes", source=source) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno}); expected the manifest search.export "
                         "writes", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror}); {_EXPECTED}", source=source) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"got {got!r}; expected {FORMAT!r}", source=source, field="format")
    if data.get("version") not in READS or isinstance(data.get("version"), bool):
        known = f"{', '.join(map(str, READS[:-1]))} or {READS[-1]}"
        raise InputError(f"got {data.get('version')!r}; expected {known} (the export formats this installation "
                         "reads)", source=source, field="version")
    kind = _field(data, "kind", str, source, "'trial' or 'final'")
    if kind not in EXPORT_KINDS:
        raise InputError(f"got {kind!r}; expected 'trial' or 'final'", source=source, field="kind")
    combine = data.get("combine", COMBINE_MEAN)
    if combine != COMBINE_MEAN:
        raise InputError(f"got {combine!r}; expected {COMBINE_MEAN!r}", source=source, field="combine")
    raw_models = _field(data, "models", list, source, "a non-empty list of model files")
    if not raw_models:
        raise InputError("got an empty list; expected at least one model file", source=source, field="models")
    models = []
    for n, item in enumerate(raw_models):
        where = f"models[{n}]"
        if not isinstance(item, dict) or not isinstance(item.get("file"), str) or \
                not isinstance(item.get("sha256"), str) or Path(item["file"]).name != item["file"]:
            raise InputError("expected {\"file\": NAME in the folder, \"sha256\": HEX}", source=source, field=where)
        model_kind, weight = item.get("kind", KERAS), item.get("weight", 1)
        if model_kind not in MODEL_KINDS:
            raise InputError(f"got {model_kind!r}; expected one of {', '.join(MODEL_KINDS)}", source=source,
                             field=f"{where}.kind")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise InputError(f"got {weight!r}; expected a positive integer (times the model is counted in the "
                             "mean)", source=source, field=f"{where}.weight")
        any_length = item.get("any_length", False)
        if not isinstance(any_length, bool):
            raise InputError(f"got {any_length!r}; expected true or false (whether the model takes any length)",
                             source=source, field=f"{where}.any_length")
        models.append(ModelEntry(item["file"], item["sha256"], dict(item.get("source") or {}), model_kind, weight,
                                 any_length))
    if all(m.kind != KERAS for m in models):
        raise InputError("lists no Keras model; expected at least one", source=source, field="models")
    threshold = check_threshold(data.get("threshold"), source, "threshold")
    labels = _field(data, "label_names", list, source, "a list of label names")
    if not labels or not all(isinstance(n, str) for n in labels):
        raise InputError("expected a non-empty list of label names (strings)", source=source, field="label_names")
    label_thresholds: tuple[float, ...] = ()
    if data.get("label_thresholds") is not None:
        raw = data["label_thresholds"]
        if not isinstance(raw, list) or len(raw) != len(labels):
            raise InputError(f"expected a list of {len(labels)} thresholds (one per label name)", source=source,
                             field="label_thresholds")
        label_thresholds = tuple(check_threshold(v, source, f"label_thresholds[{n}]") for n, v in enumerate(raw))
    max_len = _field(data, "max_len", int, source, "a positive integer (tokens per document)")
    vocab_size = _field(data, "vocab_size", int, source, "the number of tokens in vocabulary.txt")
    if max_len < 1 or vocab_size < 3:
        name = "max_len" if max_len < 1 else "vocab_size"
        raise InputError(f"got {data[name]}; expected a positive integer", source=source, field=name)
    tokenizer = _field(data, "tokenizer", dict, source, "the tokeniser settings (lowercase, token_pattern)")
    if not isinstance(tokenizer.get("lowercase"), bool) or not isinstance(tokenizer.get("token_pattern"), str):
        raise InputError("expected {\"lowercase\": true|false, \"token_pattern\": REGEX}", source=source,
                         field="tokenizer")
    manifest = Manifest(
        kind=kind, models=tuple(models), threshold=threshold, label_names=tuple(labels), max_len=max_len,
        vocab_size=vocab_size, vocabulary_sha256=_field(data, "vocabulary_sha256", str, source, "a SHA-256"),
        tokenizer={"lowercase": tokenizer["lowercase"], "token_pattern": tokenizer["token_pattern"]},
        combine=combine, study=dict(data.get("study") or {}), command=str(data.get("command") or ""),
        created=str(data.get("created") or ""), label_thresholds=label_thresholds)
    _checked_file(root, VOCABULARY, manifest.vocabulary_sha256, source)
    for entry in manifest.models:
        _checked_file(root, entry.file, entry.sha256, source)
    return manifest


def read_vocabulary(folder: str | Path, manifest: Manifest) -> list[str]:
    """The tokens of ``vocabulary.txt``, id order; its checksum was verified by :func:`read_manifest`."""
    path = Path(folder) / VOCABULARY
    try:
        tokens = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text; expected one token per line", source=str(path)) from None
    if tokens and tokens[-1] == "":
        tokens.pop()
    if len(tokens) != manifest.vocab_size:
        raise InputError(f"has {len(tokens)} tokens; expected {manifest.vocab_size} as {MANIFEST} says",
                         source=str(path))
    return tokens


def write_vocabulary(path: Path, vocabulary: Sequence[str]) -> None:
    if any("\n" in token for token in vocabulary):
        raise ValueError("a token holds a line break; the vocabulary file keeps one token per line")
    path.write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")
