"""``baseline``: the ``attn`` space without attention (the seed's RCNN, tuned)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spaces._base import Param, SearchSpace
from spaces.attn import COMMON_FIXED, COMMON_PARAMETERS

__all__ = ["BaselineSpace"]


class BaselineSpace(SearchSpace):
    name = "baseline"
    version = 1
    description = "the attn space with attention_position fixed to none"
    fixed = dict(COMMON_FIXED) | {"attention_position": "none"}

    def parameters(self, context: Mapping[str, Any]) -> Sequence[Param]:
        return COMMON_PARAMETERS
