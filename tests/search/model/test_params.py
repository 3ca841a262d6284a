"""Parameters, presets, shapes and the attention memory check: pure Python, no model is built."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from search.errors import InputError, ModelConfigError
from search.model import (
    ATTENTION_POSITIONS,
    DEFAULT_MEMORY_BUDGET_BYTES,
    DEFAULT_PARAMS,
    PRESETS,
    InputShapes,
    estimate_attention_memory,
    resolve_params,
)
from search.model._memory import check_attention_memory
from search.model._params import check_shapes, parse_param_value

SEED_SHAPES = InputShapes(seq_len=3000, vocab_size=50_000, n_labels=50, embedding_dim=100)


def test_positions_and_defaults_are_the_contract() -> None:
    assert ATTENTION_POSITIONS == ("none", "embedding", "rnn", "conv", "pooled", "label")
    resolved = resolve_params({})
    assert resolved == resolve_params(None)
    assert set(resolved) == set(DEFAULT_PARAMS)
    for key in ("embedding_mode", "embedding_dim", "dropout", "rnn_layers", "bidirectional", "hidden_units",
                "conv_kernel_sizes", "conv_filters", "batch_norm", "learning_rate", "attention_position",
                "num_heads", "batch_size", "mixed_precision", "architecture"):
        assert key in DEFAULT_PARAMS
    assert resolved["conv_kernel_sizes"] == (1, 2, 3, 4, 5)
    assert resolved["attention_position"] == "none"


def test_presets_are_complete_and_resolve_to_themselves() -> None:
    assert set(PRESETS) == {"seed_rcnn", "seed_rcnn_attention", "seed_answer_mha"}
    for name, params in PRESETS.items():
        assert set(params) == set(DEFAULT_PARAMS), name
        assert resolve_params(params) == params
        assert params["preset"] == name
        assert params["mask_padding"] is False  # the seed masks nothing
    assert PRESETS["seed_rcnn_attention"]["attention_position"] == "pooled"
    assert PRESETS["seed_answer_mha"]["architecture"] == "residual_mha"


def test_a_preset_key_is_the_base_and_other_keys_override_it() -> None:
    resolved = resolve_params({"preset": "seed_answer_mha", "batch_size": 2})
    assert resolved["batch_size"] == 2
    assert resolved["key_dim"] == 100 and resolved["kernel_l1"] == 0.1
    with pytest.raises(ModelConfigError) as info:
        resolve_params({"preset": "seed_cnn"})
    assert info.value.field == "preset" and "seed_rcnn" in str(info.value)


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ModelConfigError) as info:
        resolve_params({"hiden_units": 8})
    error = info.value
    assert isinstance(error, InputError)
    assert error.field == "hiden_units"
    assert "did you mean 'hidden_units'" in str(error)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("attention_position", "after_pooling", "one of none, embedding, rnn, conv, pooled, label"),
        ("embedding_mode", "glove", "one of frozen, trainable, random"),
        ("rnn_layers", 3, "an integer in [1, 2]"),
        ("hidden_units", 0, "an integer >= 1"),
        ("hidden_units", 8.0, "an integer >= 1"),
        ("hidden_units", True, "an integer >= 1"),
        ("dropout", 1.0, "a number in [0, 1)"),
        ("learning_rate", 0.0, "a number in (0, 10]"),
        ("learning_rate", float("nan"), "a number in (0, 10]"),
        ("bidirectional", "yes", "true or false"),
        ("conv_kernel_sizes", (), "a non-empty list of integers"),
        ("conv_kernel_sizes", (1, 0), "a non-empty list of integers"),
        ("key_dim", -1, "None or an integer >= 1"),
    ],
)
def test_bad_values_name_the_field_what_was_received_and_what_was_expected(key, value, expected) -> None:
    with pytest.raises(ModelConfigError) as info:
        resolve_params({key: value})
    assert info.value.field == key
    assert expected in str(info.value)
    assert repr(value) in str(info.value)


def test_values_are_normalised() -> None:
    resolved = resolve_params({"conv_kernel_sizes": "1, 3,5", "hidden_units": np.int64(16), "dropout": np.float32(0.25),
                               "batch_norm": np.bool_(True)})
    assert resolved["conv_kernel_sizes"] == (1, 3, 5)
    assert type(resolved["hidden_units"]) is int and resolved["hidden_units"] == 16
    assert type(resolved["dropout"]) is float and type(resolved["batch_norm"]) is bool
    assert resolve_params({"conv_kernel_sizes": [2, 4]})["conv_kernel_sizes"] == (2, 4)


def test_residual_architecture_combinations_are_checked() -> None:
    with pytest.raises(ModelConfigError) as info:
        resolve_params({"preset": "seed_answer_mha", "attention_position": "label"})
    assert info.value.field == "attention_position"
    with pytest.raises(ModelConfigError) as info:
        resolve_params({"preset": "seed_answer_mha", "bidirectional": True})  # 256 features, 128 filters
    assert info.value.field == "conv_filters" and "expected 256" in str(info.value)


def test_pretrained_embedding_needs_a_matching_matrix() -> None:
    params = resolve_params({"embedding_mode": "frozen"})
    with pytest.raises(ModelConfigError) as info:
        check_shapes(params, InputShapes(12, 50, 5))
    assert info.value.field == "embedding_mode" and "embedding_matrix" in str(info.value)
    with pytest.raises(ModelConfigError) as info:
        check_shapes(params, InputShapes(12, 50, 5, 8, np.zeros((49, 8))))
    assert info.value.field == "embedding_matrix" and "(50, dim)" in str(info.value)
    with pytest.raises(ModelConfigError) as info:
        check_shapes(resolve_params({"embedding_dim": 16}), InputShapes(12, 50, 5, 8, np.zeros((50, 8))))
    assert info.value.field == "embedding_dim"
    check_shapes(params, InputShapes(12, 50, 5, 8, np.zeros((50, 8))))
    check_shapes(resolve_params({"embedding_mode": "random"}), InputShapes(12, 50, 5))


def test_shapes_of_a_dataset_take_the_embedding_width_from_its_matrix() -> None:
    from search.data import Dataset
    x, y = np.zeros((4, 12), dtype=np.int32), np.zeros((4, 5), dtype=np.uint8)
    data = Dataset("tiny", "test", x, y, x, y, [f"l{i}" for i in range(5)], "fp", vocabulary=[f"w{i}" for i in range(50)])
    assert InputShapes.of(data) == InputShapes(12, 50, 5, 100)
    assert InputShapes.of(data, embedding_dim=32) == InputShapes(12, 50, 5, 32)
    matrix = np.zeros((50, 8), dtype=np.float32)
    shapes = InputShapes.of(data, matrix, embedding_dim=32)
    assert shapes == InputShapes(12, 50, 5, 8) and shapes.embedding_matrix is matrix
    check_shapes(resolve_params({"embedding_mode": "frozen"}), shapes)


def test_valid_convolutions_longer_than_the_sequence_are_refused() -> None:
    params = resolve_params({"mask_padding": False, "conv_kernel_sizes": (3, 5), "embedding_mode": "random"})
    with pytest.raises(ModelConfigError) as info:
        check_shapes(params, InputShapes(4, 50, 5))
    assert info.value.field == "conv_kernel_sizes"


def test_attention_memory_estimate() -> None:
    seed_answer = PRESETS["seed_answer_mha"]
    assert estimate_attention_memory(seed_answer, SEED_SHAPES) == 64 * 8 * 3000**2 * 4
    assert estimate_attention_memory({**seed_answer, "mixed_precision": True}, SEED_SHAPES) == 64 * 8 * 3000**2 * 2
    assert estimate_attention_memory({"attention_position": "rnn", "num_heads": 2, "batch_size": 4}, SEED_SHAPES) \
        == 4 * 2 * 3000**2 * 4
    for position in ("none", "conv", "pooled", "label"):
        assert estimate_attention_memory({"attention_position": position}, SEED_SHAPES) == 0


def test_the_seed_answer_at_length_3000_and_batch_64_is_refused_with_a_reason() -> None:
    with pytest.raises(ModelConfigError) as info:
        check_attention_memory(PRESETS["seed_answer_mha"], SEED_SHAPES, None)
    message = str(info.value)
    assert "refused before training" in message and "batch_size 64" in message and "8 heads" in message
    assert "17.2 GiB" in message and "budget of 4.0 GiB" in message
    assert check_attention_memory({**PRESETS["seed_answer_mha"], "batch_size": 1}, SEED_SHAPES, None) < \
        DEFAULT_MEMORY_BUDGET_BYTES


def test_parse_param_value_uses_the_parameter_type() -> None:
    assert parse_param_value("hidden_units", "64") == 64
    assert parse_param_value("learning_rate", "3e-4") == 3e-4
    assert parse_param_value("bidirectional", "false") is False
    assert parse_param_value("key_dim", "none") is None
    assert parse_param_value("key_dim", "16") == 16
    assert parse_param_value("attention_position", "label") == "label"
    assert resolve_params({"conv_kernel_sizes": parse_param_value("conv_kernel_sizes", "1,2")})["conv_kernel_sizes"] \
        == (1, 2)
    with pytest.raises(ModelConfigError) as info:
        parse_param_value("hidden_units", "many")
    assert info.value.field == "hidden_units"
    with pytest.raises(ModelConfigError):
        parse_param_value("nope", "1")


def test_params_presets_and_memory_load_without_keras() -> None:
    code = (
        "import sys, search.model as m; "
        "m.resolve_params(m.PRESETS['seed_rcnn']); m.estimate_attention_memory({}, m.InputShapes(10, 10, 2)); "
        "print(sorted(k for k in ('keras', 'tensorflow', 'jax', 'torch') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
