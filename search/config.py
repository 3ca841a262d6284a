"""The run configuration shared by the launcher and its workers (no keras here).

The launcher stores it on the study (user attribute ``run_config``), so a worker joining from another
node (``python -m search.worker``) runs exactly the same data, epochs, pruning, target and heartbeats:
a worker's command line says only who it is (study, storage, device), never how to run.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search.errors import StudyConfigError
from search.model import DEFAULT_MEMORY_BUDGET_BYTES
from storage import DEFAULT_GRACE_PERIOD, DEFAULT_HEARTBEAT_INTERVAL

if TYPE_CHECKING:
    from search.data import DataSettings

__all__ = ["RunConfig", "PRUNERS", "SAMPLERS", "DEFAULT_MEMORY_BUDGET_BYTES", "DEFAULT_TRIALS", "PREDICT_BATCH",
           "DEFAULT_BUDGET_SECONDS", "BUDGETED_TRIALS", "ENSEMBLE_CANDIDATES",
           "AUTO_REPORT_DOCUMENTS",
           "flag_of", "defines_study"]

PRUNERS = ("hyperband", "median", "sha", "none")
SAMPLERS = ("tpe", "random", "grid")
#: Finished trials a study aims at when neither ``--trials``, ``--timeout`` nor its space (a fixed design) says.
DEFAULT_TRIALS = 12
#: The launcher's wall-clock budget for an open-ended study given neither ``--trials`` nor ``--timeout``:
#: on the 2-core CPU this buys one to five full-data trials of the ``attn`` space, its strong start's four
#: first (see the README's results), and the search ends with a model better than the TF-IDF reference.
DEFAULT_BUDGET_SECONDS = 1200.0
#: The trial target of a run bounded by its time budget alone: never the limit that ends it.
BUDGETED_TRIALS = 100_000
#: A trial whose value is among the study's this-many best so far saves its model: the candidates the
#: final ensemble (``search.finalize``) selects its members from.
ENSEMBLE_CANDIDATES = 8
#: Documents per batch when a trial or the report predicts a whole split: larger than any training batch,
#: since prediction keeps no gradients, and small enough for the largest attention model on a GPU.
PREDICT_BATCH = 512
#: With ``--report-every`` left out, a trial's first epoch reports once per this many training documents
#: (whole reports; a short epoch reports once, at its end), later epochs once each: the first report of
#: a full debtags50 trial comes after a quarter of an epoch, and the whole-validation passes stay a
#: small share of the trial.
AUTO_REPORT_DOCUMENTS = 5000

#: Field metadata: the flag that sets the field, and whether the field defines the study. Resuming a
#: study with another value of a defining field is refused (its trials would not be comparable); the
#: others say how long this run goes on and how its workers keep track of each other, and a resumed
#: launch may change them (the study then holds the new value, for every worker).
_FLAG = "flag"
_DEFINES_STUDY = "defines_study"


def _setting(flag: str | None, *, defines: bool = True, **field_options: Any) -> Any:
    return field(metadata={_FLAG: flag, _DEFINES_STUDY: defines}, **field_options)


@dataclass(frozen=True)
class RunConfig:
    study: str = _setting("--study")
    space: str = _setting("--space")
    data: str = _setting("--data", default="debtags50")
    vocab_size: int = _setting("--vocab-size", default=20000)
    max_len: int = _setting("--max-len", default=128)
    limit: int | None = _setting("--limit", default=None)
    epochs: int = _setting("--epochs", default=8)
    seed: int = _setting("--seed", default=0)
    #: Successive halving: one bracket, rungs at reports 1, 3, 9 and 27. Hyperband spreads trials over
    #: brackets that prune later or not at all; on the 2-core CPU, with the whole training split, its hour
    #: finished about 31 trials against 47-81 for successive halving, which reached as good a best
    #: validation score and final ensemble (BENCHMARKS.md).
    pruner: str = _setting("--pruner", default="sha")
    sampler: str = _setting("--sampler", default="tpe")
    embedding_dim: int = _setting(None, default=100)
    save_models: bool = _setting("--no-save-models", default=True)
    fixed: Mapping[str, Any] = _setting("--set", default_factory=dict)
    #: training documents between two reports to the pruner in a trial's first epoch (later epochs report
    #: once, at their end); None: about AUTO_REPORT_DOCUMENTS (a long first epoch is reported several
    #: times, so a weak trial is stopped before it ends). One such interval is the pruner's step.
    report_every: int | None = _setting("--report-every", default=None)
    #: report intervals (pruner steps) without a better tuned validation micro-F1 after which a trial
    #: stops by itself; None: two epochs' worth; 0: never
    patience: int | None = _setting("--patience", default=None)
    # -- what a resumed launch may change -----------------------------------------------------------
    #: finished (complete or pruned) trials to reach; None: the space's own count, else DEFAULT_TRIALS
    trials: int | None = _setting("--trials", defines=False, default=None)
    #: seconds after its start a worker stops starting trials; None: no limit
    timeout: float | None = _setting("--timeout", defines=False, default=None)
    #: bytes of self-attention scores per batch a trial may use (a limit of the machines it runs on)
    memory_budget: int = _setting("--memory-budget-gb", defines=False, default=DEFAULT_MEMORY_BUDGET_BYTES)
    heartbeat_interval: int = _setting("--heartbeat-interval", defines=False, default=DEFAULT_HEARTBEAT_INTERVAL)
    grace_period: int = _setting("--grace-period", defines=False, default=DEFAULT_GRACE_PERIOD)

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise StudyConfigError(f"got '{self.pruner}'; expected one of {', '.join(PRUNERS)}", source="--pruner")
        if self.sampler not in SAMPLERS:
            raise StudyConfigError(f"got '{self.sampler}'; expected one of {', '.join(SAMPLERS)}", source="--sampler")
        if self.epochs < 1:
            raise StudyConfigError(f"got {self.epochs}; expected at least 1", source="--epochs")
        if self.limit is not None and self.limit < 1:
            raise StudyConfigError(f"got {self.limit}; expected a positive number of documents", source="--limit")
        if self.report_every is not None and self.report_every < 1:
            raise StudyConfigError(f"got {self.report_every}; expected a positive number of training documents",
                                   source="--report-every")
        if self.patience is not None and self.patience < 0:
            raise StudyConfigError(f"got {self.patience}; expected a number of report intervals, 0 for no early "
                                   "stopping", source="--patience")
        if self.trials is not None and self.trials < 1:
            raise StudyConfigError(f"got {self.trials}; expected at least 1", source="--trials")
        if self.timeout is not None and not self.timeout > 0:  # also refuses NaN
            raise StudyConfigError(f"got {self.timeout:g}; expected a positive number of seconds (or no --timeout)",
                                   source="--timeout")
        if isinstance(self.memory_budget, bool) or not isinstance(self.memory_budget, int) or self.memory_budget <= 0:
            # a budget of 0 or less would refuse every model with attention, trial after trial
            raise StudyConfigError(f"got {self.memory_budget / 1024**3:g} GiB; expected a positive number of GiB",
                                   source="--memory-budget-gb")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"fixed": dict(self.fixed)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        """The configuration a study stored; fields it predates take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def differences(self, other: RunConfig) -> list[str]:
        """The fields whose stored (JSON) values differ from ``other``'s, in declaration order."""
        mine, theirs = self.to_json(), other.to_json()
        return [f.name for f in dataclasses.fields(self) if mine[f.name] != theirs[f.name]]

    def reports_per_epoch(self, train_documents: int) -> int:
        """Report intervals (pruner steps) in an epoch over ``train_documents``: how many times the first
        epoch reports its whole-validation micro-F1 (each later epoch reports once, R steps on)."""
        every = self.report_every or AUTO_REPORT_DOCUMENTS
        if self.report_every is None:  # auto: whole reports only, never more than one a few thousand documents
            return max(1, train_documents // every)
        return max(1, -(-train_documents // every))

    def early_stopping_patience(self, train_documents: int) -> int:
        """Report intervals without improvement after which a trial stops itself (0: never)."""
        if self.patience is not None:
            return self.patience
        return 2 * self.reports_per_epoch(train_documents)

    def data_settings(self) -> DataSettings:
        from search.data import DataSettings

        return DataSettings(vocab_size=self.vocab_size, max_len=self.max_len, limit=self.limit)


def flag_of(name: str) -> str:
    """The command-line flag that sets field ``name`` (the field's name where no flag sets it)."""
    return _FIELDS[name].metadata[_FLAG] or name


def defines_study(name: str) -> bool:
    """Whether field ``name`` defines the study (resuming it with another value is refused)."""
    return bool(_FIELDS[name].metadata[_DEFINES_STUDY])


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
