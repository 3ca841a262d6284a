"""What ``search.finalize`` records on a study: its ensemble, its refit model and its ensemble refit (one
schema, keras-free).

Each is a study user attribute (JSON), beside the artifacts of the refit models; the ensemble's members
are the trials' own saved models, named by trial number.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import optuna

from search.errors import StudyConfigError

__all__ = ["ENSEMBLE_ATTR", "FINAL_CHOICES", "REFIT_ATTR", "REFIT_ENSEMBLE_ATTR", "FinalEnsemble", "FinalModel",
           "FinalRefit", "FinalRefitEnsemble", "clear_final", "read_ensemble", "read_refit", "read_refit_ensemble",
           "refit_name"]

ENSEMBLE_ATTR = "final_ensemble"
REFIT_ATTR = "final_refit"
REFIT_ENSEMBLE_ATTR = "final_refit_ensemble"
#: The final models a study can have, by the name a user asks for them (``search.export --final NAME``).
FINAL_CHOICES = ("ensemble", "refit", "refit-ensemble")


class _Averaged:
    """What an average of picked trials (and the TF-IDF reference) decides with; the fields are the
    dataclasses' below."""

    members: tuple[int, ...]
    reference_picks: int
    threshold: float
    label_thresholds: tuple[float, ...]

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
        return self._name("")

    def _name(self, refit: str) -> str:
        unique = sorted(set(self.members))
        text = f"ensemble of {len(unique)} trial{'s' if len(unique) != 1 else ''} ({', '.join(map(str, unique))})"
        return text + refit + (" + TF-IDF reference" if self.reference_picks else "")

    def weights(self) -> dict[int, int]:
        return {n: self.members.count(n) for n in dict.fromkeys(self.members)}


@dataclass(frozen=True)
class FinalEnsemble(_Averaged):
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


def refit_name(trial: int, epochs: int) -> str:
    """What a trial refit on train + valid is called (the refit's name, an ensemble refit's member)."""
    return f"refit of trial {trial} on train + valid ({epochs} epoch{'s' if epochs != 1 else ''})"


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
        return refit_name(self.trial, self.epochs)


@dataclass(frozen=True)
class FinalRefitEnsemble(_Averaged):
    """The final ensemble with each deep member trained again on train + validation, as the refit is
    (its trial's parameters, seed and best number of epochs): the same picks, weights and thresholds,
    which were chosen on validation with the members as they were, since no held-out split is left to
    choose them again. The TF-IDF reference stays the one fitted on the training split (the ensemble's
    own); ``artifact_ids`` and ``epochs``: one per distinct member, in :meth:`weights` order."""

    members: tuple[int, ...]
    artifact_ids: tuple[str, ...]
    epochs: tuple[int, ...]
    threshold: float
    train_documents: int
    seconds: float  # training time of the members refit for it (a member the refit already trained: 0)
    reference_picks: int = 0
    label_thresholds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        distinct = len(self.weights())
        if len(self.artifact_ids) != distinct or len(self.epochs) != distinct:
            raise ValueError(f"{len(self.artifact_ids)} artifact ids and {len(self.epochs)} epoch counts for "
                             f"{distinct} distinct members; expected one each")

    @property
    def name(self) -> str:
        # "refit" next to the trials: the TF-IDF reference after it is not refit
        return self._name(" refit on train + valid")

    def models(self) -> dict[int, tuple[str, int]]:
        """Each distinct member's refit, by trial number: (artifact id, epochs trained)."""
        return dict(zip(self.weights(), zip(self.artifact_ids, self.epochs, strict=True), strict=True))

    def artifacts(self) -> dict[int, str]:
        """Each distinct member's refit model, by trial number."""
        return {n: artifact for n, (artifact, _) in self.models().items()}

    def refits(self, ensemble: FinalEnsemble) -> bool:
        """Whether this is ``ensemble`` refit: the same picks and thresholds."""
        return (self.members, self.reference_picks, self.threshold, self.label_thresholds) == (
            ensemble.members, ensemble.reference_picks, ensemble.threshold, ensemble.label_thresholds)


#: Any of a study's final models.
FinalModel = FinalEnsemble | FinalRefit | FinalRefitEnsemble


def _read(study: optuna.Study, attr: str, cls: type) -> Any:
    raw = study.user_attrs.get(attr)
    if raw is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names}
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise StudyConfigError(f"user attribute {attr} is not what search.finalize writes ({exc}); expected "
                               "python -m search.finalize to be run again", source=f"study '{study.study_name}'"
                               ) from None


def read_ensemble(study: optuna.Study) -> FinalEnsemble | None:
    return _read(study, ENSEMBLE_ATTR, FinalEnsemble)


def read_refit(study: optuna.Study) -> FinalRefit | None:
    return _read(study, REFIT_ATTR, FinalRefit)


def read_refit_ensemble(study: optuna.Study) -> FinalRefitEnsemble | None:
    return _read(study, REFIT_ENSEMBLE_ATTR, FinalRefitEnsemble)


_ATTRS: dict[type, str] = {FinalEnsemble: ENSEMBLE_ATTR, FinalRefit: REFIT_ATTR,
                           FinalRefitEnsemble: REFIT_ENSEMBLE_ATTR}


def clear_final(study: optuna.Study, kind: type[FinalModel]) -> bool:
    """Forget the study's final model of ``kind`` (Optuna keeps a user attribute once set: it becomes null,
    which reads as none); whether there was one."""
    attr = _ATTRS[kind]
    if study.user_attrs.get(attr) is None:
        return False
    study.set_user_attr(attr, None)
    return True


def write_final(study: optuna.Study, final: FinalModel) -> None:
    attr = _ATTRS[type(final)]
    study.set_user_attr(attr, dataclasses.asdict(final))
