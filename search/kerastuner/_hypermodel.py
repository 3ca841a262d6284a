"""Loading a user's hypermodel, and building / fitting one trial's model from it (imports keras_tuner)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner
import numpy as np
import optuna

from search.errors import TrialFailure
from search.kerastuner._hyperparameters import OptunaHyperParameters
from search.kerastuner._resolve import load_object, spec_error, spec_of
from search.model import BuiltModel

__all__ = ["FunctionHyperModel", "BuiltHyperModel", "load_hypermodel", "build_trial_model"]


class FunctionHyperModel(keras_tuner.HyperModel):
    """A ``build(hp)`` function as a HyperModel, as keras-tuner's tuners wrap one."""

    def __init__(self, build: Callable[[keras_tuner.HyperParameters], Any]) -> None:
        super().__init__(name=getattr(build, "__name__", None))
        self._build = build


def load_hypermodel(spec_or_object: Any) -> keras_tuner.HyperModel:
    """A HyperModel instance from ``module:attr``, a HyperModel subclass or instance, or a build(hp) function."""
    spec = spec_or_object if isinstance(spec_or_object, str) else spec_of(spec_or_object)
    obj = load_object(spec_or_object) if isinstance(spec_or_object, str) else spec_or_object
    if isinstance(obj, type):
        if not issubclass(obj, keras_tuner.HyperModel):
            raise spec_error(spec, f"class {obj.__name__} is not a keras_tuner.HyperModel subclass")
        try:
            return obj()
        except TypeError as exc:
            raise spec_error(spec, f"{obj.__name__}() needs arguments ({exc})",
                             "expected a HyperModel subclass that takes no arguments, or an instance (module:name "
                             "of the instance)") from None
    if isinstance(obj, keras_tuner.HyperModel):
        return obj
    if callable(obj):
        return FunctionHyperModel(obj)
    raise spec_error(spec, f"a {type(obj).__name__} object")


@dataclass
class BuiltHyperModel(BuiltModel):
    """A trial's model built by a hypermodel, with what its ``fit`` needs: the hypermodel, its ``hp``,
    and the user's fit arguments."""

    hypermodel: keras_tuner.HyperModel
    hp: keras_tuner.HyperParameters
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def fit(self, x: Any, y: Any, *, epochs: int, callbacks: Sequence[Any]) -> Any:
        """``hypermodel.fit(hp, model, x, y, **kwargs)`` as keras-tuner calls it from ``Tuner.search``.

        The service's callbacks (validation micro-F1, NaN guard, pruning) come after the user's own, as
        keras-tuner appends its callbacks to the user's. The batch size is the user's fit argument
        (``fit_kwargs``) or whatever the hypermodel's ``fit`` chooses; the factory's ``batch_size`` param does
        not apply to a hypermodel.
        """
        kwargs = dict(self.fit_kwargs)
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + list(callbacks)
        kwargs.update(epochs=epochs, verbose=0)
        kwargs.setdefault("shuffle", True)
        return self.hypermodel.fit(self.hp, self.model, x, y, **kwargs)


def run_build(hypermodel: keras_tuner.HyperModel, trial: optuna.trial.BaseTrial, fixed: Mapping[str, Any] | None
              ) -> tuple[Any, OptunaHyperParameters]:
    hp = OptunaHyperParameters(trial, fixed)
    model = hypermodel.build(hp)
    return model, hp


def build_trial_model(hypermodel: keras_tuner.HyperModel, trial: optuna.trial.BaseTrial, shapes: Any,
                      fixed: Mapping[str, Any] | None, fit_kwargs: Mapping[str, Any], spec: str) -> BuiltHyperModel:
    """Rebuild the trial's model after seeding. ``trial`` answers again what it answered while suggesting
    (an Optuna trial returns a parameter's value when it is asked twice), and answers anew what only
    ``hypermodel.fit`` asks (a tuned batch size); a FixedTrial of the stored params replays a trial."""
    try:
        model, hp = run_build(hypermodel, trial, fixed)
    except ValueError as exc:
        if "is not found" in str(exc):
            raise TrialFailure(f"{spec}: build(hp) asked for a hyperparameter the trial does not have ({exc}); "
                               "expected build(hp) to depend only on hp") from None
        raise
    if not isinstance(model, keras.Model):
        raise TrialFailure(f"{spec}: build(hp) returned a {type(model).__name__}; expected a keras.Model "
                           "(as keras-tuner requires)")
    if not getattr(model, "compiled", False) and getattr(model, "optimizer", None) is None:
        raise TrialFailure(f"{spec}: build(hp) returned an uncompiled model; expected model.compile(...) inside "
                           "build (as keras-tuner requires)")
    _check_output(model, shapes, spec)
    diagnostics = {
        "hypermodel": spec,
        "keras_tuner_space": [{"class_name": type(p).__name__, "config": _jsonable(p.get_config())}
                              for p in hp.space],
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
        "backend": keras.backend.backend(),
    }
    return BuiltHyperModel(model=model, params=dict(hp.values), diagnostics=diagnostics, hypermodel=hypermodel,
                           hp=hp, fit_kwargs=dict(fit_kwargs))


def _check_output(model: keras.Model, shapes: Any, spec: str) -> None:
    try:
        width = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, ValueError, TypeError):  # a Sequential without Input: unknown yet
        return
    if width is not None and shapes is not None and int(width) != int(shapes.n_labels):
        raise TrialFailure(f"{spec}: the model has {width} outputs; expected one sigmoid output per label "
                           f"({shapes.n_labels})")


def _count(variables: list[Any]) -> int:
    return int(sum(int(np.prod(v.shape)) for v in variables))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
