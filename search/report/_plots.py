"""The report's PNGs: Optuna's optimisation history and parameter importances, validation micro-F1 by
attention position, and per-label test F1 of the best model with versus without attention."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from search.model import ATTENTION_POSITIONS
from search.plots import agg_figure, save_png
from search.record import TrialRecord
from search.report._ablation import Ablation
from search.report._compare import WithWithout
from search.report._store import complete_trials

__all__ = ["report_plots", "PLOT_FILES"]

PLOT_FILES = {
    "history": "optimization_history.png",
    "importances": "param_importances.png",
    "positions": "val_micro_f1_by_position.png",
    "per_label": "per_label_f1.png",
}


def _optuna_plot(draw: Callable[[], Any], path: Path) -> Path:
    """Run one of ``optuna.visualization.matplotlib``'s functions and save its figure (then close it)."""
    import matplotlib
    import matplotlib.pyplot as plt

    # Optuna's functions call plt.style.use("ggplot"): the rc_context puts the caller's style back.
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = draw()
        fig = ax.figure if hasattr(ax, "figure") else np.ravel(ax)[0].figure
        try:
            fig.set_size_inches(7.5, 4.2)
            fig.savefig(path, format="png", dpi=90, bbox_inches="tight")
        finally:
            plt.close(fig)
    return path


def _positions_plot(study: optuna.Study, ablation: Ablation | None, path: Path) -> Path:
    trials = complete_trials(study)
    positions = [TrialRecord.from_trial(t).position for t in trials]
    found = set(positions) | ({r.position for r in ablation.rows} if ablation else set())
    order = [p for p in ATTENTION_POSITIONS if p in found] + sorted(found - set(ATTENTION_POSITIONS))
    panels = 2 if ablation is not None else 1
    fig = agg_figure(5.2 * panels, 3.6)
    axes = np.atleast_1d(fig.subplots(1, panels))
    rng = np.random.default_rng(0)
    ax = axes[0]
    for i, position in enumerate(order):
        values = [t.value for t, p in zip(trials, positions, strict=True) if p == position]
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, alpha=0.7, s=22)
    ax.set_title(f"study {study.study_name}: complete trials\n(not an equal budget: the sampler chose)", fontsize=9)
    if ablation is not None:
        bx = axes[1]
        for i, position in enumerate(order):
            row = ablation.row(position)
            if row is None:
                continue
            seeds = [e.value for e in ablation.evals if e.position == position]
            bx.scatter(np.full(len(seeds), i) + rng.uniform(-0.08, 0.08, len(seeds)), seeds, alpha=0.5, s=18,
                       color="gray")
            if row.valid.defined:
                bx.errorbar([i], [row.valid.estimate], yerr=[[row.valid.estimate - row.valid.low],
                                                               [row.valid.high - row.valid.estimate]],
                            fmt="o", color="black", capsize=4)
            else:
                bx.plot([i], [row.valid.estimate], "o", color="black")
        bx.set_title(f"ablation study {ablation.study}: seeds (gray),\nmean and 95% t-interval (black)", fontsize=9)
    for a in axes:
        a.set_xticks(range(len(order)), order, rotation=20)
        a.set_ylabel("validation micro-F1 (tuned)")
        a.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_png(fig, path)


def _per_label_plot(pair: WithWithout, label_names: Sequence[str], y_test: np.ndarray, path: Path) -> Path:
    w, wo = pair.with_eval, pair.without_eval
    assert w is not None and wo is not None
    support = np.asarray(y_test).sum(axis=0)
    order = np.argsort(-support)
    n = len(order)
    fig = agg_figure(7.5, max(4.0, 0.2 * n + 1.5))
    ax = fig.subplots()
    y = np.arange(n)
    ax.barh(y - 0.2, w.per_label[order], height=0.4, label=f"with attention: {w.position} ({w.label})")
    ax.barh(y + 0.2, wo.per_label[order], height=0.4, label=f"without: none ({wo.label})")
    ax.set_yticks(y, [f"{label_names[i]} ({int(support[i])})" for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("test F1 at each model's validation-tuned threshold")
    ax.set_title("per-label F1, labels by test frequency (documents in brackets)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return save_png(fig, path)


def report_plots(study: optuna.Study, ablation: Ablation | None, pair: WithWithout | None, dataset: Any,
                 out: Path) -> tuple[dict[str, Path], list[str]]:
    """Write the PNGs into ``out``; returns (name -> path, notes on plots that could not be drawn)."""
    from optuna.visualization import matplotlib as ovm

    files: dict[str, Path] = {}
    notes: list[str] = []
    try:
        files["history"] = _optuna_plot(lambda: ovm.plot_optimization_history(study), out / PLOT_FILES["history"])
    except Exception as exc:  # Optuna refuses some studies (e.g. nothing to plot)
        notes.append(f"optimisation history not drawn: {exc}")
    if len(complete_trials(study)) >= 2:
        try:
            files["importances"] = _optuna_plot(lambda: ovm.plot_param_importances(study),
                                                out / PLOT_FILES["importances"])
        except Exception as exc:
            notes.append(f"parameter importances not drawn: {type(exc).__name__}: {exc}".splitlines()[0])
    else:
        notes.append("parameter importances need at least 2 complete trials")
    files["positions"] = _positions_plot(study, ablation, out / PLOT_FILES["positions"])
    if pair is not None and pair.with_eval is not None and pair.without_eval is not None:
        files["per_label"] = _per_label_plot(pair, dataset.label_names, dataset.y_test, out / PLOT_FILES["per_label"])
    else:
        notes.append("per-label F1 plot needs saved models of the best trial with and the best without attention")
    return files, notes
