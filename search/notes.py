"""The best trial's note (markdown) for optuna-dashboard: its parameters and metrics.

    save_best_trial_note(trial, value=0.53)        # from the objective, when a trial beats the study's best
    save_trial_note(study, frozen_trial, body)     # any finished trial, e.g. from a script

The note says "best of the study when it finished": notes on earlier best trials are left as they were
(they were true when written), and the study's own note is never touched (users edit it in the
dashboard). No keras here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna

from search.record import TrialRecord

__all__ = ["best_trial_note", "save_best_trial_note", "save_trial_note"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def best_trial_note(*, study_name: str, number: int, value: float, record: TrialRecord,
                    complete_before: int) -> str:
    """The markdown body: which trial, its validation metrics, searched and fixed parameters."""
    epochs = list(record.epochs or [])
    best_epoch = record.best_epoch
    row = next((r for r in epochs if r.get("epoch") == best_epoch), epochs[-1] if epochs else {})
    seconds = sum(float(r.get("seconds", 0.0)) for r in epochs)
    lines = [
        f"## Best trial of study `{study_name}` when it finished: trial {number}",
        "",
        (f"It beat the {complete_before} trial(s) completed before it. Validation metrics (the whole validation "
         "split; the test split is only read by `python -m search.report`):"),
        "",
        "| metric | value |",
        "|---|---|",
        f"| validation micro-F1 at the tuned threshold (the objective) | {value:.4f} |",
        f"| tuned threshold | {_fmt(math.nan if record.threshold is None else record.threshold)} |",
        f"| validation micro-F1 at 0.5 | {_fmt(row.get('val_micro_f1', math.nan))} |",
        f"| validation loss | {_fmt(row.get('val_loss', math.nan))} |",
        f"| best epoch / epochs run | {best_epoch} / {record.epochs_run} |",
        f"| training time | {seconds:.1f} s |",
        f"| trainable parameters | {_or_dash(record.trainable_params)} |",
        f"| seed | {_or_dash(record.seed)} |",
    ]
    if record.degenerate_attention:
        lines.append(f"| degenerate attention | {(record.diagnostics or {}).get('degenerate_reason')} |")
    lines += ["", "| searched parameter | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(record.searched_params.items())]
    fixed = record.fixed_params or {}
    if fixed:
        lines += ["", "| fixed parameter | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(fixed.items())]
    lines += ["", ("Artifacts of this trial: the saved model (`.keras`), `learning_curve.png` and, with attention, "
                   "`attention_heatmap.png`.")]
    return "\n".join(lines) + "\n"


def save_best_trial_note(trial: optuna.Trial, value: float) -> None:
    """Write :func:`best_trial_note` on a running trial (the objective calls this before returning)."""
    from optuna.trial import TrialState
    from optuna_dashboard import save_note

    complete = len(trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    body = best_trial_note(study_name=trial.study.study_name, number=trial.number, value=value,
                           record=TrialRecord.from_trial(trial), complete_before=complete)
    save_note(trial, body)


@dataclass
class _TrialRef:
    """What ``optuna_dashboard.save_note`` reads from a trial (storage, study, id), for a finished trial:
    building an :class:`optuna.Trial` for it would call the sampler's ``before_trial``."""

    storage: Any
    study: optuna.Study
    _trial_id: int


def save_trial_note(study: optuna.Study, trial: optuna.trial.FrozenTrial, body: str) -> None:
    """Write ``body`` as the dashboard note of a finished trial of ``study``."""
    from optuna_dashboard import save_note

    save_note(_TrialRef(study._storage, study, trial._trial_id), body)
