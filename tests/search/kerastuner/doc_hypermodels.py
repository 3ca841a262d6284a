"""Hypermodels written the way keras-tuner's documentation writes them ("Getting started with KerasTuner"),
adapted only to text: token ids in, one sigmoid per label out. Used unchanged by the bridge's tests.

The tests run them on ``debtags50`` with ``--vocab-size 800 --max-len 16`` (50 labels).
"""
import keras
import keras_tuner
from keras import layers

VOCAB = 800
LABELS = 50


def build_model(hp):
    model = keras.Sequential()
    model.add(keras.Input(shape=(None,), dtype="int32"))
    model.add(layers.Embedding(VOCAB, hp.Int("embedding_dim", min_value=8, max_value=32, step=8)))
    model.add(layers.GlobalAveragePooling1D())
    # Tune the number of layers.
    for i in range(hp.Int("num_layers", 1, 2)):
        model.add(
            layers.Dense(
                # Tune number of units separately.
                units=hp.Int(f"units_{i}", min_value=8, max_value=32, step=8),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(LABELS, activation="sigmoid"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
    )
    return model


class MyHyperModel(keras_tuner.HyperModel):
    """A HyperModel with a conditional model type, a fixed value and a tuned batch size in ``fit``."""

    def build(self, hp):
        inputs = keras.Input(shape=(None,), dtype="int32")
        x = layers.Embedding(VOCAB, hp.Fixed("embedding_dim", 16))(inputs)
        model_type = hp.Choice("model_type", ["mlp", "cnn"])
        with hp.conditional_scope("model_type", ["mlp"]):
            if model_type == "mlp":
                x = layers.GlobalAveragePooling1D()(x)
                x = layers.Dense(hp.Int("mlp_units", 8, 64, step=2, sampling="log"), activation="relu")(x)
        with hp.conditional_scope("model_type", ["cnn"]):
            if model_type == "cnn":
                x = layers.Conv1D(hp.Int("filters", 8, 16, step=8), hp.Choice("kernel_size", [2, 3]),
                                  activation="relu", padding="same")(x)
                x = layers.GlobalMaxPooling1D()(x)
        x = layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1))(x)
        outputs = layers.Dense(LABELS, activation="sigmoid")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, step=10, sampling="log")),
                      loss="binary_crossentropy")
        return model

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)


hypermodel_instance = MyHyperModel()
not_a_hypermodel = 42
