"""What ``search.finalize`` records on a study: its ensemble and its refit model (one schema, keras-free).

Both are study user attributes (JSON), beside the artifact of the refit model; the ensemble's members
are the trials' own saved models, named by trial number.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import optuna

from search.errors import StudyConfigError

__all__ = ["ENSEMBLE_ATTR", "FINAL_CHOICES", "REFIT_ATTR", "FinalEnsemble", "FinalRefit", "read_ensemble", "read_refit"]

ENSEMBLE_ATTR = "final_ensemble"
REFIT_ATTR = "final_refit"
#: The final models a study can have, by the name a user asks for them (``search.export --final NAME``).
FINAL_CHOICES = ("ensemble", "refit")


@dataclass(frozen=True)
class FinalEnsemble:
    """The greedy ensemble: ``members`` (trial numbers, a trial once per time it was picked: its weight)
    and ``reference_picks`` times the TF-IDF reference's probabilities (:mod:`search.reference`, refit on
    the study's training split: it is deterministic), averaged, one global ``threshold`` tuned on
    validation (selection scores with it). ``label_thresholds``: one per label, the global one shrunk
    toward each label's best (:mod:`search._final._thresholds`), what the ensemble decides with once
    selected; empty: the global threshold for every label."""

    members: tuple[int, ...]
    threshold: float
    valid_micro_f1: float  # of the averaged probabilities, at ``threshold`` (selected on validation too)
    best_single_valid_micro_f1: float
    candidates: tuple[int, ...]  # the trials selection could pick from
    steps: tuple[float, ...] = ()  # validation micro-F1 after each pick
    reference_picks: int = 0  # 0: deep models only (and every ensemble finalized before the reference could join)
    label_thresholds: tuple[float, ...] = ()
    label_threshold_shrink: float | None = None  # chosen by cross-fitting over the validation documents

    def decision(self) -> float | tuple[float, ...]:
        """What a label's mean probability must reach: the per-label thresholds where there are, else the
        global one."""
        return self.label_thresholds or self.threshold

    @property
    def size(self) -> int:
        """The mean's denominator: every pick, the reference's included."""
        return len(self.members) + self.reference_picks

    @property
    def name(self) -> str:
        unique = sorted(set(self.members))
        text = f"ensemble of {len(unique)} trial{'s' if len(unique) != 1 else ''} ({', '.join(map(str, unique))})"
        return text + (" + TF-IDF reference" if self.reference_picks else "")

    def weights(self) -> dict[int, int]:
        return {n: self.members.count(n) for n in dict.fromkeys(self.members)}


@dataclass(frozen=True)
class FinalRefit:
    """The best configuration trained again on train + validation for the trial's best number of epochs
    (at its seed); its threshold is the trial's tuned one, as no held-out split is left to tune it."""

    trial: int
    epochs: int
    threshold: float
    artifact_id: str
    train_documents: int
    seconds: float

    @property
    def name(self) -> str:
        return f"refit of trial {self.trial} on train + valid ({self.epochs} epoch{'s' if self.epochs != 1 else ''})"


def _read(study: optuna.Study, attr: str, cls: type) -> Any:
    raw = study.user_attrs.get(attr)
    if raw is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names}
        return cls(**values)
    except TypeError as exc:
        raise StudyConfigError(f"user attribute {attr} is not what search.finalize writes ({exc}); expected "
                               "python -m search.finalize to be run again", source=f"study '{study.study_name}'"
                               ) from None


def read_ensemble(study: optuna.Study) -> FinalEnsemble | None:
    return _read(study, ENSEMBLE_ATTR, FinalEnsemble)


def read_refit(study: optuna.Study) -> FinalRefit | None:
    return _read(study, REFIT_ATTR, FinalRefit)


def write_final(study: optuna.Study, final: FinalEnsemble | FinalRefit) -> None:
    attr = ENSEMBLE_ATTR if isinstance(final, FinalEnsemble) else REFIT_ATTR
    study.set_user_attr(attr, dataclasses.asdict(final))
