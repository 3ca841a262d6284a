"""Length-aware batches: every document once an epoch, batches cut to their longest document, and a
model that takes any length predicts the same whatever padding follows a text."""
from __future__ import annotations

import numpy as np
import pytest

from search.model import (
    PRESETS,
    InputShapes,
    any_length,
    build_model,
    load_model,
    predict_probabilities,
    recorded_any_length,
    resolve_params,
)
from search.model._batching import (
    LENGTH_MULTIPLE,
    LengthBatches,
    _spec_first,
    backend_input,
    document_lengths,
    predict_by_length,
)

WIDTH = 40


def _ids(n: int, seed: int = 0) -> np.ndarray:
    """Post-padded token ids with lengths 1..WIDTH (ids 2..49; 0 is padding)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, WIDTH), dtype=np.int32)
    for row, length in enumerate(rng.integers(1, WIDTH + 1, size=n)):
        x[row, :length] = rng.integers(2, 50, size=length)
    return x


def test_document_lengths() -> None:
    x = np.array([[5, 6, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4], [7, 0, 3, 0]], dtype=np.int32)
    assert document_lengths(x).tolist() == [2, 1, 4, 3]  # an empty row keeps its first step


def test_every_document_once_an_epoch_and_each_batch_cut_to_its_longest() -> None:
    x, y = _ids(1000), np.arange(1000)[:, None]
    batches = LengthBatches(x, y, batch_size=16, seed=3)
    lengths = document_lengths(x)
    for _epoch in range(2):
        seen = []
        for i in range(len(batches)):
            xb, yb = batches[i]
            rows = yb[:, 0]
            seen += rows.tolist()
            longest = int(lengths[rows].max())
            assert xb.shape[1] == min(WIDTH, -(-longest // LENGTH_MULTIPLE) * LENGTH_MULTIPLE)
            np.testing.assert_array_equal(xb, x[rows, : xb.shape[1]])
            assert not x[rows, xb.shape[1]:].any(), "only padding is cut"
        assert sorted(seen) == list(range(1000))
        batches.on_epoch_end()
    computed, padded = batches.padded_steps()
    assert computed < 0.8 * padded  # similar lengths together: the cut is deep


def test_the_order_depends_on_the_seed_and_the_epoch() -> None:
    x, y = _ids(300), np.arange(300)[:, None]
    first = [LengthBatches(x, y, 8, seed=1)[i][1][:, 0].tolist() for i in range(3)]
    again = [LengthBatches(x, y, 8, seed=1)[i][1][:, 0].tolist() for i in range(3)]
    other = [LengthBatches(x, y, 8, seed=2)[i][1][:, 0].tolist() for i in range(3)]
    assert first == again and first != other
    batches = LengthBatches(x, y, 8, seed=1)
    batches.on_epoch_end()
    assert [batches[i][1][:, 0].tolist() for i in range(3)] != first


def test_refuses_mismatched_or_empty_data() -> None:
    with pytest.raises(ValueError, match="expected the same"):
        LengthBatches(_ids(4), np.zeros((3, 1)), 2, 0)


def test_predict_by_length_keeps_the_order() -> None:
    import keras

    tokens = keras.Input(shape=(None,), dtype="int32")
    counted = keras.layers.Lambda(lambda t: keras.ops.sum(keras.ops.cast(keras.ops.not_equal(t, 0), "float32"),
                                                          axis=1, keepdims=True))(tokens)
    model = keras.Model(tokens, counted)  # each row's number of tokens
    x = _ids(101)
    out = predict_by_length(model, x, batch_size=7)
    np.testing.assert_array_equal(out[:, 0], document_lengths(x))


class _RecordedBatches(LengthBatches):
    """LengthBatches that record which (epoch, batch) each request was for."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__(x, y, batch_size, seed)
        self.served: list[tuple[int, int]] = []

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        self.served.append((self.epoch, index))
        return super().__getitem__(index)


def test_fit_sees_every_batch_of_a_new_plan_each_epoch_through_backend_input() -> None:
    import keras

    x, y = _ids(200), np.zeros((200, 3), dtype="float32")
    batches = _RecordedBatches(x, y, batch_size=16, seed=0)
    pipeline = backend_input(batches)
    seen: list[int] = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            seen.append(batch)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            # the report points are placed from this: Keras must know an epoch's steps up front
            assert self.params["steps"] == len(batches)

    tokens = keras.Input(shape=(None,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4)(tokens))
    model = keras.Model(tokens, keras.layers.Dense(3, activation="sigmoid")(pooled))
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.fit(pipeline, epochs=3, verbose=0, callbacks=[Count()], shuffle=False)
    assert seen == list(range(len(batches))) * 3
    # every batch of each epoch's own plan (a new plan each epoch, as Keras' PyDataset handling gives)
    assert {epoch for epoch, _ in batches.served} == {0, 1, 2}
    for epoch in range(3):
        assert {i for e, i in batches.served if e == epoch} == set(range(len(batches)))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        assert isinstance(pipeline, tf.data.Dataset)
        assert pipeline.options().autotune.enabled is False  # the autotuner's tear-down is what this avoids
        assert int(pipeline.cardinality()) == len(batches)
    else:
        assert pipeline is batches


def test_the_first_two_batches_fix_no_dimension_that_varies() -> None:
    """Keras takes a PyDataset's input signature from its first two batches (TensorFlow): a smaller batch
    and a batch of another width come first, so neither the batch size nor the length is fixed."""
    batches = [np.arange(4), np.arange(4, 8), np.arange(8, 10), np.arange(10, 14)]
    ordered = _spec_first(batches, [8, 8, 16, 24])
    assert [len(b) for b in ordered[:2]] == [2, 4] and ordered[1] is batches[0]
    assert sorted(map(tuple, ordered)) == sorted(map(tuple, batches))
    same = _spec_first(batches[:2], [8, 8])
    assert [tuple(b) for b in same] == [tuple(b) for b in batches[:2]]


@pytest.mark.parametrize("position", ["none", "label", "conv", "rnn", "embedding", "pooled"])
def test_a_masked_rcnn_predicts_the_same_in_length_batches(position: str) -> None:
    params = {"attention_position": position, "hidden_units": 8, "conv_filters": 8, "embedding_mode": "random",
              "embedding_dim": 8, "num_heads": 2}
    built = build_model(params, InputShapes(seq_len=WIDTH, vocab_size=50, n_labels=5))
    assert built.any_length and any_length(built.params)
    x = _ids(60, seed=1)
    full = np.asarray(built.model.predict(x, batch_size=16, verbose=0))
    cut = predict_probabilities(built.model, x, 16, any_length=True)
    np.testing.assert_allclose(cut, full, atol=1e-5)


def test_the_seed_models_keep_their_fixed_length() -> None:
    for name in ("seed_rcnn", "seed_answer_mha"):
        assert not any_length(resolve_params(PRESETS[name]))
        params = dict(PRESETS[name]) | {"hidden_units": 8, "conv_filters": 8, "embedding_mode": "random",
                                        "embedding_dim": 8, "num_heads": 2}
        built = build_model(params, InputShapes(seq_len=WIDTH, vocab_size=50, n_labels=5))
        assert not recorded_any_length(built.diagnostics)


def test_a_reloaded_model_is_predicted_in_length_batches_as_its_record_says(tmp_path) -> None:
    """The report and finalize read models back from a study: the trial's build diagnostics say whether
    the model takes any length, and its probabilities in length batches are those of the padded predict.
    Diagnostics that do not say so (a keras-tuner hypermodel's) mean padded."""
    params = {"attention_position": "label", "hidden_units": 8, "conv_filters": 8, "embedding_mode": "random",
              "embedding_dim": 8}
    built = build_model(params, InputShapes(seq_len=WIDTH, vocab_size=50, n_labels=5))
    assert recorded_any_length(built.diagnostics)
    assert not recorded_any_length({}) and not recorded_any_length(None)
    assert not recorded_any_length({"attention_position": "none", "hypermodel": "doc_hypermodels:build"})
    path = tmp_path / "model.keras"
    built.model.save(path)
    model = load_model(path)
    x = _ids(40, seed=2)
    full = np.asarray(model.predict(x, batch_size=16, verbose=0))
    cut = predict_probabilities(model, x, 16, any_length=recorded_any_length(built.diagnostics))
    np.testing.assert_allclose(cut, full, atol=1e-5)


def test_everything_that_reads_a_trial_model_back_predicts_as_its_record_says(tmp_path, monkeypatch) -> None:
    """``predict_as_trial`` (the report, the final models' scoring, the ensemble's selection): in length
    batches for a trial whose diagnostics say its model takes any length, padded for one whose do not
    and for a model of no trial."""
    import optuna

    import search.model
    from search.record import TrialRecord
    from search.report._evaluate import predict_as_trial

    built = build_model({"attention_position": "label", "hidden_units": 8, "conv_filters": 8,
                         "embedding_mode": "random", "embedding_dim": 8},
                        InputShapes(seq_len=WIDTH, vocab_size=50, n_labels=5))
    asked: list[bool] = []

    def spy(model, x, batch_size, *, any_length=False):
        asked.append(any_length)
        return predict_probabilities(model, x, batch_size, any_length=any_length)

    monkeypatch.setattr(search.model, "predict_probabilities", spy)
    study = optuna.create_study()
    masked, other = study.ask(), study.ask()
    TrialRecord(diagnostics=built.diagnostics).write(masked)
    TrialRecord(diagnostics={"attention_position": "none", "hypermodel": "doc_hypermodels:build"}).write(other)
    x = _ids(40, seed=3)
    full = np.asarray(built.model.predict(x, batch_size=16, verbose=0))
    for trial in (masked, other, None):
        np.testing.assert_allclose(predict_as_trial(built.model, x, trial), full, atol=1e-5)
    assert asked == [True, False, False]
