"""A stored trial trained again with its parameters and seed, its metrics printed beside the stored ones."""
from __future__ import annotations

from typing import TYPE_CHECKING

from search.errors import StudyConfigError
from search.record import TrialRecord

if TYPE_CHECKING:
    from search._worker._setup import WorkerSetup

__all__ = ["replay_trial"]


def replay_trial(setup: WorkerSetup, number: int) -> int:
    """Re-run trial ``number`` of the set-up's study (nothing is written to it); print the comparison."""
    from search.objective import MONITOR, Objective

    trials = {t.number: t for t in setup.study.get_trials(deepcopy=False)}
    if number not in trials:
        raise StudyConfigError(f"no trial {number} (the study has {len(trials)}); expected a trial number",
                               source="--replay")
    frozen = trials[number]
    record = TrialRecord.from_trial(frozen)
    objective = Objective(setup.config, setup.space, setup.context, setup.dataset, setup.embedding, None,
                          log=print)
    result = objective.replay(frozen)
    seed = "" if record.seed is None else f" (seed {record.seed})"
    print(f"replay of trial {number}{seed}: value {result.value:.4f}; stored value {frozen.value}")
    stored = {row["epoch"]: row for row in record.epochs or []}
    for row in result.history:
        old = stored.get(row["epoch"], {}).get(MONITOR)
        print(f"  epoch {row['epoch']}: {row[MONITOR]:.4f}  stored {old if old is None else round(old, 4)}")
    return 0
