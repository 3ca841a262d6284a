"""Per-trial plots (learning curve, attention heatmap) and the best trial's note."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

from search.notes import best_trial_note, save_trial_note
from search.plots import (
    ATTENTION_HEATMAP_PNG,
    LEARNING_CURVE_PNG,
    HeatmapRow,
    attention_heatmap_figure,
    attention_rows,
    document_tokens,
    learning_curve_figure,
    save_png,
    upload_trial_plots,
)
from search.record import TrialRecord

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCHS = [
    {"epoch": 1, "loss": 0.69, "val_loss": 0.41, "val_micro_f1": 0.30, "val_micro_f1_tuned": 0.33, "threshold": 0.3,
     "seconds": 2.0},
    {"epoch": 2, "loss": 0.35, "val_loss": 0.30, "val_micro_f1": 0.41, "val_micro_f1_tuned": 0.45, "threshold": 0.35,
     "seconds": 1.5},
]


def test_learning_curve_png(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = learning_curve_figure(EPOCHS, title="trial 3 (label)")
    path = save_png(fig, tmp_path / LEARNING_CURVE_PNG)
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000
    assert plt.get_fignums() == before  # nothing registered with pyplot
    f1_axes = fig.axes[1]
    assert [t.get_text() for t in f1_axes.get_legend().get_texts()][-1] == "best: 0.4500 @ 0.35"
    with pytest.raises(ValueError):
        learning_curve_figure([])


def test_document_tokens() -> None:
    vocabulary = ["<pad>", "<oov>", "fast", "editor"]
    assert document_tokens(np.array([2, 1, 3, 0, 0]), vocabulary) == ["fast", "<oov>", "editor"]
    assert document_tokens(np.array([2, 9, 0]), None) == ["2", "9"]


def test_attention_rows_by_layer_kind() -> None:
    labels = [f"l{i}" for i in range(10)]
    prob = np.linspace(0, 1, 10)[None, :]  # top predicted: l9, l8, l7
    truth = np.zeros((1, 10), dtype=bool)
    truth[0, 8] = True
    weights = {
        "label_attention": np.full((1, 10, 5), 0.2),
        "rnn_attention": np.full((1, 4, 5), 0.2),
        "conv_attention_1": np.full((1, 1, 4), 0.25),
        "pooled_attention": np.ones((1, 1, 1)),  # one step: degenerate, left out
    }
    types = {"label_attention": "LabelWiseAttention", "rnn_attention": "MultiHeadAttention"}
    rows = attention_rows(weights, types, 0, labels, prob, truth)
    assert [r.name for r in rows] == ["l9", "l8*", "l7", "rnn_attention head 0", "rnn_attention head 1",
                                      "rnn_attention head 2", "rnn_attention head 3", "conv_attention_1"]


def test_heatmap_has_the_words_on_the_axis(tmp_path: Path) -> None:
    tokens = [["a", "fast", "text", "editor", "for", "the", "console"], ["tiny", "game"]]
    rows = [[HeatmapRow("role::program", np.array([0.1, 0.5, 0.1, 0.2, 0.05, 0.05, 0.0, 0.0]))],
            [HeatmapRow("head 0", np.array([0.7, 0.3, 0, 0, 0, 0, 0, 0]))]]
    fig = attention_heatmap_figure(rows, tokens, titles=["doc 0", "doc 1"], max_tokens=5)
    first, second = fig.axes[:2]  # the panels come first, then their colour bars
    assert [t.get_text() for t in first.get_xticklabels()] == tokens[0][:5]
    assert [t.get_text() for t in second.get_xticklabels()] == ["tiny", "game"]
    assert "first 5 of 7 tokens" in first.get_title(loc="left")
    assert save_png(fig, tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC
    assert attention_heatmap_figure([[], []], tokens) is None


def test_upload_for_a_label_attention_model(tmp_path: Path) -> None:
    """The objective's call: both PNGs become artifacts of the running trial."""
    from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta

    from search.model import InputShapes, build_model

    shapes = InputShapes(seq_len=12, vocab_size=30, n_labels=4, embedding_dim=8)
    model = build_model({"attention_position": "label", "hidden_units": 8, "conv_filters": 8,
                         "embedding_mode": "random", "embedding_dim": 8}, shapes).model
    rng = np.random.default_rng(0)
    x = rng.integers(2, 30, size=(6, 12)).astype("int32")
    x[:, 8:] = 0
    dataset = SimpleNamespace(x_valid=x, y_valid=(rng.random((6, 4)) < 0.5).astype("uint8"),
                              label_names=["a", "b", "c", "d"], vocabulary=[f"w{i}" for i in range(30)])
    (tmp_path / "artifacts").mkdir()
    store = FileSystemArtifactStore(str(tmp_path / "artifacts"))
    study = optuna.create_study()
    trial = study.ask({"attention_position": optuna.distributions.CategoricalDistribution(["label", "none"])})
    uploaded = upload_trial_plots(trial, store, EPOCHS, model, dataset)
    assert set(uploaded) == {LEARNING_CURVE_PNG, ATTENTION_HEATMAP_PNG}
    metas = {m.filename: m.mimetype for m in get_all_artifact_meta(trial, storage=study._storage)}
    assert metas == {LEARNING_CURVE_PNG: "image/png", ATTENTION_HEATMAP_PNG: "image/png"}
    for artifact in uploaded.values():
        assert (tmp_path / "artifacts" / artifact).read_bytes()[:8] == PNG_MAGIC


def test_best_trial_note() -> None:
    record = TrialRecord(epochs=EPOCHS, best_epoch=2, threshold=0.35, trainable_params=1234, seed=3,
                         fixed_params={"rnn_layers": 1, "conv_kernel_sizes": [1, 2, 3]},
                         diagnostics={"degenerate_attention": True, "degenerate_reason": "attends over 1 step"},
                         searched_params={"attention_position": "pooled", "learning_rate": 0.00123456})
    body = best_trial_note(study_name="attn", number=5, value=0.45, record=record, complete_before=4)
    assert body.startswith("## Best trial of study `attn` when it finished: trial 5")
    for line in ("| validation micro-F1 at the tuned threshold (the objective) | 0.4500 |", "| tuned threshold | 0.35 |",
                 "| validation micro-F1 at 0.5 | 0.41 |", "| best epoch / epochs run | 2 / 2 |",
                 "| training time | 3.5 s |", "| attention_position | pooled |", "| learning_rate | 0.001235 |",
                 "| conv_kernel_sizes | 1, 2, 3 |", "| degenerate attention | attends over 1 step |"):
        assert line in body, line


def test_note_on_a_finished_trial() -> None:
    from optuna_dashboard import get_note

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    save_trial_note(study, study.trials[1], "**hello**")
    assert get_note(optuna.trial.Trial(study, study.trials[1]._trial_id)) == "**hello**"
