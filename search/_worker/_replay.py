"""A stored trial trained again with its parameters and seed, its metrics printed beside the stored ones."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from search.errors import StudyConfigError
from search.record import TrialRecord

if TYPE_CHECKING:
    import optuna

    from search._study import StoredStudy
    from search._worker._setup import WorkerSetup

__all__ = ["replay_trial", "check_replay"]


def check_replay(number: int) -> Callable[[optuna.storages.BaseStorage, StoredStudy], None]:
    """A set-up check (see :func:`search._worker._setup.set_up`): refuse a trial number the study does not
    have, before the worker loads TensorFlow."""

    def check(storage: optuna.storages.BaseStorage, stored: StoredStudy) -> None:
        study_id = storage.get_study_id_from_name(stored.config.study)
        n_trials = storage.get_n_trials(study_id)
        if not 0 <= number < n_trials:
            raise StudyConfigError(f"no trial {number} (the study has {n_trials}); expected a trial number "
                                   f"from 0 to {n_trials - 1}" if n_trials else
                                   f"no trial {number}: the study has no trials yet", source="--replay")

    return check


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
