"""The model card (``README.md`` in the export folder): data, parameters or members, validation, provenance."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search import reference
from search._serving._bundle import Manifest
from search.record import TrialRecord

__all__ = ["CardFacts", "DataFacts", "FinalCardFacts", "MemberFacts", "render_card", "render_final_card"]


@dataclass
class DataFacts:
    """The data the folder's models were trained on."""

    data: str
    data_file_sha256: str
    data_fingerprint: str
    sizes: Mapping[str, int]
    limit: int | None


@dataclass
class CardFacts:
    """What a trial's card says besides the manifest: where the model came from and how it scored."""

    study: str
    space: str
    storage: str
    trial: int
    is_best: bool
    best_trial: int
    n_complete: int
    record: TrialRecord
    recorded_value: float
    data: DataFacts
    validation: Mapping[str, float]  # the folder's own scores on the validation split (text in)
    versions: Mapping[str, str]


@dataclass(frozen=True)
class MemberFacts:
    """One model of a final export, as the card lists it."""

    file: str
    weight: int
    what: str  # "trial 3", "refit of trial 1 ...", "TF-IDF + logistic regression reference"
    valid_micro_f1: float | None  # its own on validation (a trial's recorded value, the reference's tuned
    # score); none for a refit, which trained on validation
    record: TrialRecord | None  # the trial's record (none for the reference)


@dataclass
class FinalCardFacts:
    """What a final model's card says: which final model, its members, how it scored on validation."""

    study: str
    space: str
    storage: str
    which: str  # "ensemble", "refit" or "refit-ensemble" (search._final.FINAL_CHOICES)
    name: str  # the final model's name (FinalEnsemble.name / FinalRefit.name / FinalRefitEnsemble.name)
    members: Sequence[MemberFacts]
    recorded_value: float | None  # the ensemble's validation micro-F1 as finalize selected it; none for a refit
    data: DataFacts
    validation: Mapping[str, float]  # at the global threshold
    versions: Mapping[str, str]
    validation_per_label: Mapping[str, float] | None = None  # at the per-label thresholds, where there are


_REFERENCE_SETTINGS = (f"TF-IDF word {reference.NGRAMS[0]}-{reference.NGRAMS[1]} grams of the raw text, logistic "
                       f"regression C={reference.C:g}")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|")


def _files(manifest: Manifest) -> str:
    return ", ".join(f"`{m.file}`" for m in manifest.models)


def _use() -> list[str]:
    return [
        "## Use",
        "",
        "```bash",
        "python -m search.predict THIS_FOLDER --text \"a library for parsing JSON\"",
        "python -m search.predict THIS_FOLDER --input new.jsonl --output predictions.jsonl [--top-k 5] [--threshold T]",
        "```",
        "```python",
        "import search",
        "predictor = search.load_predictor(\"THIS_FOLDER\")",
        "predictor.predict([\"a library for parsing JSON\"])   # [Prediction(labels=(...), probabilities=(...))]",
        "```",
        "",
    ]


def _data(manifest: Manifest, facts: DataFacts, valid_note: str = "") -> list[str]:
    pattern = manifest.tokenizer["token_pattern"].replace("|", "\\|")
    train = f"{facts.sizes.get('train', 0):,}" + (f" (the first {facts.limit:,} of the split)" if facts.limit else "")
    return [
        "## Data",
        "",
        "| | |",
        "|---|---|",
        (f"| dataset | `{facts.data}` (file SHA-256 `{facts.data_file_sha256[:16]}…`, fingerprint "
         f"`{facts.data_fingerprint}`) |"),
        (f"| documents | train {train}, valid {facts.sizes.get('valid', 0):,}{valid_note}; the test split was not "
         "read |"),
        f"| labels | {len(manifest.label_names)} (their names, in output order, in `export.json`) |",
        f"| vocabulary | {manifest.vocab_size:,} ids from the training split: 0 = padding, 1 = unknown word |",
        f"| tokeniser | lower-case: {str(manifest.tokenizer['lowercase']).lower()}; token pattern `{pattern}` |",
        f"| length | the first {manifest.max_len} tokens of a document, post-padded |",
        "",
    ]


def _scores(v: Mapping[str, float]) -> list[str]:
    return [
        f"| macro-F1 | {_num(v.get('macro_f1', math.nan))} |",
        f"| precision@5 | {_num(v.get('precision_at_5', math.nan))} |",
        f"| micro / macro ROC-AUC | {_num(v.get('micro_auc', math.nan))} / {_num(v.get('macro_auc', math.nan))} |",
    ]


def _per_label_scores(v: Mapping[str, float]) -> list[str]:
    micro, macro = _num(v.get("micro_f1", math.nan)), _num(v.get("macro_f1", math.nan))
    return [f"| micro-F1 / macro-F1 at the per-label thresholds (what it decides with) | {micro} / {macro} |"]


def _made_by(manifest: Manifest, storage: str, versions: Mapping[str, str]) -> list[str]:
    return [
        "## Made by",
        "",
        "```bash",
        manifest.command,
        "```",
        "",
        f"On {manifest.created}, from `{storage}`; " + ", ".join(f"{k} {val}" for k, val in versions.items()) + ".",
        "",
    ]


def _attention(record: TrialRecord) -> str:
    return f"`{record.position}`" + (" (degenerate: attends over one step)" if record.degenerate_attention else "")


def render_card(manifest: Manifest, facts: CardFacts) -> str:
    record, v = facts.record, facts.validation
    which = "the best" if facts.is_best else f"not the best (that is trial {facts.best_trial})"
    lines = [
        f"# Model card: study `{facts.study}`, trial {facts.trial}",
        "",
        (f"A multi-label text classifier ({len(manifest.label_names)} labels) found by the `{facts.space}` search of "
        f"study `{facts.study}`: trial {facts.trial}, {which} of its {facts.n_complete} complete trials. This folder "
        "needs nothing of the study, its store or the data cache: `export.json` holds the threshold, label names, "
        f"`max_len` and tokeniser settings, `vocabulary.txt` the vocabulary, {_files(manifest)} the Keras model."),
        "",
        *_use(),
        *_data(manifest, facts.data),
        "## Parameters",
        "",
        "| parameter | value | |",
        "|---|---|---|",
    ]
    for name, value in sorted(record.params.items()):
        how = "searched" if name in record.searched_params else "fixed"
        lines.append(f"| `{name}` | {_cell(value)} | {how} |")
    valid = facts.data.sizes.get("valid", 0)
    lines += [
        "",
        (f"Seed {record.seed}; {record.trainable_params or 0:,} trainable and {record.non_trainable_params or 0:,} "
        f"non-trainable weights; attention position {_attention(record)}."),
        "",
        f"## Validation ({valid:,} documents, the whole split)",
        "",
        "| | |",
        "|---|---|",
        f"| threshold (tuned on validation) | {manifest.threshold:.2f} |",
        f"| micro-F1, as the trial recorded it | {_num(facts.recorded_value)} |",
        f"| micro-F1 through this folder (text → tokeniser → model) | {_num(v.get('micro_f1', math.nan))} |",
        f"| micro-F1 at 0.5 (recorded) | {_num(record.val_micro_f1_at_half)} |",
        *_scores(v),
        f"| best epoch | {record.best_epoch if record.best_epoch is not None else '-'} of {record.epochs_run} |",
        "",
        "## Test",
        "",
        "Not recorded with the study: only the report reads the test split. Run "
        f"`python -m search.report --study {facts.study}` for test micro-F1, macro-F1, P@5 and ROC-AUC"
        + (" of this trial's model." if facts.is_best else
           f"; it scores the best trial ({facts.best_trial}), and this export is trial {facts.trial}."),
        "",
        *_made_by(manifest, facts.storage, facts.versions),
    ]
    return "\n".join(lines)


def render_final_card(manifest: Manifest, facts: FinalCardFacts) -> str:
    v = facts.validation
    valid = facts.data.sizes.get("valid", 0)
    refit = facts.which in ("refit", "refit-ensemble")
    per_label = ("; it decides with one threshold per label: the global one shrunk toward each label's best on "
                 "validation, by the factor whose cross-fitted micro-F1 there is best" if manifest.label_thresholds
                 else "")
    if facts.which == "refit":
        what = ("the study's best configuration trained again on its training and validation documents, for the "
                "trial's best number of epochs, at its seed; its threshold is the trial's, tuned on validation "
                "before the refit")
    elif facts.which == "refit-ensemble":
        what = ("the study's final ensemble (chosen on the validation split by greedy forward selection over "
                "averaged probabilities, one global threshold tuned on the average" + per_label + ") with each "
                "deep member trained again on the training and validation documents, for its trial's best number "
                "of epochs, at its seed; the picks, weights and thresholds are the ensemble's, chosen before the "
                "refit")
    else:
        what = ("an ensemble chosen on the validation split by greedy forward selection over averaged "
                "probabilities (a model picked twice counts twice), one global threshold tuned on the average"
                + per_label)
    lines = [
        f"# Model card: study `{facts.study}`, final model: {facts.name}",
        "",
        (f"A multi-label text classifier ({len(manifest.label_names)} labels) made by `python -m search.finalize` from "
        f"the `{facts.space}` search of study `{facts.study}`: {what}. This folder needs nothing of the study, its "
        "store or the data cache: `export.json` holds the threshold, the models and their weights, label names, "
        f"`max_len` and tokeniser settings, `vocabulary.txt` the vocabulary, {_files(manifest)} the models."),
        "",
        *_use(),
        *_data(manifest, facts.data, " (trained on too: the refit)" if refit else ""),
        "## Models",
        "",
        "Probabilities are the mean of these models', each counted its weight times.",
        "",
        "| file | weight | model | attention position | its validation micro-F1 | parameters |",
        "|---|---:|---|---|---:|---|",
    ]
    for m in facts.members:
        params = (", ".join(f"{k}={_cell(m.record.params[k])}" for k in sorted(m.record.searched_params)
                            if k in m.record.params) if m.record is not None else _REFERENCE_SETTINGS)
        position = _attention(m.record) if m.record is not None else "-"
        lines.append(f"| `{m.file}` | {m.weight} | {m.what} | {position} | {_num(m.valid_micro_f1)} | {params} |")
    lines += [
        "",
        f"## Validation ({valid:,} documents, the whole split)",
        "",
        *([(f"The {'refit' if facts.which == 'refit' else 'deep models'} trained on these documents: the scores "
            "here are not held-out ones."), ""] if refit else
          ["The ensemble was selected on these documents: its scores here are optimistic.", ""]),
        "| | |",
        "|---|---|",
        f"| threshold | {manifest.threshold:.2f} |",
        *([(f"| per-label thresholds (`label_thresholds` in `export.json`) | {min(manifest.label_thresholds):.2f} "
            f"to {max(manifest.label_thresholds):.2f} |")] if manifest.label_thresholds else []),
        f"| micro-F1, as search.finalize selected it | {_num(facts.recorded_value)} |",
        f"| micro-F1 through this folder (text → tokeniser → models) | {_num(v.get('micro_f1', math.nan))} |",
        *_scores(v),
        *(_per_label_scores(facts.validation_per_label) if facts.validation_per_label is not None else []),
        "",
        "## Test",
        "",
        ("Not recorded with the study: only the report reads the test split. Run "
        f"`python -m search.report --study {facts.study}`: it scores the study's final models on the test split, each "
        "with a paired bootstrap interval against the TF-IDF reference."),
        "",
        *_made_by(manifest, facts.storage, facts.versions),
    ]
    return "\n".join(lines)
