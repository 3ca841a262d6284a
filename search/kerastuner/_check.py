"""``python -m search.kerastuner._check module:attr [JSON]``: exit 0 when the hypermodel loads and builds
once, else one ``error:`` line, exit 2.

Run by :func:`search.kerastuner.check_spec` in a child process, so the launcher never imports keras.
``JSON`` (optional): ``{"fixed": {...}, "n_labels": N}``, the study's ``--set`` values and label count.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from search._cli import run_main

__all__ = ["main", "check_build"]


def check_build(spec_or_object: Any, fixed: Mapping[str, Any] | None = None, n_labels: int | None = None) -> None:
    """Load the hypermodel and run its ``build(hp)`` once, on keras-tuner's defaults (each hyperparameter's
    default, a Choice's first value) with the ``fixed`` values; refuse, in one line, a hypermodel that cannot
    be loaded, whose build raises, or that returns no compiled keras.Model (with ``n_labels`` outputs).

    A build that fails on the defaults would fail in every trial: the study is refused before it is
    created instead of failing trial after trial.
    """
    import keras
    import keras_tuner

    from search.kerastuner._hypermodel import load_hypermodel
    from search.kerastuner._resolve import spec_error, spec_of

    spec = spec_or_object if isinstance(spec_or_object, str) else spec_of(spec_or_object)
    hypermodel = load_hypermodel(spec_or_object)
    hp = keras_tuner.HyperParameters()
    hp.values.update(dict(fixed or {}))  # keras-tuner keeps a value already present instead of its default
    expected = ("expected build(hp) to return a compiled keras.Model for keras-tuner's default hyperparameter "
                "values" + (" and the --set values" if fixed else ""))
    try:
        model = hypermodel.build(hp)
    except Exception as exc:  # the user's code: any exception is the reason to refuse
        text = str(exc).strip().splitlines()
        raise spec_error(spec, f"build(hp) raised {type(exc).__name__}: {text[0][:300] if text else ''}",
                         expected) from None
    try:
        if not isinstance(model, keras.Model):
            raise spec_error(spec, f"build(hp) returned a {type(model).__name__}", expected)
        if not getattr(model, "compiled", False) and getattr(model, "optimizer", None) is None:
            raise spec_error(spec, "build(hp) returned an uncompiled model", expected + " (call model.compile)")
        width = _output_width(model)
        if n_labels is not None and width is not None and width != n_labels:
            raise spec_error(spec, f"the model has {width} outputs",
                             f"expected one sigmoid output per label of the data ({n_labels})")
    finally:
        del model
        keras.backend.clear_session()


def _output_width(model: Any) -> int | None:
    try:
        width = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, ValueError, TypeError):  # a Sequential without Input: unknown yet
        return None
    return None if width is None else int(width)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2):
        print("error: python -m search.kerastuner._check: expected module:attr [JSON]", file=sys.stderr)
        return 2
    options: dict[str, Any] = json.loads(args[1]) if len(args) == 2 else {}
    from search.runtime import configure_process

    configure_process(None)  # the check builds one model on the CPU: it needs no GPU
    check_build(args[0], options.get("fixed"), options.get("n_labels"))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
