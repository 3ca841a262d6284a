"""Per-process set-up of a worker: which GPU, which Keras backend, and what to record about it.

``configure_process`` must run before the first ``import keras`` of the process; everything else here
imports keras lazily.
"""
from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

__all__ = ["configure_process", "environment_record", "seed_everything", "is_out_of_memory"]


def configure_process(gpu: str | None, backend: str | None = None) -> None:
    """Pin this process to one GPU (``None``: CPU only) and choose the Keras backend, before keras loads."""
    if "keras" in sys.modules:
        raise RuntimeError("configure_process() must run before keras is imported")
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if gpu is None else str(gpu)
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # memory growth, so two trials can share a GPU


def environment_record() -> dict[str, Any]:
    """Host, GPU, backend and library versions, for the trial's user attributes."""
    import keras
    import optuna

    record: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "gpu": os.environ.get("CUDA_VISIBLE_DEVICES") or None,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "optuna": optuna.__version__,
    }
    backend = record["backend"]
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            record["tensorflow"] = tf.__version__
            record["devices"] = [d.name for d in tf.config.list_logical_devices() if d.device_type == "GPU"]
        elif backend == "jax":
            import jax

            record["jax"] = jax.__version__
            record["devices"] = [str(d) for d in jax.devices() if d.platform == "gpu"]
        elif backend == "torch":
            import torch

            record["torch"] = torch.__version__
            record["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a record, never a reason to fail the trial
        record["devices_error"] = repr(exc)
    return record


def seed_everything(seed: int) -> None:
    """Python, numpy and backend seeds; deterministic TensorFlow ops where that backend is used."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # older TF, or already enabled
            pass


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception from fit() is the device (or host) running out of memory."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    text = str(exc)
    return name in ("ResourceExhaustedError", "OutOfMemoryError") or "out of memory" in text.lower() or \
        "RESOURCE_EXHAUSTED" in text
