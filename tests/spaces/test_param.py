"""spaces.Param: the declarative searched parameter (validation, suggestion, condition, grid values)."""
from __future__ import annotations

from typing import Any

import optuna
import pytest

from spaces import Param


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "bool"}, "kind 'bool'; expected categorical, int or float"),
    ({"kind": "categorical"}, "a categorical needs choices"),
    ({"kind": "int", "low": 1}, "an int parameter needs low and high"),
    ({"kind": "float", "high": 1.0}, "a float parameter needs low and high"),
])
def test_refuses_an_incomplete_declaration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^Param x: {message}$"):
        Param("x", **kwargs)


@pytest.mark.parametrize(("param", "distribution"), [
    (Param("c", "categorical", choices=(16, 32)), optuna.distributions.CategoricalDistribution([16, 32])),
    (Param("i", "int", low=1, high=9, step=2), optuna.distributions.IntDistribution(1, 9, step=2)),
    (Param("j", "int", low=1, high=64, log=True), optuna.distributions.IntDistribution(1, 64, log=True)),
    (Param("f", "float", low=0.0, high=0.6, step=0.1), optuna.distributions.FloatDistribution(0.0, 0.6, step=0.1)),
    (Param("g", "float", low=1e-4, high=1e-1, log=True), optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)),
], ids=lambda v: getattr(v, "name", ""))
def test_suggest_asks_optuna_for_the_declared_distribution(param: Param,
                                                           distribution: optuna.distributions.BaseDistribution,
                                                           study: optuna.Study) -> None:
    trial = study.ask()
    value = param.suggest(trial)
    assert trial.distributions == {param.name: distribution}
    assert trial.params == {param.name: value}
    assert distribution._contains(distribution.to_internal_repr(value))


def test_active_follows_the_condition() -> None:
    always = Param("a", "categorical", choices=(1,))
    headed = Param("h", "categorical", choices=(1, 2), when=lambda p: p.get("position") == "rnn")
    assert always.active({})
    assert headed.active({"position": "rnn"})
    assert not headed.active({"position": "conv"})
    assert not headed.active({})


@pytest.mark.parametrize(("param", "points", "values"), [
    (Param("c", "categorical", choices=("b", "a", "c")), 3, ["b", "a", "c"]),  # the choices, in their order
    (Param("c", "categorical", choices=(False, True)), 5, [False, True]),
    (Param("i", "int", low=1, high=9), 3, [1, 5, 9]),
    (Param("i", "int", low=0, high=1), 5, [0, 1]),  # rounding collapses duplicates
    (Param("i", "int", low=0, high=2), 2, [0, 2]),
    (Param("f", "float", low=0.0, high=1.0), 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
    (Param("f", "float", low=0.0, high=0.6, step=0.1), 3, [0.0, 0.3, 0.6]),
    (Param("f", "float", low=0.0, high=0.6, step=0.25), 3, [0.0, 0.25, 0.5]),  # snapped onto the step
    (Param("g", "float", low=1e-4, high=1e-2, log=True), 3, [1e-4, 1e-3, 1e-2]),  # geometric
    (Param("j", "int", low=1, high=100, log=True), 3, [1, 10, 100]),
], ids=lambda v: getattr(v, "name", str(v)))
def test_grid_values(param: Param, points: int, values: list[Any]) -> None:
    got = param.grid_values(points)
    assert got == pytest.approx(values) if param.kind == "float" else got == values
    assert all(type(v) is type(values[0]) for v in got)


@pytest.mark.parametrize("param", [
    Param("i", "int", low=3, high=17, step=2),
    Param("f", "float", low=0.0, high=0.6, step=0.1),
    Param("g", "float", low=3e-4, high=1e-2, log=True),
], ids=lambda p: p.name)
def test_grid_values_lie_in_the_distribution(param: Param, study: optuna.Study) -> None:
    """Each grid value is one Optuna accepts for the parameter (GridSampler would warn otherwise)."""
    trial = study.ask()
    param.suggest(trial)
    distribution = trial.distributions[param.name]
    for value in param.grid_values(5):
        assert distribution._contains(distribution.to_internal_repr(value)), value
    assert param.grid_values(5)[0] == pytest.approx(param.low)
    assert param.grid_values(5)[-1] == pytest.approx(param.high)
