"""Attention diagnostics on demand: weights per layer, entropy, learnt versus uniform attention."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score

from search.model import attention_entropy, attention_weights, build_model, uniform_attention_delta

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")

SEQ_LEN, LABELS = 12, 5


@pytest.fixture(scope="module")
def models():
    from search.model import InputShapes

    keras.utils.set_random_seed(5)
    shapes = InputShapes(seq_len=SEQ_LEN, vocab_size=50, n_labels=LABELS, embedding_dim=8)
    params = {"embedding_mode": "random", "embedding_dim": 8, "rnn_layers": 1, "hidden_units": 4,
              "conv_kernel_sizes": (1, 2), "conv_filters": 4, "num_heads": 2, "attention_units": 6}
    return {position: build_model({**params, "attention_position": position}, shapes).model
            for position in ("none", "embedding", "rnn", "conv", "pooled", "label")}


def test_weights_per_layer_have_one_row_per_label_or_head(models, tiny_data) -> None:
    x, _ = tiny_data
    assert attention_weights(models["none"], x) == {}
    assert set(attention_weights(models["label"], x)) == {"label_attention"}
    assert attention_weights(models["label"], x)["label_attention"].shape == (len(x), LABELS, SEQ_LEN)
    assert attention_weights(models["embedding"], x)["embedding_attention"].shape == (len(x), 2, SEQ_LEN)
    assert attention_weights(models["rnn"], x)["rnn_attention"].shape == (len(x), 2, SEQ_LEN)
    conv = attention_weights(models["conv"], x)
    assert sorted(conv) == ["attention_pool_1", "attention_pool_2"]
    assert all(w.shape == (len(x), 1, SEQ_LEN) for w in conv.values())
    pooled = attention_weights(models["pooled"], x)["pooled_attention"]
    assert pooled.shape == (len(x), 1, 1)
    np.testing.assert_allclose(pooled, 1.0, atol=1e-6)  # one step: weight 1, the seed's identity
    for position in ("embedding", "rnn", "conv", "label"):
        for w in attention_weights(models[position], x).values():
            assert w.dtype == np.float32 and np.all(w >= 0)
            np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)


def test_entropy_is_between_zero_and_uniform(models, tiny_data) -> None:
    x, _ = tiny_data
    assert math.isnan(attention_entropy(models["none"], x))
    assert attention_entropy(models["pooled"], x) == pytest.approx(0.0, abs=1e-6)
    for position in ("embedding", "rnn", "conv", "label"):
        entropy = attention_entropy(models[position], x)
        assert 0.0 < entropy <= math.log(SEQ_LEN) + 1e-6, position


def test_entropy_of_an_untrained_label_attention_is_close_to_uniform_over_the_real_tokens(models, tiny_data) -> None:
    x, _ = tiny_data
    lengths = np.maximum((x != 0).sum(axis=1), 1)
    uniform = float(np.mean(np.log(lengths)))
    entropy = attention_entropy(models["label"], x)
    assert entropy <= uniform + 1e-6
    assert entropy > 0.8 * uniform


@pytest.mark.parametrize("position", ["label", "embedding", "conv", "pooled", "none"])
def test_uniform_attention_delta_restores_the_weights(position, models, tiny_data) -> None:
    x, y = tiny_data
    model = models[position]
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    predictions = model.predict(x, verbose=0)
    result = uniform_attention_delta(model, x, y, threshold=0.5)
    assert set(result) == {"micro_f1", "micro_f1_uniform", "delta", "threshold", "layers"}
    assert 0.0 <= result["micro_f1"] <= 1.0 and 0.0 <= result["micro_f1_uniform"] <= 1.0
    assert result["delta"] == pytest.approx(result["micro_f1"] - result["micro_f1_uniform"])
    expected = f1_score(y.astype(bool), predictions >= 0.5, average="micro", zero_division=0)
    assert result["micro_f1"] == pytest.approx(expected)  # the same micro-F1 as the objective and the report
    assert (result["layers"] == []) is (position == "none")
    for b, a in zip(before, model.weights):
        np.testing.assert_array_equal(b, keras.ops.convert_to_numpy(a))
    np.testing.assert_array_equal(model.predict(x, verbose=0), predictions)
    if position in ("pooled", "none"):
        assert result["delta"] == 0.0  # an identity attention: uniform changes nothing


def test_uniform_attention_really_is_uniform(models, tiny_data) -> None:
    # What uniform_attention_delta does to the score weights makes every distribution uniform.
    x, _ = tiny_data
    model = models["label"]
    layer = model.get_layer("label_attention")
    saved = keras.ops.convert_to_numpy(layer.label_queries)
    layer.label_queries.assign(np.zeros_like(saved))
    try:
        weights = attention_weights(model, x)["label_attention"]
    finally:
        layer.label_queries.assign(saved)
    real = (x != 0)
    real[:, 0] = True
    expected = real / real.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weights, np.broadcast_to(expected[:, None, :], weights.shape), rtol=1e-5)


@pytest.mark.parametrize("position", ["embedding", "label"])
def test_weights_do_not_depend_on_the_batch_size(position, models, tiny_data) -> None:
    x, _ = tiny_data
    whole = attention_weights(models[position], x, batch_size=64)
    in_batches = attention_weights(models[position], x, batch_size=5)
    for name in whole:
        np.testing.assert_allclose(in_batches[name], whole[name], rtol=1e-5, atol=1e-7)
