"""What is searched: one module per study space (``attn``, ``baseline``, ``seed``, ``ablation``).

Spaces import optuna and, where a trial runs, the model factory's presets; never ``storage``, and never
keras at import time (the launcher reads them without loading keras).

:func:`get_space` is the one registry of spaces: the built-in ones by name, and spaces named by a prefix
and a spec (``hypermodel:mypkg.tuning:MyHyperModel``, a keras-tuner hypermodel), whose class is imported
only when such a space is asked for.
"""
from __future__ import annotations

import importlib

from search.errors import StudyConfigError
from spaces._base import ATTENTION_POSITIONS, HEADED_POSITIONS, Param, SearchSpace
from spaces.ablation import AblationSpace
from spaces.attn import AttnSpace
from spaces.baseline import BaselineSpace
from spaces.seed import SeedSpace

__all__ = ["ATTENTION_POSITIONS", "HEADED_POSITIONS", "Param", "SearchSpace", "SPACES", "SPEC_SPACES", "get_space"]

SPACES: dict[str, type[SearchSpace]] = {s.name: s for s in (AttnSpace, BaselineSpace, SeedSpace, AblationSpace)}

#: Spaces named ``PREFIX<spec>``: the prefix, and ``module:class`` of a space built from the spec. A string,
#: not the class, because the keras-tuner bridge is an optional layer above this package (and its space
#: imports keras-tuner when it runs): the registry reaches it only for a study that uses it.
SPEC_SPACES: dict[str, str] = {"hypermodel:": "search.kerastuner._space:HyperModelSpace"}


def get_space(name: str, source: str = "--study") -> SearchSpace:
    """The space a study named: a built-in name, or ``hypermodel:<module:attr>``.

    ``source`` is the flag (or stored field) the name came from, for the error an unknown name raises.
    """
    for prefix, target in SPEC_SPACES.items():
        if name.startswith(prefix):
            module, _, attr = target.partition(":")
            space_class = getattr(importlib.import_module(module), attr)
            space: SearchSpace = space_class(name[len(prefix):])
            return space
    try:
        return SPACES[name]()
    except KeyError:
        raise StudyConfigError(f"unknown study space '{name}'; expected one of {', '.join(SPACES)} or "
                               "hypermodel:<module:attr>", source=source) from None
