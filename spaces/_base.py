"""The contract every study space follows, and the declarative parameter it is made of."""
from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import optuna

__all__ = ["Param", "SearchSpace", "ATTENTION_POSITIONS", "HEADED_POSITIONS"]

from search.model import ATTENTION_POSITIONS, InputShapes  # pure Python: search.model loads keras only to build

if TYPE_CHECKING:
    from search.model import BuiltModel

HEADED_POSITIONS = ("embedding", "rnn")  # the positions that use multi-head self-attention


@dataclass(frozen=True)
class Param:
    """One searched parameter: categorical (``choices``), or int / float in [low, high] (``log``, ``step``).

    ``when`` makes it conditional: it is suggested only when ``when(params_so_far)`` is true (e.g.
    ``num_heads`` only for the positions that have heads), so the sampler never sees a parameter that
    does nothing.
    """

    name: str
    kind: str  # "categorical" | "int" | "float"
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("categorical", "int", "float"):
            raise ValueError(f"Param {self.name}: kind {self.kind!r}; expected categorical, int or float")
        if self.kind == "categorical" and not self.choices:
            raise ValueError(f"Param {self.name}: a categorical needs choices")
        if self.kind != "categorical" and (self.low is None or self.high is None):
            article = "an" if self.kind == "int" else "a"
            raise ValueError(f"Param {self.name}: {article} {self.kind} parameter needs low and high")

    def active(self, params: Mapping[str, Any]) -> bool:
        return self.when is None or bool(self.when(params))

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of an int or float parameter (checked present at the definition)."""
        if self.low is None or self.high is None:
            raise ValueError(f"Param {self.name}: a {self.kind} has no range")
        return float(self.low), float(self.high)

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        lo, hi = self.bounds()
        if self.kind == "int":
            return trial.suggest_int(self.name, int(lo), int(hi), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, lo, hi, step=self.step, log=self.log)

    def grid_values(self, points: int = 3) -> list[Any]:
        """Finite values for Optuna's GridSampler: the choices, or ``points`` values spanning the range."""
        if self.kind == "categorical":
            return list(self.choices)
        lo, hi = self.bounds()
        if self.log:
            values = [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (points - 1)) for i in range(points)]
        else:
            values = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        if self.step:
            values = [lo + round((v - lo) / self.step) * self.step for v in values]
        if self.kind == "int":
            return sorted({round(v) for v in values})
        return sorted({round(v, 10) for v in values})


class SearchSpace(abc.ABC):
    """A study space: what a study searches, how a trial's model is built and trained, and which fixed
    trials a new study enqueues. Everything the objective calls is declared here, with its default.

    Contract:
    - ``name`` and ``version``: a study records both; resuming it with another version is refused, so
      bump ``version`` whenever ``parameters`` or ``fixed`` change meaning.
    - ``parameters(context)`` lists the searched :class:`Param`s in suggestion order (conditions may look
      at the earlier ones); ``fixed`` holds model parameters that are not searched.
    - ``prepare(study, **options)`` runs once when the study is created and returns a JSON-ready
      ``context`` (stored on the study, passed back to every other method); ``enqueue`` adds fixed trials.
    - ``suggest(trial, context)`` returns the full params dict for the model.
    - ``trial_seed(trial, base_seed)`` is the seed the trial trains with.
    - ``build(params, shapes, trial=..., context=..., memory_budget=...)`` returns the compiled model (a
      :class:`search.model.BuiltModel`: model, resolved params, diagnostics), after the trial is seeded.
    - ``fit(built, x, y, epochs=..., callbacks=..., seed=...)`` trains it; the objective's callbacks
      (validation micro-F1, NaN guard, pruning) must reach Keras' ``fit``.
    """

    name: str  # a class attribute of the built-in spaces; a spec-named space sets it per instance
    version: ClassVar[int]
    description: ClassVar[str] = ""
    fixed: ClassVar[Mapping[str, Any]] = {}

    @abc.abstractmethod
    def parameters(self, context: Mapping[str, Any]) -> Sequence[Param]:
        """The searched parameters."""

    def suggest(self, trial: optuna.trial.BaseTrial, context: Mapping[str, Any]) -> dict[str, Any]:
        user_fixed = dict(context.get("fixed", {}))  # --set key=value: fixed by the user, never searched
        params: dict[str, Any] = dict(self.fixed) | user_fixed
        for p in self.parameters(context):
            if p.name not in user_fixed and p.active(params):
                params[p.name] = p.suggest(trial)
        return params

    def trial_seed(self, trial: optuna.trial.BaseTrial, base_seed: int) -> int:
        """The seed of ``trial``: the study's ``--seed`` plus the trial number, so no two trials share one."""
        return base_seed + trial.number

    def build(self, params: Mapping[str, Any], shapes: InputShapes, *, trial: optuna.trial.BaseTrial,
              context: Mapping[str, Any], memory_budget: int | None = None) -> BuiltModel:
        """The model factory's model for ``params`` (refused with
        :class:`~search.errors.ModelConfigError` before anything is trained when it cannot be built)."""
        from search.model import build_model  # imports keras: only a worker builds models

        return build_model(params, shapes, memory_budget_bytes=memory_budget)

    def fit(self, built: BuiltModel, x: Any, y: Any, *, epochs: int, callbacks: Sequence[Any], seed: int) -> None:
        """The model factory's training (:func:`search.model.fit_model`): the model's own ``batch_size``,
        batches of similar length where the model allows them, ordered by ``seed``."""
        from search.model import fit_model  # imports keras: only a worker trains models

        fit_model(built, x, y, epochs=epochs, callbacks=callbacks, seed=seed)

    def prepare(self, study: optuna.Study | None = None, **options: Any) -> dict[str, Any]:
        """The study's context, computed once when it is created; none by default."""
        return {}

    def enqueue(self, study: optuna.Study, context: Mapping[str, Any]) -> int:
        """Add this space's fixed trials to a new study; returns how many."""
        return 0

    def n_trials(self, context: Mapping[str, Any]) -> int | None:
        """Trials the space needs (for fixed designs), or None for open-ended searches."""
        return None

    def grid(self, context: Mapping[str, Any], points: int = 3) -> dict[str, list[Any]]:
        """The grid for ``--sampler grid``: every parameter, conditional ones included."""
        return {p.name: p.grid_values(points) for p in self.parameters(context)}
