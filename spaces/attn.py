"""``attn``: does attention help, and where? The seed user's knobs plus the attention position."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spaces._base import ATTENTION_POSITIONS, HEADED_POSITIONS, Param, SearchSpace

__all__ = ["AttnSpace", "COMMON_PARAMETERS", "COMMON_FIXED"]

# The knobs the seed's user tuned by hand, plus learning rate and embedding mode.
COMMON_PARAMETERS: tuple[Param, ...] = (
    Param("batch_size", "categorical", choices=(16, 32, 64, 128)),
    Param("dropout", "float", low=0.0, high=0.6, step=0.1),
    Param("batch_norm", "categorical", choices=(False, True)),
    Param("hidden_units", "categorical", choices=(32, 64, 128)),
    Param("learning_rate", "float", low=3e-4, high=1e-2, log=True),
    Param("embedding_mode", "categorical", choices=("frozen", "trainable", "random")),
)
COMMON_FIXED: Mapping[str, Any] = {"rnn_layers": 1, "bidirectional": True, "conv_kernel_sizes": (1, 2, 3),
                                   "conv_filters": 64, "embedding_dim": 100}


class AttnSpace(SearchSpace):
    name = "attn"
    version = 1
    description = ("batch size, dropout, batch norm, hidden units, learning rate, embedding mode, attention position, "
                   "heads")
    fixed = COMMON_FIXED

    def parameters(self, context: Mapping[str, Any]) -> Sequence[Param]:
        return (
            *COMMON_PARAMETERS,
            Param("attention_position", "categorical", choices=ATTENTION_POSITIONS),
            Param("num_heads", "categorical", choices=(1, 2, 4, 8),
                  when=lambda p: p.get("attention_position") in HEADED_POSITIONS),
        )
