"""A keras-tuner bridge: a user's ``keras_tuner.HyperModel`` (or ``build(hp)`` function) runs as a study of
this service -- same storage, pruning, workers and dashboard.

    import search.kerastuner as skt
    study = skt.run(MyHyperModel(), study_name="mine", n_trials=20, epochs=6, fit_kwargs={"batch_size": 64})

    python -m search.kerastuner --hypermodel mypkg.tuning:MyHyperModel --study mine --trials 20

The hypermodel's ``hp.Int`` / ``hp.Float`` / ``hp.Choice`` / ``hp.Boolean`` / ``hp.Fixed`` and
``hp.conditional_scope`` are answered by the Optuna trial (:class:`OptunaHyperParameters`, a subclass of
``keras_tuner.HyperParameters``); every searched value is a parameter of the trial under its keras-tuner
name. A study space named ``hypermodel:<module:attr>`` (``spaces.get_space``) is how workers rebuild it.

Importing this package does not import keras; the names below that need it load on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from search._lazy import lazy_names
from search.kerastuner._resolve import PREFIX, check_spec, parse_spec
from search.kerastuner._run import run
from search.kerastuner._space import HyperModelSpace
from spaces import get_space

if TYPE_CHECKING:
    from search.kerastuner._hypermodel import load_hypermodel
    from search.kerastuner._hyperparameters import OptunaHyperParameters

__all__ = ["PREFIX", "HyperModelSpace", "OptunaHyperParameters", "check_spec", "get_space", "load_hypermodel",
           "parse_spec", "run"]

_LAZY = {"OptunaHyperParameters": "search.kerastuner._hyperparameters",
         "load_hypermodel": "search.kerastuner._hypermodel"}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
