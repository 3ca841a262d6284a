"""Per-trial plots the dashboard shows as artifacts: the learning curve and an attention heatmap.

    fig = learning_curve_figure(TrialRecord.from_trial(trial).epochs, title="trial 3")
    fig = attention_heatmap_figure(rows_per_document, tokens_per_document)
    upload_trial_plots(trial, model, dataset, artifact_store)   # both, as PNG artifacts of the trial

Figures are plain :class:`matplotlib.figure.Figure` objects drawn with the Agg canvas: nothing here
touches pyplot or the process-wide matplotlib backend, so a worker, a notebook or the report can use
these functions side by side. keras is imported only by :func:`upload_trial_plots` (through
:mod:`search.model`), to read the attention weights of a trained model.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.record import TrialRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "LEARNING_CURVE_PNG",
    "ATTENTION_HEATMAP_PNG",
    "HeatmapRow",
    "attention_heatmap_figure",
    "agg_figure",
    "attention_rows",
    "document_tokens",
    "learning_curve_figure",
    "save_png",
    "upload_trial_plots",
]

LEARNING_CURVE_PNG = "learning_curve.png"
ATTENTION_HEATMAP_PNG = "attention_heatmap.png"
HEATMAP_DOCUMENTS = 3  # validation documents shown in the heatmap
HEATMAP_MAX_TOKENS = 40  # first tokens shown per document (the axis stays readable)
HEATMAP_TOP_LABELS = 3  # label-wise attention: the document's top predicted labels
MAX_HEADS_SHOWN = 8
DPI = 90


def agg_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (inches), outside pyplot's figure registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG (Agg canvas; the figure is not registered with pyplot)."""
    path = Path(path)
    fig.savefig(path, format="png", dpi=DPI)  # the figures call tight_layout; no second 'tight' pass
    return path


# ----------------------------------------------------------------------------------------------------
# learning curve


def learning_curve_figure(epochs: Sequence[Mapping[str, float]], *, title: str | None = None) -> Figure:
    """Loss (training and validation) and validation micro-F1 (at 0.5 and at the tuned threshold) per
    epoch, from the objective's per-epoch records (:attr:`search.record.TrialRecord.epochs`)."""
    if not epochs:
        raise ValueError("no epochs to plot")
    # an epoch's fraction where a long first epoch reported several times
    x = [float(row.get("epoch", i + 1)) for i, row in enumerate(epochs)]

    def series(key: str) -> list[float]:
        return [float(row.get(key, np.nan)) for row in epochs]

    fig = agg_figure(8.0, 3.2)
    loss_ax, f1_ax = fig.subplots(1, 2)
    loss_ax.plot(x, series("loss"), marker="o", label="training loss")
    loss_ax.plot(x, series("val_loss"), marker="o", label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("binary cross-entropy")
    loss_ax.legend(fontsize=8)
    tuned = series("val_micro_f1_tuned")
    f1_ax.plot(x, series("val_micro_f1"), marker="o", label="val micro-F1 @ 0.5")
    f1_ax.plot(x, tuned, marker="o", label="val micro-F1 @ tuned threshold")
    if np.isfinite(tuned).any():
        best = int(np.nanargmax(tuned))
        threshold = float(epochs[best].get("threshold", np.nan))
        f1_ax.scatter([x[best]], [tuned[best]], s=90, facecolors="none", edgecolors="black", zorder=3,
                      label=f"best: {tuned[best]:.4f} @ {threshold:.2f}")
    f1_ax.set_xlabel("epoch")
    f1_ax.set_ylabel("validation micro-F1")
    f1_ax.legend(fontsize=8)
    for ax in (loss_ax, f1_ax):
        ax.set_xticks(sorted({math.ceil(v) for v in x}))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# attention heatmap


@dataclass(frozen=True)
class HeatmapRow:
    """One attention distribution over a document's tokens, and what it is (a label, a head, a layer)."""

    name: str
    weights: np.ndarray  # (T,) over the steps the layer attends to


def document_tokens(ids: np.ndarray, vocabulary: Sequence[str] | None) -> list[str]:
    """The words of a post-padded row of token ids (padding dropped; ids when there is no vocabulary)."""
    ids = np.asarray(ids).ravel()
    real = ids[ids != 0]
    if vocabulary is None:
        return [str(int(i)) for i in real]
    n = len(vocabulary)
    return [vocabulary[int(i)] if 0 <= int(i) < n else str(int(i)) for i in real]


def attention_rows(weights: Mapping[str, np.ndarray], layer_types: Mapping[str, str], document: int,
                   label_names: Sequence[str], probabilities: np.ndarray | None = None,
                   truth: np.ndarray | None = None) -> list[HeatmapRow]:
    """The rows to draw for one document from :func:`search.model.attention_weights`' output.

    Label-wise attention: the document's top predicted labels (``*`` marks a true label); multi-head
    attention: one row per head (attention each token receives); pooling attentions: one row. Layers that
    attend over a single step (the seed's degenerate ``pooled`` attention) are left out.
    """
    rows: list[HeatmapRow] = []
    for name, array in weights.items():
        w = np.asarray(array)[document]  # (rows, T)
        if w.ndim == 1:
            w = w[None, :]
        if w.shape[-1] <= 1:
            continue
        kind = layer_types.get(name, "")
        if kind == "LabelWiseAttention" or (w.shape[0] == len(label_names) and w.shape[0] > MAX_HEADS_SHOWN):
            order = (np.argsort(-probabilities[document])[:HEATMAP_TOP_LABELS] if probabilities is not None
                     else np.arange(min(HEATMAP_TOP_LABELS, w.shape[0])))
            for label in order:
                mark = "*" if truth is not None and truth[document, label] else ""
                shown = label_names[label] if label < len(label_names) else str(label)
                rows.append(HeatmapRow(f"{shown}{mark}", w[label]))
        elif w.shape[0] > 1:
            for head in range(min(w.shape[0], MAX_HEADS_SHOWN)):
                rows.append(HeatmapRow(f"{name} head {head}", w[head]))
        else:
            rows.append(HeatmapRow(name, w[0]))
    return rows


def attention_heatmap_figure(documents: Sequence[Sequence[HeatmapRow]], tokens: Sequence[Sequence[str]], *,
                             titles: Sequence[str] | None = None, title: str | None = None,
                             max_tokens: int = HEATMAP_MAX_TOKENS) -> Figure | None:
    """One panel per document: attention rows (labels / heads / layers) x the document's first tokens,
    the words on the x axis. ``None`` when there is nothing to draw (no non-degenerate attention)."""
    panels = [(rows, toks, i) for i, (rows, toks) in enumerate(zip(documents, tokens, strict=False)) if rows and toks]
    if not panels:
        return None
    widths = [min(len(toks), max_tokens) for _, toks, _ in panels]
    heights = [len(rows) for rows, _, _ in panels]
    fig = agg_figure(max(6.0, 0.26 * max(widths) + 3.0), sum(0.32 * h + 1.3 for h in heights) + 0.6)
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": [h + 2.5 for h in heights]})
    for ax, (rows, toks, index), width in zip(axes[:, 0], panels, widths, strict=True):
        # A 'valid' convolution attends over T - k + 1 windows: step t starts at token t.
        n = min(width, *(len(r.weights) for r in rows))
        grid = np.stack([np.asarray(r.weights[:n], dtype=np.float64) for r in rows])
        image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, interpolation="nearest")
        ax.set_yticks(range(len(rows)), [r.name for r in rows], fontsize=7)
        ax.set_xticks(range(n), toks[:n], rotation=70, ha="right", fontsize=7)
        cut = f" (first {n} of {len(toks)} tokens)" if len(toks) > n else ""
        label = titles[index] if titles and index < len(titles) else f"document {index}"
        ax.set_title(f"{label}{cut}", fontsize=8, loc="left")
        fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# the trial's artifacts


def _heatmap_for_model(model: Any, dataset: Any, title: str) -> Figure | None:
    from search.model import attention_weights

    x_valid = np.asarray(dataset.x_valid)
    lengths = (x_valid != 0).sum(axis=1)
    chosen = [i for i in range(len(x_valid)) if lengths[i] >= 5][:HEATMAP_DOCUMENTS] or list(range(min(
        HEATMAP_DOCUMENTS, len(x_valid))))
    if not chosen:
        return None
    x = x_valid[chosen]
    weights = attention_weights(model, x)
    if not weights:
        return None
    layer_types = {name: type(model.get_layer(name)).__name__ for name in weights}
    probabilities = np.asarray(model(x, training=False))  # a direct call: no predict function to trace
    truth = np.asarray(dataset.y_valid)[chosen]
    label_names = list(dataset.label_names)
    rows = [attention_rows(weights, layer_types, d, label_names, probabilities, truth) for d in range(len(chosen))]
    tokens = [document_tokens(x[d], dataset.vocabulary) for d in range(len(chosen))]
    titles = [f"validation document {i}" for i in chosen]
    return attention_heatmap_figure(rows, tokens, titles=titles, title=title)


def upload_trial_plots(trial: Any, artifact_store: Any, history: Sequence[Mapping[str, float]],
                       model: Any | None = None, dataset: Any | None = None) -> dict[str, str]:
    """Upload the learning curve (and, for a model with attention, the heatmap) as artifacts of ``trial``.

    Returns ``{file name: artifact id}``. ``trial`` is a live :class:`optuna.Trial` (what the objective
    has); the dashboard lists the PNGs on the trial's page. The learning curve is uploaded before the
    heatmap is computed, so an error reading the attention (raised) never costs the curve.
    """
    from optuna.artifacts import upload_artifact

    position = TrialRecord.from_trial(trial).attention_position  # recorded when the model was built
    label = f"trial {trial.number}" + (f" ({position})" if position else "")
    uploaded: dict[str, str] = {}

    def upload(name: str, fig: Figure | None, folder: str) -> None:
        if fig is not None:
            path = save_png(fig, Path(folder) / name)
            uploaded[name] = upload_artifact(artifact_store=artifact_store, file_path=str(path),
                                             study_or_trial=trial, mimetype="image/png")

    with tempfile.TemporaryDirectory() as tmp:
        if history:
            upload(LEARNING_CURVE_PNG, learning_curve_figure(history, title=f"{label}: learning curve"), tmp)
        if model is not None and dataset is not None:
            title = f"{label}: attention weights (darker = less weight; * = true label)"
            upload(ATTENTION_HEATMAP_PNG, _heatmap_for_model(model, dataset, title), tmp)
    return uploaded
