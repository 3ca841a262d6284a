"""The run configuration shared by the launcher and its workers (no keras here).

The launcher stores it on the study (user attribute ``run_config``), so a worker joining from another
node (``python -m search.worker``) runs exactly the same data, epochs and pruning.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from search.errors import StudyConfigError

__all__ = ["RunConfig", "PRUNERS", "SAMPLERS", "DEFAULT_MEMORY_BUDGET", "PREDICT_BATCH"]

PRUNERS = ("hyperband", "median", "sha", "none")
SAMPLERS = ("tpe", "random", "grid")
DEFAULT_MEMORY_BUDGET = 4 * 1024**3  # bytes of self-attention scores per batch a trial may use
#: Documents per batch when a trial or the report predicts a whole split: larger than any training batch,
#: since prediction keeps no gradients, and small enough for the largest attention model on a GPU.
PREDICT_BATCH = 512


@dataclass(frozen=True)
class RunConfig:
    study: str
    space: str
    data: str = "debtags50"
    vocab_size: int = 20000
    max_len: int = 128
    limit: int | None = 3000
    epochs: int = 4
    seed: int = 0
    pruner: str = "hyperband"
    sampler: str = "tpe"
    embedding_dim: int = 100
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    save_models: bool = True
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise StudyConfigError(f"got '{self.pruner}'; expected one of {', '.join(PRUNERS)}", source="--pruner")
        if self.sampler not in SAMPLERS:
            raise StudyConfigError(f"got '{self.sampler}'; expected one of {', '.join(SAMPLERS)}", source="--sampler")
        if self.epochs < 1:
            raise StudyConfigError(f"got {self.epochs}; expected at least 1", source="--epochs")
        if self.limit is not None and self.limit < 1:
            raise StudyConfigError(f"got {self.limit}; expected a positive number of documents", source="--limit")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"fixed": dict(self.fixed)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def data_settings(self):
        from search.data import DataSettings

        return DataSettings(vocab_size=self.vocab_size, max_len=self.max_len, limit=self.limit)
