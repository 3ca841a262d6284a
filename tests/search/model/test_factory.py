"""The factory builds every attention position, trains it, masks padding, and refuses what cannot fit."""
from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from search.errors import ModelConfigError
from search.model import ATTENTION_POSITIONS, PRESETS, InputShapes, attention_weights, build_model
from search.model import _factory

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")

SEQ_LEN, VOCAB, LABELS, DIM = 12, 50, 5, 8


@pytest.mark.parametrize("position", ATTENTION_POSITIONS)
def test_every_position_builds_and_trains_one_step(position, tiny_params_factory, tiny_shapes, tiny_data) -> None:
    keras.utils.set_random_seed(1)
    x, y = tiny_data
    built = build_model(tiny_params_factory(attention_position=position), tiny_shapes)
    model = built.model
    # masked padding: token ids of any length (batches cut to their longest document)
    assert model.input_shape == (None, None) and built.any_length
    assert model.output_shape == (None, LABELS)
    assert model.get_layer("output").dtype_policy.compute_dtype == "float32"
    assert model.loss == "binary_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)

    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(b, keras.ops.convert_to_numpy(a)) for b, a in zip(before, model.trainable_weights))

    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (len(x), LABELS) and probabilities.dtype == np.float32
    assert np.all((probabilities > 0) & (probabilities < 1))

    d = built.diagnostics
    assert d["attention_position"] == position
    assert d["degenerate_attention"] is (position == "pooled")
    assert d["trainable_params"] == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert d["cudnn_eligible"] is True
    assert d["activation_memory_bytes_per_batch"] > 0
    assert (d["attention_memory_bytes"] > 0) is (position in ("embedding", "rnn"))


def test_the_seed_answer_architecture_trains_with_and_without_masking(
    tiny_params_factory, tiny_shapes, tiny_data
) -> None:
    x, y = tiny_data
    for mask_padding in (False, True):
        params = tiny_params_factory(architecture="residual_mha", attention_position="embedding", bidirectional=False,
                                     conv_kernel_sizes=(1, 1, 3), batch_norm=True, kernel_l1=0.01,
                                     mask_padding=mask_padding)
        model = build_model(params, tiny_shapes).model
        assert np.isfinite(model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history["loss"][0])
        assert model.predict(x, verbose=0).shape == (len(x), LABELS)
        assert len(model.losses) == 5  # L1 on the four attention kernels and the output kernel


def test_weight_decay_compiles_adamw_and_zero_keeps_plain_adam(tiny_params_factory, tiny_shapes, tiny_data) -> None:
    x, y = tiny_data
    plain = build_model(tiny_params_factory(), tiny_shapes).model
    assert type(plain.optimizer) is keras.optimizers.Adam
    decayed = build_model(tiny_params_factory(weight_decay=0.01, learning_rate=0.002), tiny_shapes).model
    assert isinstance(decayed.optimizer, keras.optimizers.AdamW)
    assert decayed.optimizer.weight_decay == pytest.approx(0.01)
    assert np.isfinite(decayed.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history["loss"][0])
    with pytest.raises(ModelConfigError) as info:
        build_model(tiny_params_factory(weight_decay=-0.1), tiny_shapes)
    assert info.value.field == "weight_decay" and "got -0.1" in str(info.value)


def test_lstms_stay_cudnn_eligible(tiny_params_factory, tiny_shapes) -> None:
    model = build_model(tiny_params_factory(rnn_layers=2, bidirectional=True), tiny_shapes).model
    lstms = [layer.forward_layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    lstms += [layer.backward_layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(lstms) == 4
    for lstm in lstms:
        assert lstm.activation.__name__ == "tanh" and lstm.recurrent_activation.__name__ == "sigmoid"
        assert lstm.use_bias and lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.use_cudnn == "auto"


def test_mixed_precision_keeps_the_output_in_float32(tiny_params_factory, tiny_shapes, tiny_data) -> None:
    x, y = tiny_data
    built = build_model(tiny_params_factory(attention_position="label", mixed_precision=True), tiny_shapes)
    model = built.model
    assert built.diagnostics["dtype_policy"] == "mixed_float16"
    assert model.get_layer("label_attention").compute_dtype == "float16"
    assert model.get_layer("rnn_1").compute_dtype == "float16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    assert model.predict(x[:4], verbose=0).dtype == np.float32


def test_embedding_modes(tiny_params_factory) -> None:
    matrix = np.random.default_rng(0).normal(size=(VOCAB, DIM)).astype("float32")
    shapes = InputShapes(SEQ_LEN, VOCAB, LABELS, DIM, matrix)
    frozen = build_model(tiny_params_factory(embedding_mode="frozen", embedding_dim=None), shapes).model
    embedding = frozen.get_layer("embedding")
    assert not embedding.trainable
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(embedding.embeddings), matrix)
    trainable = build_model(tiny_params_factory(embedding_mode="trainable", embedding_dim=None), shapes).model
    assert trainable.get_layer("embedding").trainable
    random = build_model(tiny_params_factory(embedding_mode="random", embedding_dim=6), shapes)
    assert random.diagnostics["embedding_dim"] == 6


@pytest.mark.parametrize("position", ["label", "conv", "embedding", "rnn"])
def test_padding_gets_no_attention(position, tiny_params_factory, tiny_shapes, tiny_data) -> None:
    x, _ = tiny_data
    model = build_model(tiny_params_factory(attention_position=position), tiny_shapes).model
    padded = x == 0
    padded[:, 0] = False  # the first step is kept even in an empty document
    assert padded.any()
    weights = attention_weights(model, x)
    assert weights
    for name, w in weights.items():
        assert w.shape[0] == len(x) and w.shape[-1] == SEQ_LEN, name
        at_padding = np.broadcast_to(padded[:, None, :], w.shape)
        assert np.all(w[at_padding] == 0.0), name
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("position", ["none", "embedding", "rnn", "conv", "label"])
def test_predictions_do_not_depend_on_the_amount_of_padding(position, tiny_params_factory, tiny_data) -> None:
    # The same weights at two sequence lengths: padding the same texts further must not change anything.
    x, _ = tiny_data
    params = tiny_params_factory(attention_position=position, rnn_layers=2, batch_norm=True)
    short = build_model(params, InputShapes(SEQ_LEN, VOCAB, LABELS, DIM)).model
    long_ = build_model(params, InputShapes(SEQ_LEN + 7, VOCAB, LABELS, DIM)).model
    long_.set_weights(short.get_weights())
    x_long = np.pad(x, ((0, 0), (0, 7)))
    np.testing.assert_allclose(long_.predict(x_long, verbose=0), short.predict(x, verbose=0), rtol=1e-4, atol=1e-6)


def test_an_empty_document_is_predicted_without_nan(tiny_params_factory, tiny_shapes) -> None:
    model = build_model(tiny_params_factory(attention_position="label"), tiny_shapes).model
    assert np.all(np.isfinite(model.predict(np.zeros((2, SEQ_LEN), "int32"), verbose=0)))


def test_the_seed_attention_is_reported_degenerate_and_is_an_identity(caplog) -> None:
    # The seed preset itself (RCNN + attention on Reshape([1, 1280])), at tiny sequence and vocabulary sizes.
    matrix = np.random.default_rng(0).normal(size=(VOCAB, 100)).astype("float32")
    shapes = InputShapes(SEQ_LEN, VOCAB, LABELS, 100, matrix)
    with caplog.at_level(logging.WARNING, logger="search.model"):
        built = build_model(PRESETS["seed_rcnn_attention"], shapes)
    d = built.diagnostics
    assert d["degenerate_attention"] is True
    assert "pooled_attention" in d["degenerate_reason"] and "1 step" in d["degenerate_reason"]
    assert d["attention_layers"] == [{"name": "pooled_attention", "type": "RaffelAttention", "steps": 1,
                                      "degenerate": True}]
    records = [r for r in caplog.records if r.name == "search.model"]
    assert len(records) == 1 and "degenerate attention" in records[0].getMessage()

    layer = built.model.get_layer("pooled_attention")
    probe = keras.Model(built.model.inputs, [layer.input, layer.output])
    x = np.random.default_rng(1).integers(1, VOCAB, size=(4, SEQ_LEN)).astype("int32")
    inputs, outputs = probe.predict(x, verbose=0)
    assert inputs.shape == (4, 1, 1280)
    np.testing.assert_allclose(outputs, inputs[:, 0, :], rtol=1e-6, atol=1e-7)


def test_attention_over_many_steps_is_not_degenerate(tiny_params_factory, tiny_shapes, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="search.model"):
        d = build_model(tiny_params_factory(attention_position="conv"), tiny_shapes).diagnostics
    assert d["degenerate_attention"] is False and d["degenerate_reason"] is None
    assert [entry["steps"] for entry in d["attention_layers"]] == [SEQ_LEN] * 3
    assert not [r for r in caplog.records if r.name == "search.model"]


def test_a_configuration_over_the_memory_budget_is_refused_before_building(monkeypatch) -> None:
    def must_not_build(self):
        raise AssertionError("the model was built")

    monkeypatch.setattr(_factory._Graph, "build", must_not_build)
    shapes = InputShapes(3000, 50_000, 50, 100, np.zeros((50_000, 100), "float32"))
    with pytest.raises(ModelConfigError) as info:
        build_model(PRESETS["seed_answer_mha"], shapes)
    assert info.value.field == "attention_position" and "refused before training" in str(info.value)
    with pytest.raises(ModelConfigError):
        build_model({"attention_position": "rnn", "embedding_mode": "random", "batch_size": 2, "num_heads": 1},
                    InputShapes(1000, 100, 5), memory_budget_bytes=7_999_999)


def test_bad_params_are_refused(tiny_shapes) -> None:
    with pytest.raises(ModelConfigError) as info:
        build_model({"attention_position": "everywhere"}, tiny_shapes)
    assert info.value.field == "attention_position"
    with pytest.raises(ModelConfigError) as info:
        build_model({"embedding_mode": "frozen"}, tiny_shapes)  # no matrix given
    assert info.value.field == "embedding_mode"
