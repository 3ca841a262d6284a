"""The model card (``README.md`` in the export folder): data, parameters, validation and test, provenance."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search._serving._bundle import Manifest
from search.record import TrialRecord

__all__ = ["CardFacts", "render_card"]


@dataclass
class CardFacts:
    """What the card says besides the manifest: where the model came from and how it scored."""

    study: str
    space: str
    storage: str
    trial: int
    is_best: bool
    best_trial: int
    n_complete: int
    record: TrialRecord
    recorded_value: float
    data: str
    data_file_sha256: str
    data_fingerprint: str
    sizes: Mapping[str, int]
    limit: int | None
    validation: Mapping[str, float]  # the folder's own scores on the validation split (text in)
    versions: Mapping[str, str]


def _num(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|")


def render_card(manifest: Manifest, facts: CardFacts) -> str:
    record, v = facts.record, facts.validation
    which = "the best" if facts.is_best else f"not the best (that is trial {facts.best_trial})"
    pattern = manifest.tokenizer["token_pattern"].replace("|", "\\|")
    train = f"{facts.sizes.get('train', 0):,}" + (f" (the first {facts.limit:,} of the split)" if facts.limit else "")
    lines = [
        f"# Model card: study `{facts.study}`, trial {facts.trial}",
        "",
        f"A multi-label text classifier ({len(manifest.label_names)} labels) found by the `{facts.space}` search of "
        f"study `{facts.study}`: trial {facts.trial}, {which} of its {facts.n_complete} complete trials. This folder "
        "needs nothing of the study, its store or the data cache: `export.json` holds the threshold, label names, "
        "`max_len` and tokeniser settings, `vocabulary.txt` the vocabulary, "
        + ", ".join(f"`{m.file}`" for m in manifest.models) + " the Keras model.",
        "",
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
        "## Data",
        "",
        "| | |",
        "|---|---|",
        (f"| dataset | `{facts.data}` (file SHA-256 `{facts.data_file_sha256[:16]}…`, fingerprint "
         f"`{facts.data_fingerprint}`) |"),
        f"| documents | train {train}, valid {facts.sizes.get('valid', 0):,}; the test split was not read |",
        f"| labels | {len(manifest.label_names)} (their names, in output order, in `export.json`) |",
        f"| vocabulary | {manifest.vocab_size:,} ids from the training split: 0 = padding, 1 = unknown word |",
        f"| tokeniser | lower-case: {str(manifest.tokenizer['lowercase']).lower()}; token pattern `{pattern}` |",
        f"| length | the first {manifest.max_len} tokens of a document, post-padded |",
        "",
        "## Parameters",
        "",
        "| parameter | value | |",
        "|---|---|---|",
    ]
    for name, value in sorted(record.params.items()):
        how = "searched" if name in record.searched_params else "fixed"
        lines.append(f"| `{name}` | {_cell(value)} | {how} |")
    lines += [
        "",
        f"Seed {record.seed}; {record.trainable_params or 0:,} trainable and {record.non_trainable_params or 0:,} "
        f"non-trainable weights; attention position `{record.position}`"
        + (" (degenerate: attends over one step)" if record.degenerate_attention else "") + ".",
        "",
        f"## Validation ({facts.sizes.get('valid', 0):,} documents, the whole split)",
        "",
        "| | |",
        "|---|---|",
        f"| threshold (tuned on validation) | {manifest.threshold:.2f} |",
        f"| micro-F1, as the trial recorded it | {_num(facts.recorded_value)} |",
        f"| micro-F1 through this folder (text → tokeniser → model) | {_num(v.get('micro_f1', math.nan))} |",
        f"| micro-F1 at 0.5 (recorded) | {_num(record.val_micro_f1_at_half) if record.val_micro_f1_at_half is not None else '-'} |",  # noqa: E501
        f"| macro-F1 | {_num(v.get('macro_f1', math.nan))} |",
        f"| precision@5 | {_num(v.get('precision_at_5', math.nan))} |",
        f"| micro / macro ROC-AUC | {_num(v.get('micro_auc', math.nan))} / {_num(v.get('macro_auc', math.nan))} |",
        f"| best epoch | {record.best_epoch if record.best_epoch is not None else '-'} of {len(record.epochs or [])} |",
        "",
        "## Test",
        "",
        "Not recorded with the study: only the report reads the test split. Run "
        f"`python -m search.report --study {facts.study}` for test micro-F1, macro-F1, P@5 and ROC-AUC"
        + (" of this trial's model." if facts.is_best else
           f"; it scores the best trial ({facts.best_trial}), and this export is trial {facts.trial}."),
        "",
        "## Made by",
        "",
        "```bash",
        manifest.command,
        "```",
        "",
        f"On {manifest.created}, from `{facts.storage}`; "
        + ", ".join(f"{k} {val}" for k, val in facts.versions.items()) + ".",
        "",
    ]
    return "\n".join(lines)
