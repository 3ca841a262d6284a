"""A saved model (.keras) reloads and predicts the same, under TensorFlow and, where installed, JAX / PyTorch."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from search.model import attention_weights, build_model, load_model
from search.model._layers import AdditiveAttentionPooling, LabelWiseAttention, RaffelAttention

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*"),
    # Saved before training, the optimizer has no slots yet; keras says so when it reloads. Harmless.
    pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning"),
]

# Every custom layer, multi-head attention with masks, and the masked residual architecture.
SAVED_POSITIONS = {
    "label": {"attention_position": "label"},
    "conv": {"attention_position": "conv"},
    "pooled": {"attention_position": "pooled", "batch_norm": True},
    "embedding": {"attention_position": "embedding"},
    "residual": {"architecture": "residual_mha", "attention_position": "rnn", "bidirectional": False,
                 "conv_kernel_sizes": (1, 3), "batch_norm": True},
}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray], np.ndarray]:
    from search.model import InputShapes

    keras.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(3)
    x = rng.integers(1, 50, size=(6, 12)).astype("int32")
    x[1, 4:] = 0
    x[2, 1:] = 0
    shapes = InputShapes(seq_len=12, vocab_size=50, n_labels=5, embedding_dim=8)
    expected = {}
    for name, overrides in SAVED_POSITIONS.items():
        params = {"embedding_mode": "random", "embedding_dim": 8, "rnn_layers": 1, "hidden_units": 4,
                  "conv_kernel_sizes": (1, 2), "conv_filters": 4, "num_heads": 2, "attention_units": 6, **overrides}
        if params.get("architecture") == "residual_mha":
            params["conv_filters"] = 4
        model = build_model(params, shapes).model
        model.save(folder / f"{name}.keras")
        expected[name] = model.predict(x, verbose=0)
        if name != "residual":
            for layer_name, weights in attention_weights(model, x).items():
                expected[f"{name}/{layer_name}"] = weights
    np.savez(folder / "expected.npz", x=x, **expected)
    return folder, expected, x


@pytest.mark.parametrize("name", list(SAVED_POSITIONS))
def test_reloads_and_predicts_the_same(name, saved_models) -> None:
    folder, expected, x = saved_models
    model = load_model(folder / f"{name}.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected[name], rtol=1e-6, atol=1e-7)
    assert model.loss == "binary_crossentropy"


def test_custom_layers_round_trip_their_config() -> None:
    for layer in (AdditiveAttentionPooling(units=3, name="a"), RaffelAttention(use_bias=False, name="r"),
                  LabelWiseAttention(n_labels=4, units=2, name="l")):
        config = keras.saving.serialize_keras_object(layer)
        assert config["registered_name"].startswith("search>")
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


_OTHER_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from search.model import attention_weights, load_model

    folder = sys.argv[1]
    expected = np.load(folder + "/expected.npz")
    x = expected["x"]
    report = {"backend": keras.backend.backend(), "max_error": {}}
    for name in json.loads(sys.argv[2]):
        model = load_model(f"{folder}/{name}.keras")
        report["max_error"][name] = float(np.abs(model.predict(x, verbose=0) - expected[name]).max())
        if name != "residual":
            for layer_name, weights in attention_weights(model, x).items():
                key = f"{name}/{layer_name}"
                report["max_error"][key] = float(np.abs(weights - expected[key]).max())
        if name == "label":  # and it trains under this backend (one step; compiling more is slow)
            model.fit(x, (expected[name] > 0.5).astype("float32"), batch_size=6, epochs=1, verbose=0)
    print(json.dumps(report))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_reloads_under_another_backend(backend, saved_models) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    folder, _, _ = saved_models
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_BACKEND_SCRIPT, str(folder), json.dumps(list(SAVED_POSITIONS))],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    for key, error in report["max_error"].items():
        assert error < 1e-5, (key, error)
