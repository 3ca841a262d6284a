"""``ablation``: every attention position x several seeds, other parameters fixed at a study's best.

An equal-budget comparison: the same epochs, data and parameters for every position, only the position
(and the seed) changes, so differences between positions are not an artefact of how much each was tuned.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from search.errors import StudyConfigError
from search.record import TrialRecord
from spaces._base import ATTENTION_POSITIONS, HEADED_POSITIONS, Param, SearchSpace

__all__ = ["AblationSpace"]

DEFAULT_REPLICATES = 3
DEFAULT_HEADS = 4


class AblationSpace(SearchSpace):
    name = "ablation"
    version = 1
    description = "every attention position x 3 seeds at the best parameters of --from-study"

    def parameters(self, context: Mapping[str, Any]) -> Sequence[Param]:
        return (Param("attention_position", "categorical", choices=ATTENTION_POSITIONS),
                Param("replicate", "int", low=0, high=int(context.get("replicates", DEFAULT_REPLICATES)) - 1))

    def prepare(self, study: optuna.Study | None = None, *, source_study: optuna.Study | None = None,
                replicates: int = DEFAULT_REPLICATES, **options: Any) -> dict[str, Any]:
        if source_study is None:
            raise StudyConfigError("the ablation study needs --from-study NAME (a study with a complete trial)",
                                   source="--from-study")
        try:
            best = source_study.best_trial
        except ValueError:
            raise StudyConfigError(f"study '{source_study.study_name}' has no complete trial; expected at least one",
                                   source="--from-study") from None
        # The best trial's model parameters, searched or fixed (--set, a preset): the heads too, so a
        # source that fixed its heads is ablated with them.
        params = TrialRecord.from_trial(best).params
        base = {k: v for k, v in params.items() if k not in ("attention_position", "num_heads", "preset")}
        heads = params.get("num_heads", DEFAULT_HEADS)
        return {"from_study": source_study.study_name, "from_trial": best.number, "replicates": replicates,
                "base_params": base, "num_heads": heads}

    def suggest(self, trial: optuna.trial.BaseTrial, context: Mapping[str, Any]) -> dict[str, Any]:
        params = dict(context["base_params"]) | dict(context.get("fixed", {}))
        for p in self.parameters(context):
            params[p.name] = p.suggest(trial)
        if params["attention_position"] in HEADED_POSITIONS:
            params["num_heads"] = context.get("num_heads", DEFAULT_HEADS)
        params.pop("replicate")
        return params

    def trial_seed(self, trial: optuna.trial.BaseTrial, base_seed: int) -> int:
        """The same seed for every position within a replicate: a paired comparison."""
        return base_seed + 1000 * int(trial.params["replicate"])

    def enqueue(self, study: optuna.Study, context: Mapping[str, Any]) -> int:
        n = 0
        for replicate in range(int(context["replicates"])):
            for position in ATTENTION_POSITIONS:
                study.enqueue_trial({"attention_position": position, "replicate": replicate}, skip_if_exists=True)
                n += 1
        return n

    def n_trials(self, context: Mapping[str, Any]) -> int | None:
        return len(ATTENTION_POSITIONS) * int(context["replicates"])
