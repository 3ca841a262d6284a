"""Best with versus best without attention: a degenerate placement (the seed's ``pooled``, attention
over one step) is no attention in effect, so it never stands for the "with attention" group."""
from __future__ import annotations

import optuna

from search.record import TrialRecord
from search.report._compare import compare_with_without


class _NoModels:
    def has_model(self, trial: object) -> bool:
        return False


def _study(rows: list[tuple[str, bool, float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for position, degenerate, value in rows:
        attrs = TrialRecord(attention_position=position,
                            diagnostics={"degenerate_attention": degenerate}).to_user_attrs()
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=attrs))
    return study


def test_a_degenerate_pooled_trial_is_never_the_best_with_attention() -> None:
    study = _study([("pooled", True, 0.70), ("label", False, 0.65), ("none", False, 0.60)])
    pair = compare_with_without(study, None, _NoModels(), None, {})  # type: ignore[arg-type]
    assert pair.with_position == "label" and pair.with_value == 0.65
    assert pair.without_value == 0.70  # pooled counts as no attention in effect
    assert (pair.trials_with, pair.trials_without) == (1, 2)


def test_without_any_effective_attention_there_is_no_with_group() -> None:
    study = _study([("pooled", True, 0.70), ("none", False, 0.60)])
    pair = compare_with_without(study, None, _NoModels(), None, {})  # type: ignore[arg-type]
    assert pair.with_value is None and pair.trials_with == 0
