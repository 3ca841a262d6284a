"""What is searched: one module per study space (``attn``, ``baseline``, ``seed``, ``ablation``).

Spaces import optuna and, where a trial runs, the model factory's presets; never ``storage``, and never
keras at import time (the launcher reads them without loading keras).
"""
from __future__ import annotations

from spaces._base import ATTENTION_POSITIONS, HEADED_POSITIONS, Param, SearchSpace
from spaces.ablation import AblationSpace
from spaces.attn import AttnSpace
from spaces.baseline import BaselineSpace
from spaces.seed import SeedSpace

__all__ = ["ATTENTION_POSITIONS", "HEADED_POSITIONS", "Param", "SearchSpace", "SPACES", "get_space"]

SPACES: dict[str, type[SearchSpace]] = {s.name: s for s in (AttnSpace, BaselineSpace, SeedSpace, AblationSpace)}


def get_space(name: str) -> SearchSpace:
    from search.errors import StudyConfigError

    try:
        return SPACES[name]()
    except KeyError:
        raise StudyConfigError(f"unknown study space '{name}'; expected one of {', '.join(SPACES)}",
                               source="--study") from None
