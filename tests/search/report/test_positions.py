"""Which attention position the report files a trial under: the one recorded when its model was built."""
from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from search.record import TrialRecord

SEARCHED = {"attention_position": CategoricalDistribution(["none", "label", "rnn"])}


def _trial(params: dict[str, str], **record: Any) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(params=params, distributions={k: SEARCHED[k] for k in params}, value=0.5,
                                     state=TrialState.COMPLETE,
                                     user_attrs=TrialRecord(**record).to_user_attrs())


@pytest.mark.parametrize(("trial", "position"), [
    # recorded by the build: wins over what was asked for (a preset may resolve the position)
    (_trial({"attention_position": "label"}, attention_position="rnn"), "rnn"),
    # no recorded position (stopped before its build, or from an older study): what it asked for
    (_trial({"attention_position": "label"}), "label"),
    (_trial({}, fixed_params={"attention_position": "rnn"}), "rnn"),
    (_trial({}, diagnostics={"attention_position": "pooled", "degenerate_attention": True}), "pooled"),
    (_trial({}), "none"),
])
def test_position(trial: optuna.trial.FrozenTrial, position: str) -> None:
    assert TrialRecord.from_trial(trial).position == position


def test_degenerate_attention_comes_from_the_build_diagnostics() -> None:
    assert TrialRecord.from_trial(_trial({}, diagnostics={"degenerate_attention": True})).degenerate_attention
    assert not TrialRecord.from_trial(_trial({}, diagnostics={})).degenerate_attention
