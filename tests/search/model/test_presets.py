"""The presets rebuild the seed's three models: same trainable / non-trainable parameter counts.

The expected numbers come from the seed's own code (shared/seed/000_e80a508eb1dfe8fc.txt), built here
literally with keras layers at the seed's shapes. Only symbolic construction: no tensor of length 3000 is
ever run. Keras 3 adaptations of the literal code: ``tf.keras.*`` -> ``keras.*``; ``input_length`` (removed)
dropped; the Attention layer's ``K.*`` backend calls -> ``keras.ops``; ``tf.keras.activations.relu`` on a
symbolic tensor -> ``layers.ReLU()``; the answer's ``inputs`` (already embedded, "(batch, sequence,
embedding dims)") is the question's frozen embedding of the token ids.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from search.model import PRESETS, InputShapes, build_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")

maxlen = 3000
max_features = 50000
embedding_dims = 100


class SeedAttention(layers.Layer):
    """The seed's Attention layer: weights W (features,), b (steps,)."""

    def build(self, input_shape):
        assert len(input_shape) == 3
        self.W = self.add_weight(shape=(input_shape[-1],), initializer="glorot_uniform", name=f"{self.name}_W")
        self.b = self.add_weight(shape=(input_shape[1],), initializer="zeros", name=f"{self.name}_b")

    def call(self, x):
        eij = ops.squeeze(ops.matmul(x, ops.expand_dims(self.W, -1)), -1) + self.b
        a = ops.exp(ops.tanh(eij))
        a = a / (ops.sum(a, axis=1, keepdims=True) + keras.config.epsilon())
        return ops.sum(x * ops.expand_dims(a, -1), axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape[0], input_shape[-1]


def _seed_rcnn_trunk(embedding_matrix):
    inputs = keras.Input(shape=(maxlen,), dtype="int32")
    x = layers.Embedding(max_features, embedding_dims, weights=[embedding_matrix], trainable=False)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Bidirectional(layers.LSTM(128, return_sequences=True, recurrent_activation="sigmoid"))(x)
    b = layers.Bidirectional(layers.LSTM(128, return_sequences=True, recurrent_activation="sigmoid"))(x)
    pooled = []
    for k in (1, 2, 3, 4, 5):
        c = layers.Conv1D(128, k, activation="relu")(b)
        pooled += [layers.GlobalAveragePooling1D()(c), layers.GlobalMaxPooling1D()(c)]
    concat = layers.concatenate(pooled)
    return inputs, concat


def seed_model_1(embedding_matrix):
    inputs, concat = _seed_rcnn_trunk(embedding_matrix)
    outputs = layers.Dense(50, activation="sigmoid")(concat)
    return keras.Model(inputs, outputs)


def seed_model_2(embedding_matrix):
    inputs, concat = _seed_rcnn_trunk(embedding_matrix)
    reshape_layer = layers.Reshape([1, 1280])(concat)
    att = SeedAttention()(reshape_layer)
    batch = layers.BatchNormalization()(att)
    outputs = layers.Dense(50, activation="sigmoid")(batch)
    return keras.Model(inputs, outputs)


def seed_model_3(embedding_matrix):
    token_ids = keras.Input(shape=(maxlen,), dtype="int32")
    inputs = layers.Embedding(max_features, embedding_dims, weights=[embedding_matrix], trainable=False)(token_ids)
    x = layers.MultiHeadAttention(8, key_dim=100, dropout=0.1, kernel_regularizer=keras.regularizers.l1(0.1))(
        inputs, inputs)
    x = layers.LSTM(128, return_sequences=True, recurrent_activation="sigmoid")(x)
    b = layers.LSTM(128, return_sequences=True, recurrent_activation="sigmoid")(x)

    def block(source):
        c = layers.Conv1D(128, 1)(source)
        c = layers.BatchNormalization()(c)
        return layers.ReLU()(c)

    z1 = layers.add([b, block(b)])
    z2 = layers.add([z1, block(z1)])
    z3 = layers.add([z2, block(z2)])
    z4 = layers.add([z3, block(z3)])
    z5 = layers.add([z4, block(z1)])  # c5 = Conv1D(128, 1)(z1), as in the answer
    z5 = layers.MaxPooling1D()(z5)
    z5 = layers.GlobalAveragePooling1D()(z5)
    z5 = layers.Dropout(0.5)(z5)
    outputs = layers.Dense(50, activation="sigmoid", kernel_regularizer=keras.regularizers.l1(0.1))(z5)
    return keras.Model(token_ids, outputs)


def _counts(model: keras.Model) -> tuple[int, int]:
    return (sum(int(np.prod(w.shape)) for w in model.trainable_weights),
            sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))


@pytest.fixture(scope="module")
def seed_matrix() -> np.ndarray:
    return np.zeros((max_features, embedding_dims), dtype="float32")


@pytest.mark.parametrize(
    ("preset", "seed_code", "expected"),
    [
        ("seed_rcnn", seed_model_1, (1_184_946, 5_000_000)),
        ("seed_rcnn_attention", seed_model_2, (1_188_787, 5_002_560)),
        ("seed_answer_mha", seed_model_3, (661_622, 5_001_280)),
    ],
)
def test_presets_have_the_seed_models_parameter_counts(preset, seed_code, expected, seed_matrix) -> None:
    seed = _counts(seed_code(seed_matrix))
    assert seed == expected  # the seed's code itself, as hand-checked
    shapes = InputShapes(seq_len=maxlen, vocab_size=max_features, n_labels=50, embedding_dim=embedding_dims,
                         embedding_matrix=seed_matrix)
    built = build_model(PRESETS[preset], shapes, memory_budget_bytes=10**12)  # the answer's MHA needs 18 GB
    assert _counts(built.model) == seed
    assert (built.diagnostics["trainable_params"], built.diagnostics["non_trainable_params"]) == seed


def test_the_seed_answer_preset_has_the_seed_layers(seed_matrix) -> None:
    shapes = InputShapes(maxlen, max_features, 50, embedding_dims, seed_matrix)
    model = build_model(PRESETS["seed_answer_mha"], shapes, memory_budget_bytes=10**12).model
    mha = model.get_layer("embedding_attention")
    assert (mha.num_heads, mha.key_dim, mha.dropout) == (8, 100, 0.1)
    assert len(model.losses) == 5  # L1(0.1) on query, key, value and output kernels of the MHA + the output Dense
    assert [layer.kernel_size for layer in model.layers if isinstance(layer, layers.Conv1D)] == [(1,)] * 5
    # The fifth block reads z1 (block 1's residual sum), not z4.
    fifth = model.get_layer("block_5_conv")
    assert fifth.input is model.get_layer("block_1_residual").output
    assert model.get_layer("max_pool").output.shape == (None, 1500, 128)
