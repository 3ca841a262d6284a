"""``attn``: does attention help, and where? The seed user's knobs plus the attention position."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from search.record import TrialRecord
from spaces._base import ATTENTION_POSITIONS, HEADED_POSITIONS, Param, SearchSpace

__all__ = ["AttnSpace", "COMMON_PARAMETERS", "COMMON_FIXED", "STRONG_START"]

# The knobs the seed's user tuned by hand, plus learning rate and embedding mode.
COMMON_PARAMETERS: tuple[Param, ...] = (
    Param("batch_size", "categorical", choices=(16, 32, 64, 128)),
    Param("dropout", "float", low=0.0, high=0.6, step=0.1),
    Param("batch_norm", "categorical", choices=(False, True)),
    # 256 a direction (the literature's LAAT width) was measured on full debtags50: no better than 128
    # (0.7033 against 0.7034 at best) at twice the training time (BENCHMARKS.md), so 128 stays the widest.
    Param("hidden_units", "categorical", choices=(32, 64, 128)),
    Param("learning_rate", "float", low=3e-4, high=1e-2, log=True),
    Param("embedding_mode", "categorical", choices=("frozen", "trainable", "random")),
)
COMMON_FIXED: Mapping[str, Any] = {"rnn_layers": 1, "bidirectional": True, "conv_kernel_sizes": (1, 2, 3),
                                   "conv_filters": 64, "embedding_dim": 100}


#: The strong start: configurations measured good on full debtags50 (a 30-minute full-data study, see
#: BENCHMARKS.md: the first reached validation micro-F1 0.702, above the TF-IDF reference's 0.685),
#: enqueued first so a new study's first trials are already competitive and TPE learns from them. One
#: per kind of model the question compares: self-attention over the BiLSTM states, no attention at all
#: (the control), per-label attention, attention over the convolution's positions (the equal-budget
#: ablation's best single model: validation micro-F1 0.700 / 0.706 / 0.700 at three seeds, about 23 s an
#: epoch on an idle 2-core CPU).
#: Each is enqueued as a strong-start trial (:attr:`search.record.TrialRecord.strong_start`), which the
#: pruner never stops: they are the final ensemble's members of different kinds, whose errors differ
#: (the ablation's models, one or two of each kind, made the first ensemble above 0.57 test macro-F1).
STRONG_START: tuple[Mapping[str, Any], ...] = (
    {"batch_size": 64, "dropout": 0.4, "batch_norm": False, "hidden_units": 128, "learning_rate": 0.0022,
     "embedding_mode": "trainable", "attention_position": "rnn", "num_heads": 4},
    {"batch_size": 64, "dropout": 0.4, "batch_norm": False, "hidden_units": 128, "learning_rate": 0.0022,
     "embedding_mode": "trainable", "attention_position": "none"},
    {"batch_size": 64, "dropout": 0.3, "batch_norm": False, "hidden_units": 128, "learning_rate": 0.002,
     "embedding_mode": "trainable", "attention_position": "label"},
    {"batch_size": 64, "dropout": 0.4, "batch_norm": False, "hidden_units": 128, "learning_rate": 0.0022,
     "embedding_mode": "trainable", "attention_position": "conv"},
)


class AttnSpace(SearchSpace):
    name = "attn"
    version = 2  # 2: a new study enqueues STRONG_START
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

    def enqueue(self, study: optuna.Study, context: Mapping[str, Any]) -> int:
        """Enqueue :data:`STRONG_START`, marked as such (a parameter fixed by ``--set`` is left to the fixed
        value)."""
        user_fixed = set(context.get("fixed", {}))
        marked = TrialRecord(strong_start=True).to_user_attrs()
        for params in STRONG_START:
            study.enqueue_trial({k: v for k, v in params.items() if k not in user_fixed}, user_attrs=marked,
                                skip_if_exists=True)
        return len(STRONG_START)
