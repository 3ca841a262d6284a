"""A study space whose parameters are whatever a keras-tuner hypermodel's ``build(hp)`` asks for."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from search.errors import StudyConfigError, TrialFailure
from search.kerastuner._resolve import PREFIX, check_spec, parse_spec, spec_of
from search.model import InputShapes
from search.record import TrialRecord
from spaces import Param, SearchSpace

if TYPE_CHECKING:
    from search.model import BuiltModel

__all__ = ["HyperModelSpace", "RESERVED_FIT_KWARGS"]

#: fit arguments the service owns: the study's --epochs, its callbacks, and the training split.
RESERVED_FIT_KWARGS = ("epochs", "x", "y", "validation_data", "validation_split", "initial_epoch")


class HyperModelSpace(SearchSpace):
    """Define-by-run: ``suggest`` runs the hypermodel's ``build(hp)`` with an Optuna-backed ``hp`` and
    returns ``hp.values``; ``build`` rebuilds the model from those values after the trial is seeded, and
    ``fit`` trains it through ``hypermodel.fit``. The space holds no state of a trial: the trial and the
    study's context reach each method as arguments, so one space object serves every trial of a worker.

    ``hypermodel``: ``"module:attr"`` (importable by every worker), or, in-process, the object itself.
    ``fit_kwargs``: what a keras-tuner user passes to ``tuner.search(...)`` besides data and epochs,
    e.g. ``{"batch_size": 64}``; stored on the study (context), so every worker uses the same.
    """

    version = 1
    description = "a keras-tuner HyperModel: its build(hp) declares the parameters"

    def __init__(self, hypermodel: Any, fit_kwargs: Mapping[str, Any] | None = None) -> None:
        if isinstance(hypermodel, str):
            parse_spec(hypermodel)
            self.spec = hypermodel.strip()
            self._object: Any = None
        else:
            self.spec = spec_of(hypermodel)
            self._object = hypermodel
        self.name = PREFIX + self.spec
        self.fit_kwargs = _check_fit_kwargs(fit_kwargs) if fit_kwargs is not None else None
        self._hypermodel: Any = None

    def parameters(self, context: Mapping[str, Any]) -> Sequence[Param]:
        return ()  # declared by build(hp) while it runs

    def prepare(self, study: optuna.Study | None = None, **options: Any) -> dict[str, Any]:
        """Check the hypermodel can be loaded (in a child process when keras is not imported here)."""
        fit_kwargs = options.get("fit_kwargs", self.fit_kwargs)
        fit_kwargs = _check_fit_kwargs(fit_kwargs or {})
        if self._object is None:
            check_spec(self.spec)
        return {"hypermodel": self.spec, "fit_kwargs": fit_kwargs}

    def suggest(self, trial: optuna.trial.BaseTrial, context: Mapping[str, Any]) -> dict[str, Any]:
        import keras

        from search.kerastuner._hypermodel import run_build

        try:
            model, hp = run_build(self.hypermodel, trial, context.get("fixed"))
        except Exception as exc:  # the user's build(hp) failed: this trial fails with its reason, the worker goes on
            reason = f"{self.spec}: build(hp) raised {type(exc).__name__}: {exc}".splitlines()[0][:500]
            TrialRecord(failure_reason=reason).write(trial)
            raise TrialFailure(reason) from exc
        del model
        keras.backend.clear_session()
        return dict(hp.values)

    def build(self, params: Mapping[str, Any], shapes: InputShapes, *, trial: optuna.trial.BaseTrial,
              context: Mapping[str, Any], memory_budget: int | None = None) -> BuiltModel:
        """The trial's compiled model, built again after seeding: ``trial`` answers what it answered while
        suggesting (a replay passes the FixedTrial of the stored params, which holds fit's too)."""
        from search.kerastuner._hypermodel import build_trial_model

        fit_kwargs = self.fit_kwargs if self.fit_kwargs is not None else context.get("fit_kwargs", {})
        return build_trial_model(self.hypermodel, trial, shapes, context.get("fixed"), fit_kwargs or {}, self.spec)

    def fit(self, built: BuiltModel, x: Any, y: Any, *, epochs: int, callbacks: Sequence[Any], seed: int) -> None:
        """Train through the hypermodel's own ``fit`` (``hypermodel.fit(hp, model, x, y, ...)``); its
        batches are its own (the trial is seeded before it is built)."""
        from search.kerastuner._hypermodel import BuiltHyperModel

        if not isinstance(built, BuiltHyperModel):
            raise TypeError(f"got a {type(built).__name__}; expected the BuiltHyperModel this space's build returns")
        built.fit(x, y, epochs=epochs, callbacks=callbacks)

    def grid(self, context: Mapping[str, Any], points: int = 3) -> dict[str, list[Any]]:
        raise StudyConfigError("a hypermodel's parameters are known only while build(hp) runs; expected "
                               "--sampler tpe or random", source="--sampler", field="grid")

    @property
    def hypermodel(self) -> Any:
        """The user's hypermodel, loaded once per process (its import may be slow)."""
        if self._hypermodel is None:
            from search.kerastuner._hypermodel import load_hypermodel

            self._hypermodel = load_hypermodel(self._object if self._object is not None else self.spec)
        return self._hypermodel


def _check_fit_kwargs(fit_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(fit_kwargs, Mapping):
        raise StudyConfigError(f"got {fit_kwargs!r}; expected a mapping of fit arguments", source="fit_kwargs")
    for key in fit_kwargs:
        if key in RESERVED_FIT_KWARGS or key == "callbacks":
            raise StudyConfigError(f"got '{key}'; the study sets the data, epochs and callbacks; expected other "
                                   "fit arguments such as batch_size", source="fit_kwargs", field=key)
    try:
        json.dumps(dict(fit_kwargs))
    except (TypeError, ValueError):
        raise StudyConfigError(f"got {dict(fit_kwargs)!r}; expected JSON values (they are stored on the study)",
                               source="fit_kwargs") from None
    return dict(fit_kwargs)
