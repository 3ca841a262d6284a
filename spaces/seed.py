"""``seed``: the seed question's three models, enqueued as fixed trials."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from search.model import PRESETS  # the factory's presets (keras-free)
from spaces._base import Param, SearchSpace

__all__ = ["SeedSpace", "SEED_PRESETS"]

SEED_PRESETS = ("seed_rcnn", "seed_rcnn_attention", "seed_answer_mha")


class SeedSpace(SearchSpace):
    name = "seed"
    version = 1
    description = "the seed's RCNN, RCNN + attention after pooling, and the answer's MHA model, as fixed trials"

    def parameters(self, context: Mapping[str, Any]) -> Sequence[Param]:
        return (Param("preset", "categorical", choices=SEED_PRESETS),)

    def suggest(self, trial: optuna.trial.BaseTrial, context: Mapping[str, Any]) -> dict[str, Any]:
        preset = trial.suggest_categorical("preset", list(SEED_PRESETS))
        return dict(PRESETS[preset]) | {"preset": preset} | dict(context.get("fixed", {}))

    def enqueue(self, study: optuna.Study, context: Mapping[str, Any]) -> int:
        for preset in SEED_PRESETS:
            study.enqueue_trial({"preset": preset}, skip_if_exists=True)
        return len(SEED_PRESETS)

    def n_trials(self, context: Mapping[str, Any]) -> int | None:
        return len(SEED_PRESETS)
