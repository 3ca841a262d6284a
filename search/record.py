"""What a trial records: one typed schema for every user attribute a trial carries.

Every writer (the objective, the worker, the keras-tuner bridge, the stale-trial retry in ``storage``) and
every reader (the report, the best trial's dashboard note, the orphan finder, the launcher's summary,
the ablation space) goes through :class:`TrialRecord`, so a key is spelled once, here.

A leaf module: it imports optuna and the standard library only, so ``storage`` may use it without pulling
in the rest of ``search`` (or keras).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import BaseTrial, FrozenTrial

__all__ = [
    "TrialRecord",
    "retry_user_attrs",
    "SEED",
    "WORKER",
    "FIXED_PARAMS",
    "ATTENTION_POSITION",
    "DIAGNOSTICS",
    "TRAINABLE_PARAMS",
    "NON_TRAINABLE_PARAMS",
    "EPOCHS",
    "EPOCH_SECONDS",
    "THRESHOLD",
    "BEST_EPOCH",
    "VAL_MICRO_F1_AT_HALF",
    "MODEL_ARTIFACT_ID",
    "MODEL_SAVE_ERROR",
    "ARTIFACT_ERROR",
    "FAILURE_REASON",
    "PRUNED_REASON",
    "EARLY_STOP_REASON",
    "STRONG_START",
    "INTERRUPTED_REASON",
]

# One constant per user-attribute key. The strings are what studies already stored hold, so a report
# or a resumed study still reads trials written before this module existed.
SEED = "seed"
WORKER = "worker"
FIXED_PARAMS = "fixed_params"
ATTENTION_POSITION = "attention_position"
DIAGNOSTICS = "diagnostics"
TRAINABLE_PARAMS = "trainable_params"
NON_TRAINABLE_PARAMS = "non_trainable_params"
EPOCHS = "epochs"
EPOCH_SECONDS = "epoch_seconds"
THRESHOLD = "threshold"
BEST_EPOCH = "best_epoch"
VAL_MICRO_F1_AT_HALF = "val_micro_f1_at_0.5"
MODEL_ARTIFACT_ID = "model_artifact_id"
MODEL_SAVE_ERROR = "model_save_error"
ARTIFACT_ERROR = "artifact_error"
FAILURE_REASON = "failure_reason"
PRUNED_REASON = "pruned_reason"
EARLY_STOP_REASON = "early_stop_reason"
STRONG_START = "strong_start"

#: The failure reason of a trial cut off by Ctrl-C or SIGTERM (worker, launcher and objective alike).
INTERRUPTED_REASON = "interrupted (Ctrl-C or SIGTERM); the study can be resumed"


@dataclass
class TrialRecord:
    """Everything a trial records besides Optuna's own params, values and intermediate values.

    Fields left at ``None`` are not written: a record holds what is known so far, and a writer sends
    only the fields it sets (``TrialRecord(seed=3).write(trial)``), so several writers at several times
    (start of the trial, each epoch, the end) add to one record without overwriting each other.

    ``searched_params`` is read from the trial's Optuna params and never written as a user attribute.
    """

    seed: int | None = None
    worker: dict[str, Any] | None = None
    fixed_params: dict[str, Any] | None = None
    attention_position: str | None = None
    diagnostics: dict[str, Any] | None = None
    trainable_params: int | None = None
    non_trainable_params: int | None = None
    epochs: list[dict[str, float]] | None = None  # one row per report (several in a long first epoch)
    epoch_seconds: list[float] | None = None  # wall seconds of each report's stretch of training + validation
    threshold: float | None = None
    best_epoch: float | None = None  # the best report's epoch (a fraction when an epoch reports several times)
    val_micro_f1_at_half: float | None = None
    model_artifact_id: str | None = None
    model_save_error: str | None = None
    artifact_error: str | None = None
    failure_reason: str | None = None
    pruned_reason: str | None = None
    early_stop_reason: str | None = None
    #: set when the space enqueued the trial as one of its strong start's configurations: such a trial
    #: reports to the pruner but is never pruned (see :class:`search.objective.ValidationF1`)
    strong_start: bool | None = None
    searched_params: dict[str, Any] = field(default_factory=dict, compare=False)

    # -- the mapping between fields and user-attribute keys ------------------------------------------

    def to_user_attrs(self) -> dict[str, Any]:
        """The fields that are set, under their user-attribute keys."""
        return {_KEYS[f.name]: getattr(self, f.name) for f in _STORED if getattr(self, f.name) is not None}

    @classmethod
    def from_user_attrs(cls, attrs: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> TrialRecord:
        """A record from stored user attributes; keys this schema does not know are ignored."""
        values = {f.name: attrs[_KEYS[f.name]] for f in _STORED if attrs.get(_KEYS[f.name]) is not None}
        return cls(**values, searched_params=dict(params or {}))

    @classmethod
    def from_trial(cls, trial: FrozenTrial | BaseTrial) -> TrialRecord:
        """The record of a finished or running trial (a :class:`FrozenTrial` or a live trial)."""
        return cls.from_user_attrs(trial.user_attrs, trial.params)

    def write(self, trial: BaseTrial) -> None:
        """Set each field of this record that is not ``None`` as a user attribute of ``trial``."""
        for key, value in self.to_user_attrs().items():
            trial.set_user_attr(key, value)

    # -- what readers derive from a record ----------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        """The model's parameters: the fixed ones with the searched ones over them."""
        return dict(self.fixed_params or {}) | dict(self.searched_params)

    @property
    def position(self) -> str:
        """The attention position the model was built with; ``"none"`` for a model without one (or a
        keras-tuner hypermodel, which has no such notion).

        A trial that stopped before its model was built (refused by the memory check, say), and a trial
        of a study run before ``attention_position`` was recorded, has no such field: its position is
        then the one it asked for (a searched or fixed parameter), else the one its build diagnostics
        name, so such trials still count under their own position in the report.
        """
        if self.attention_position is not None:
            return self.attention_position
        asked = self.params.get(ATTENTION_POSITION, (self.diagnostics or {}).get(ATTENTION_POSITION))
        return "none" if asked is None else str(asked)

    @property
    def epochs_run(self) -> float:
        """The epoch of the last report (a fraction where a trial stopped inside its first epoch): a long
        first epoch reports several times, so the report rows are not the epochs; 0 without reports."""
        rows = self.epochs or []
        return rows[-1].get("epoch", len(rows)) if rows else 0

    @property
    def degenerate_attention(self) -> bool:
        """Whether the model's attention runs over a single step (an identity), as its build found."""
        return bool((self.diagnostics or {}).get("degenerate_attention"))


_STORED = tuple(f for f in dataclasses.fields(TrialRecord) if f.name != "searched_params")
_KEYS = {
    "seed": SEED,
    "worker": WORKER,
    "fixed_params": FIXED_PARAMS,
    "attention_position": ATTENTION_POSITION,
    "diagnostics": DIAGNOSTICS,
    "trainable_params": TRAINABLE_PARAMS,
    "non_trainable_params": NON_TRAINABLE_PARAMS,
    "epochs": EPOCHS,
    "epoch_seconds": EPOCH_SECONDS,
    "threshold": THRESHOLD,
    "best_epoch": BEST_EPOCH,
    "val_micro_f1_at_half": VAL_MICRO_F1_AT_HALF,
    "model_artifact_id": MODEL_ARTIFACT_ID,
    "model_save_error": MODEL_SAVE_ERROR,
    "artifact_error": ARTIFACT_ERROR,
    "failure_reason": FAILURE_REASON,
    "pruned_reason": PRUNED_REASON,
    "early_stop_reason": EARLY_STOP_REASON,
    "strong_start": STRONG_START,
}
assert set(_KEYS) == {f.name for f in _STORED}, "every stored field has exactly one user-attribute key"


# What a trial was asked to be, as opposed to what its run recorded: a retry of a failed trial starts
# from these alone.
_DEFINITION = (SEED, FIXED_PARAMS, STRONG_START)


def retry_user_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The user attributes a retry of a failed trial starts with: the trial's definition (seed, fixed
    parameters) and any attribute this schema does not own; none of what the failed run recorded.

    A retry that inherited the dead run's worker record would name a dead process until its own worker
    writes its record, and in that window a worker starting on the same machine would take the running
    retry for an orphan of that process and fail it again. Epochs, model, threshold and failure reason
    of the failed run would likewise show on a trial that has not run yet.
    """
    owned = set(_KEYS.values())
    return {key: value for key, value in attrs.items() if key in _DEFINITION or key not in owned}
