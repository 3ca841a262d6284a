"""A study's final models: the greedy ensemble of its best trials, the best configuration refit on
train + validation, and the ensemble with its members refit so (``python -m search.finalize``); recorded
on the study, scored by the report."""
from __future__ import annotations

from search._final._record import (
    FINAL_CHOICES,
    FinalEnsemble,
    FinalModel,
    FinalRefit,
    FinalRefitEnsemble,
    read_ensemble,
    read_refit,
    read_refit_ensemble,
    refit_name,
)

__all__ = ["FINAL_CHOICES", "FinalEnsemble", "FinalModel", "FinalRefit", "FinalRefitEnsemble", "read_ensemble",
           "read_refit", "read_refit_ensemble", "refit_name"]
