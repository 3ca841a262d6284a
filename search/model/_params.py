"""Model parameters: the defaults, their validation, and the dataset shapes a model is built for.

Pure Python (numpy only): resolving and checking parameters never imports keras, so the launcher, the
search spaces and ``python -m search.model describe`` can refuse a bad configuration cheaply.
"""
from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from search.errors import ModelConfigError

__all__ = [
    "any_length",
    "recorded_any_length",
    "ARCHITECTURES",
    "ATTENTION_POSITIONS",
    "DEFAULT_PARAMS",
    "EMBEDDING_MODES",
    "InputShapes",
    "check_shapes",
    "effective_embedding_dim",
    "parse_param_value",
    "resolve_params",
    "rnn_output_dim",
]

ATTENTION_POSITIONS: tuple[str, ...] = ("none", "embedding", "rnn", "conv", "pooled", "label")
ARCHITECTURES: tuple[str, ...] = ("rcnn", "residual_mha")
EMBEDDING_MODES: tuple[str, ...] = ("frozen", "trainable", "random")

#: Positions the ``residual_mha`` architecture (the seed's answer) can take.
RESIDUAL_MHA_POSITIONS: tuple[str, ...] = ("none", "embedding", "rnn")

_SOURCE = "model params"

#: Every parameter with its default. The defaults are the seed's RCNN (question, model 1), except that
#: padding is masked (``mask_padding``); the presets switch masking off to reproduce the seed exactly.
DEFAULT_PARAMS: dict[str, Any] = {
    # A preset name (see search.model.PRESETS): its values replace these defaults, the keys given beside
    # it override them. None: start from these defaults.
    "preset": None,
    # "rcnn": embedding -> (Bi)LSTM -> Conv1D per kernel size -> average + max pooling -> Dense.
    # "residual_mha": the seed's answer: LSTM -> residual 1-wide conv blocks -> MaxPooling -> GAP -> Dense.
    "architecture": "rcnn",
    "embedding_mode": "frozen",  # "frozen" | "trainable" need InputShapes.embedding_matrix
    "embedding_dim": None,  # None: InputShapes.embedding_dim (the matrix's width when one is given)
    "dropout": 0.5,  # rcnn: after the embedding; residual_mha: before the output layer (as the seed)
    "rnn_layers": 2,
    "bidirectional": True,
    "hidden_units": 128,
    "conv_kernel_sizes": (1, 2, 3, 4, 5),
    "conv_filters": 128,
    "batch_norm": False,  # rcnn: on the pooled features (or label vectors); residual_mha: in each block
    "learning_rate": 1e-3,
    # Decoupled weight decay (AdamW) when > 0; 0: plain Adam, the seed's optimiser.
    "weight_decay": 0.0,
    # The learning rate of epoch e (from 0) is learning_rate * lr_decay ** e; 1: constant, the seed's.
    # Per epoch rather than per step so that a refit for a trial's best number of epochs, on more
    # documents, follows the trial's schedule.
    "lr_decay": 1.0,
    "attention_position": "none",
    "num_heads": 8,
    "key_dim": None,  # None: max(1, attended features // num_heads)
    "attention_dropout": 0.1,  # dropout on multi-head attention probabilities
    "attention_units": None,  # additive / label-wise attention hidden size; None: attended features
    "kernel_l1": 0.0,  # L1 on the multi-head attention kernels and the output kernel (seed answer: 0.1)
    "mask_padding": True,  # post-padding with id 0 is masked everywhere; False reproduces the seed
    "batch_size": 64,  # not part of the model: used by the attention memory check
    "mixed_precision": False,  # mixed_float16 layers, float32 output, loss scaling
}


# ----------------------------------------------------------------------------------------------------
# value checkers: each takes (key, value) and returns the normalised value or raises ModelConfigError


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _fail(key: str, value: Any, expected: str) -> ModelConfigError:
    return ModelConfigError(f"got {_describe(value)}; expected {expected}", source=_SOURCE, field=key)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _int_in(low: int, high: int | None = None) -> Callable[[str, Any], int]:
    expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def check(key: str, value: Any) -> int:
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise _fail(key, value, expected)
        return int(value)

    return check


def _optional_int(low: int) -> Callable[[str, Any], int | None]:
    inner = _int_in(low)

    def check(key: str, value: Any) -> int | None:
        if value is None:
            return None
        try:
            return inner(key, value)
        except ModelConfigError:
            raise _fail(key, value, f"None or an integer >= {low}") from None

    return check


def _float_in(
    low: float, high: float, *, low_open: bool = False, high_open: bool = True
) -> Callable[[str, Any], float]:
    expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(key: str, value: Any) -> float:
        if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
            raise _fail(key, value, expected)
        number = float(value)
        too_low = number <= low if low_open else number < low
        too_high = number >= high if high_open else number > high
        if math.isnan(number) or too_low or too_high:
            raise _fail(key, value, expected)
        return number

    return check


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(key, value, "true or false")
    return bool(value)


def _choice(choices: Sequence[str]) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise _fail(key, value, "one of " + ", ".join(choices))
        return value

    return check


def _kernel_sizes(key: str, value: Any) -> tuple[int, ...]:
    expected = "a non-empty list of integers >= 1 (or a comma-separated string such as '1,2,3')"
    items: Any = value
    if isinstance(value, str):
        try:
            items = [int(part) for part in value.replace(" ", "").strip("()[]").split(",") if part]
        except ValueError:
            raise _fail(key, value, expected) from None
    if isinstance(items, np.ndarray):
        items = items.tolist()
    if not isinstance(items, (list, tuple)) or not items or not all(_is_int(k) and k >= 1 for k in items):
        raise _fail(key, value, expected)
    return tuple(int(k) for k in items)


def _preset(key: str, value: Any) -> str | None:
    from search.model._presets import PRESETS  # late: the presets are built from DEFAULT_PARAMS

    if value is None:
        return None
    if not isinstance(value, str) or value not in PRESETS:
        raise _fail(key, value, "None or one of " + ", ".join(PRESETS))
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "preset": _preset,
    "architecture": _choice(ARCHITECTURES),
    "embedding_mode": _choice(EMBEDDING_MODES),
    "embedding_dim": _optional_int(1),
    "dropout": _float_in(0.0, 1.0),
    "rnn_layers": _int_in(1, 2),
    "bidirectional": _boolean,
    "hidden_units": _int_in(1),
    "conv_kernel_sizes": _kernel_sizes,
    "conv_filters": _int_in(1),
    "batch_norm": _boolean,
    "learning_rate": _float_in(0.0, 10.0, low_open=True, high_open=False),
    "weight_decay": _float_in(0.0, 1.0),
    "lr_decay": _float_in(0.0, 1.0, low_open=True, high_open=False),
    "attention_position": _choice(ATTENTION_POSITIONS),
    "num_heads": _int_in(1),
    "key_dim": _optional_int(1),
    "attention_dropout": _float_in(0.0, 1.0),
    "attention_units": _optional_int(1),
    "kernel_l1": _float_in(0.0, math.inf),
    "mask_padding": _boolean,
    "batch_size": _int_in(1),
    "mixed_precision": _boolean,
}
assert set(_CHECKS) == set(DEFAULT_PARAMS)


def rnn_output_dim(params: Mapping[str, Any]) -> int:
    """Features per time step out of the recurrent stack."""
    return int(params["hidden_units"]) * (2 if params["bidirectional"] else 1)


def resolve_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``params`` over :data:`DEFAULT_PARAMS` and validate every value; builds nothing.

    Raises :class:`~search.errors.ModelConfigError` naming the field, what was received and what was
    expected, for an unknown key, a bad value or a combination the factory cannot build.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ModelConfigError(f"got {_describe(params)}; expected a mapping of parameter names to values",
                               source=_SOURCE)
    for key in params:
        if key not in DEFAULT_PARAMS:
            close = difflib.get_close_matches(str(key), DEFAULT_PARAMS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ModelConfigError(
                f"unknown parameter{hint}; expected one of " + ", ".join(sorted(DEFAULT_PARAMS)),
                source=_SOURCE, field=str(key),
            )
    base: Mapping[str, Any] = DEFAULT_PARAMS
    preset = _preset("preset", params.get("preset"))
    if preset is not None:
        from search.model._presets import PRESETS

        base = PRESETS[preset]
    resolved = {key: _CHECKS[key](key, params.get(key, default)) for key, default in base.items()}

    if resolved["architecture"] == "residual_mha":
        if resolved["attention_position"] not in RESIDUAL_MHA_POSITIONS:
            raise ModelConfigError(
                f"got {resolved['attention_position']!r} with architecture 'residual_mha'; expected one of "
                + ", ".join(RESIDUAL_MHA_POSITIONS) + " (the conv/pooled/label positions need architecture 'rcnn')",
                source=_SOURCE, field="attention_position",
            )
        if resolved["conv_filters"] != rnn_output_dim(resolved):
            raise ModelConfigError(
                f"got {resolved['conv_filters']}; expected {rnn_output_dim(resolved)} (the residual blocks add "
                "each convolution to its input, so conv_filters must equal hidden_units x 2 if bidirectional)",
                source=_SOURCE, field="conv_filters",
            )
    return resolved


def parse_param_value(key: str, text: str) -> Any:
    """Turn command-line text into a value of the parameter's type (validated later by resolve_params)."""
    if key not in DEFAULT_PARAMS:
        resolve_params({key: None})  # raises the unknown-parameter error
    default = DEFAULT_PARAMS[key]
    lowered = text.strip().lower()
    if isinstance(default, bool):
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise _fail(key, text, "true or false")
    if isinstance(default, tuple):
        return text  # _kernel_sizes parses '1,2,3'
    if isinstance(default, str):
        return text.strip()
    if default is None and lowered in ("none", "null", ""):
        return None
    if key == "preset":
        return text.strip()
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise _fail(key, text, "a number") from None
    try:
        return int(text)
    except ValueError:
        raise _fail(key, text, "an integer") from None


# ----------------------------------------------------------------------------------------------------
# the dataset's shapes


@dataclass(frozen=True)
class InputShapes:
    """What the model is built for: padded sequence length, vocabulary, labels, embedding.

    ``embedding_matrix`` (vocab_size x embedding_dim) is required by the ``frozen`` and ``trainable``
    embedding modes; ``random`` ignores it.
    """

    seq_len: int
    vocab_size: int
    n_labels: int
    embedding_dim: int = 100
    embedding_matrix: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, dataset: DatasetShape, embedding_matrix: np.ndarray | None = None,
           embedding_dim: int = 100) -> InputShapes:
        """The shapes of ``dataset`` (a :class:`search.data.Dataset`), with its pretrained embedding.

        ``embedding_dim`` is the width for a ``random`` embedding when there is no matrix; with one, the
        matrix's width is the embedding's."""
        dim = int(embedding_matrix.shape[1]) if embedding_matrix is not None else embedding_dim
        return cls(seq_len=dataset.seq_len, vocab_size=dataset.vocab_size, n_labels=dataset.n_labels,
                   embedding_dim=dim, embedding_matrix=embedding_matrix)


class DatasetShape(Protocol):
    """What :meth:`InputShapes.of` reads from a dataset; stated here so that resolving parameters does
    not import the data package (and its tokenizer) to name a type."""

    @property
    def seq_len(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def n_labels(self) -> int: ...


def any_length(params: Mapping[str, Any]) -> bool:
    """Whether the model built from resolved ``params`` takes token ids of any length, with the same
    prediction for a text whatever padding follows it: the RCNN with masked padding (its convolutions
    are 'same' and its pooling masked). Training can then pad each batch to its own longest document.
    The seed's unmasked models and the residual-MHA architecture (its max-pooling halves a fixed length)
    keep the dataset's padded length."""
    return bool(params["mask_padding"]) and params["architecture"] == "rcnn"


def recorded_any_length(diagnostics: Mapping[str, Any] | None) -> bool:
    """:func:`any_length` for a model read back from a study, known by its build diagnostics (a trial's
    record): the factory records its architecture and padding mask there. A model whose diagnostics do not
    (a keras-tuner hypermodel, which may take any length without masking its padding) is predicted padded,
    as its trial's validation passes were."""
    d = diagnostics or {}
    return "architecture" in d and "mask_padding" in d and any_length(d)


def effective_embedding_dim(params: Mapping[str, Any], shapes: InputShapes) -> int:
    """The embedding width actually built (the matrix's width in the pretrained modes)."""
    if params["embedding_mode"] != "random" and shapes.embedding_matrix is not None:
        return int(np.shape(shapes.embedding_matrix)[1])
    return int(params["embedding_dim"] or shapes.embedding_dim)


def check_shapes(params: Mapping[str, Any], shapes: InputShapes) -> None:
    """Refuse shapes the resolved ``params`` cannot be built for (pure Python, before any keras work)."""
    if not isinstance(shapes, InputShapes):
        raise ModelConfigError(f"got {_describe(shapes)}; expected InputShapes", source="shapes")
    for name in ("seq_len", "vocab_size", "n_labels", "embedding_dim"):
        value = getattr(shapes, name)
        if not _is_int(value) or value < 1:
            raise ModelConfigError(f"got {_describe(value)}; expected an integer >= 1", source="shapes", field=name)

    matrix = shapes.embedding_matrix
    if params["embedding_mode"] != "random":
        if matrix is None:
            raise ModelConfigError(
                f"embedding_mode {params['embedding_mode']!r} needs pretrained vectors; got no "
                "InputShapes.embedding_matrix (pass a (vocab_size, dim) matrix, or use embedding_mode 'random')",
                source=_SOURCE, field="embedding_mode",
            )
        if np.ndim(matrix) != 2 or np.shape(matrix)[0] != shapes.vocab_size:
            raise ModelConfigError(
                f"got an embedding matrix of shape {tuple(np.shape(matrix))}; expected "
                f"({shapes.vocab_size}, dim), one row per token id of the vocabulary",
                source="shapes", field="embedding_matrix",
            )
        width = int(np.shape(matrix)[1])
        if params["embedding_dim"] is not None and params["embedding_dim"] != width:
            raise ModelConfigError(
                f"got {params['embedding_dim']}; expected {width} (the pretrained matrix's width) or None",
                source=_SOURCE, field="embedding_dim",
            )

    kernels = params["conv_kernel_sizes"]
    # Unmasked rcnn convolutions are 'valid' (no padding): a kernel longer than the sequence has no output.
    valid_convolutions = (
        params["architecture"] == "rcnn" and params["attention_position"] != "label" and not params["mask_padding"]
    )
    if valid_convolutions and max(kernels) > shapes.seq_len:
        raise ModelConfigError(
            f"got kernel size {max(kernels)} with 'valid' convolutions over sequences of length "
            f"{shapes.seq_len}; expected kernel sizes <= seq_len",
            source=_SOURCE, field="conv_kernel_sizes",
        )
    if params["architecture"] == "residual_mha" and shapes.seq_len < 2:
        raise ModelConfigError(
            f"got seq_len {shapes.seq_len}; expected >= 2 (the residual_mha architecture max-pools by 2)",
            source="shapes", field="seq_len",
        )
