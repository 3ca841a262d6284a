"""A study's final models: the greedy ensemble of its best trials and the best configuration refit on
train + validation (``python -m search.finalize``); recorded on the study, scored by the report."""
from __future__ import annotations

from search._final._record import FINAL_CHOICES, FinalEnsemble, FinalRefit, read_ensemble, read_refit

__all__ = ["FINAL_CHOICES", "FinalEnsemble", "FinalRefit", "read_ensemble", "read_refit"]
