"""keras-tuner's ``HyperParameters`` backed by an Optuna trial.

:class:`OptunaHyperParameters` subclasses ``keras_tuner.HyperParameters``, so a ``build(hp)`` written for
keras-tuner runs unchanged (``isinstance(hp, keras_tuner.HyperParameters)`` holds, ``hp.values``,
``hp.get``, ``hp["name"]``, ``name_scope`` and ``conditional_scope`` behave as there). keras-tuner keeps
registering and activating hyperparameters exactly as it does; only the moment a new *active*
hyperparameter gets its value changes: it is asked of the Optuna trial instead of taken as the default.

How each declaration maps to Optuna (the parameter keeps its keras-tuner name):

================================================  ==================================================
``hp.Int(n, lo, hi)`` / ``step=s``                ``suggest_int(n, lo, hi', step=s)``; ``hi'`` is the last
                                                  value on the step grid, as keras-tuner samples
``hp.Int(n, lo, hi, sampling="log")``             ``suggest_int(n, lo, hi, log=True)``
``hp.Float(n, lo, hi)`` / ``step=s``              ``suggest_float(n, lo, hi[', step=s])``
``hp.Float(n, lo, hi, sampling="log")``           ``suggest_float(n, lo, hi, log=True)``
log sampling with a (multiplicative) ``step``     ``suggest_categorical`` over keras-tuner's own values
                                                  (``lo, lo*s, lo*s**2, ... <= hi``)
``sampling="reverse_log"``                        as ``"linear"`` (Optuna has no reverse-log; with a
                                                  step: categorical over keras-tuner's values)
``hp.Choice(n, values)``                          ``suggest_categorical(n, values)`` (``ordered`` ignored)
``hp.Boolean(n)``                                 ``suggest_categorical(n, [False, True])``
``hp.Fixed(n, value)``                            not searched: ``value`` (the service records it in the
                                                  trial's ``fixed_params``)
inside an inactive ``conditional_scope``          not suggested; returns ``None`` (keras-tuner's rule)
================================================  ==================================================

Defaults are not used for sampling (keras-tuner's tuners sample them randomly too). ``fixed`` values
(``--set name=value``) replace a hyperparameter of that name without asking the trial.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras_tuner
import optuna
from keras_tuner.engine import hyperparameters as hp_module

__all__ = ["OptunaHyperParameters", "suggest"]


class OptunaHyperParameters(keras_tuner.HyperParameters):
    """A ``keras_tuner.HyperParameters`` whose new active values come from ``trial`` (Optuna).

    ``trial`` may be a :class:`optuna.trial.FixedTrial` to rebuild a model from stored params.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, fixed: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.trial = trial
        self.fixed = dict(fixed or {})

    def _register(self, hyperparameter: Any, overwrite: bool = False) -> Any:
        hp = hyperparameter
        self._validate_name(hp.name)
        if hp.name not in self.values and self._conditions_are_active(hp.conditions):
            self.values[hp.name] = self.fixed[hp.name] if hp.name in self.fixed else suggest(self.trial, hp)
        return super()._register(hp, overwrite=False)

    def copy(self) -> keras_tuner.HyperParameters:
        # keras-tuner copies ``hp`` for a HyperModel with tunable=False: the copy takes defaults, as there.
        return keras_tuner.HyperParameters.from_config(self.get_config())


def suggest(trial: optuna.trial.BaseTrial, hp: Any) -> Any:
    """The value of one keras-tuner hyperparameter, suggested by ``trial`` under the same name."""
    name = hp.name
    if isinstance(hp, hp_module.Fixed):
        return hp.value
    if isinstance(hp, hp_module.Boolean):
        return trial.suggest_categorical(name, [False, True])
    if isinstance(hp, hp_module.Choice):
        return trial.suggest_categorical(name, list(hp.values))
    if isinstance(hp, hp_module.Int):
        return _suggest_int(trial, hp)
    if isinstance(hp, hp_module.Float):
        return _suggest_float(trial, hp)
    raise TypeError(f"unsupported keras-tuner hyperparameter {hp!r}")


def _geometric_values(hp: Any, cast: type) -> list[Any]:
    """keras-tuner's values for log / reverse-log sampling with a multiplicative step."""
    lo, hi, step = hp.min_value, hp.max_value, hp.step
    n = int(math.log(hi / lo, step) + 1e-8) + 1
    if hp.sampling == "log":
        values = [lo * step**i for i in range(n)]
    else:  # reverse_log: dense near the top
        values = [hi + lo - lo * step**i for i in range(n)]
    return sorted({cast(round(v, 12)) if cast is float else cast(round(v)) for v in values})


def _suggest_int(trial: optuna.trial.BaseTrial, hp: Any) -> int:
    lo, hi, step = int(hp.min_value), int(hp.max_value), hp.step
    if hp.sampling == "log":
        if step is None or step == 1:
            return trial.suggest_int(hp.name, lo, hi, log=True)
        return trial.suggest_categorical(hp.name, _geometric_values(hp, int))
    if hp.sampling == "reverse_log" and step not in (None, 1):
        return trial.suggest_categorical(hp.name, _geometric_values(hp, int))
    step = int(step or 1)
    top = lo + ((hi - lo) // step) * step
    return trial.suggest_int(hp.name, lo, top, step=step)


def _suggest_float(trial: optuna.trial.BaseTrial, hp: Any) -> float:
    lo, hi, step = float(hp.min_value), float(hp.max_value), hp.step
    if hp.sampling == "log":
        if step is None:
            return trial.suggest_float(hp.name, lo, hi, log=True)
        return trial.suggest_categorical(hp.name, _geometric_values(hp, float))
    if hp.sampling == "reverse_log" and step is not None:
        return trial.suggest_categorical(hp.name, _geometric_values(hp, float))
    if step is None:
        return trial.suggest_float(hp.name, lo, hi)
    step = float(step)
    top = lo + math.floor((hi - lo) / step + 1e-9) * step
    return trial.suggest_float(hp.name, lo, round(top, 12), step=step)
