"""The study report: test-set evaluation, the attention ablation, a TF-IDF reference, plots, a verdict.

    python -m search.report --study attn [--storage URL] [--out DIR] [--ablation-study NAME]

    from search.report import make_report
    report = make_report("attn")            # writes reports/attn/report.md and its PNGs
    print(report.verdict)

The study, its store and the refusals (unknown study, no complete trial) are checked before keras is
imported or anything is written. This package never sets the Keras backend or matplotlib's backend:
its figures use their own Agg canvas, and Optuna's plots are closed after saving.
"""
from __future__ import annotations

from search.report._build import Report, make_report

__all__ = ["Report", "make_report"]
