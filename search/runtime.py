"""Per-process set-up of a worker: which GPU, which Keras backend, and what to record about it.

``configure_process`` must run before the first ``import keras`` of the process; everything else here
imports keras (or tensorflow) lazily, and ``process_identity`` not at all.
"""
from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["configure_process", "limit_cpu_threads", "op_threads", "quiet_native_logging", "enable_memory_growth",
           "process_identity", "environment_record", "seed_everything", "is_out_of_memory", "INHERIT_GPUS",
           "QUIET_ENVIRONMENT", "THREADS_VARIABLE"]

#: The thread budget :func:`limit_cpu_threads` gave this process (inherited by the processes it starts).
THREADS_VARIABLE = "SEARCH_CPU_THREADS"

INHERIT_GPUS = "inherit"  # configure_process(gpu=INHERIT_GPUS): keep the CUDA_VISIBLE_DEVICES we were given


#: Environment that keeps TensorFlow's C++ logging and gRPC's informational lines off stderr. Set as
#: defaults (a user's own setting wins); the processes we start inherit them.
QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
}


def quiet_native_logging() -> None:
    """Quiet the native libraries' start-up logging in this process and the processes it starts.

    Must run before they load to take effect. TensorFlow 2.18 and later still print a few absl lines while
    they load, whatever the environment says; that is why every command checks its inputs before it
    imports keras: a refusal is printed before that noise could be.
    """
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def configure_process(gpu: str | None, backend: str | None = None) -> None:
    """Pin this process to one GPU, or to none, and choose the Keras backend, before keras loads.

    ``gpu``: an id such as ``"0"`` (``CUDA_VISIBLE_DEVICES=0``: this process sees that GPU only, as its
    GPU 0; two processes may be given the same id), ``None`` (CPU only: no GPU visible), or
    :data:`INHERIT_GPUS` (leave ``CUDA_VISIBLE_DEVICES`` as the environment set it, e.g. in a container
    that was given one GPU). ``backend``: the Keras backend, else ``$KERAS_BACKEND``, else tensorflow.
    GPU memory is allocated as needed rather than all at once (TensorFlow memory growth, JAX without
    preallocation), so several processes can share one GPU.
    """
    if "keras" in sys.modules:
        raise RuntimeError("configure_process() must run before keras is imported")
    if gpu != INHERIT_GPUS:
        os.environ["CUDA_VISIBLE_DEVICES"] = "" if gpu is None else str(gpu)
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    quiet_native_logging()
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # memory growth, so two trials can share a GPU
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the same for the JAX backend


def limit_cpu_threads(threads: int, cpus: set[int] | None = None) -> None:
    """Run this process's numerical work on ``threads`` threads, on the CPUs ``cpus`` (default: all).

    Must run before keras (and its backend) loads: TensorFlow, JAX's XLA and PyTorch size their thread
    pools once, at start-up, from these variables and from the CPUs the process may run on. This is how
    several one-thread workers share a CPU machine without oversubscribing it: each pinned to its own
    core, each with pools of its own size, instead of every worker's pools sized for all the cores.
    """
    if threads < 1:
        raise ValueError(f"got {threads} threads; expected at least 1")
    if "keras" in sys.modules:
        raise RuntimeError("limit_cpu_threads() must run before keras is imported")
    if cpus:
        os.sched_setaffinity(0, cpus)
    intra, inter = op_threads(threads)
    os.environ[THREADS_VARIABLE] = str(threads)
    # TensorFlow's pools split the threads between ops (see op_threads); PyTorch and JAX run one op at a
    # time, so theirs (OpenMP, MKL, XLA's Eigen) get them all.
    os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"] = str(intra), str(inter)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def op_threads(threads: int) -> tuple[int, int]:
    """TensorFlow's ``(intra-op, inter-op)`` pool sizes for a process given ``threads`` cores: two ops at
    a time, each on half of the threads (at least one).

    Why not every core in both pools (TensorFlow's default): a trial's model is mostly two independent
    chains of small ops, the forward and backward directions of its BiLSTMs step by step, and their
    matrix products (batch x a few hundred) are too small for several threads each to pay. Run side by
    side, one core each, they trained 1.08-1.34x as many documents a second on the 2-core machine
    (``bench/throughput.py``, BENCHMARKS.md "Trial throughput"); a larger machine still splits each op
    over half its cores (not measured there).
    """
    if threads < 1:
        raise ValueError(f"got {threads} threads; expected at least 1")
    return max(1, threads // 2), min(2, threads)


def enable_memory_growth() -> list[str]:
    """TensorFlow backend: turn memory growth on for every visible GPU; return their names.

    Must run before TensorFlow initialises its GPUs (before the first op). Other backends: ``[]`` (see
    :func:`configure_process`). No GPU visible: ``[]``, and TensorFlow runs on the CPU.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return []
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for device in gpus:
        # already initialised: TF_FORCE_GPU_ALLOW_GROWTH applied then
        with contextlib.suppress(RuntimeError, ValueError):
            tf.config.experimental.set_memory_growth(device, True)
    return [device.name for device in gpus]


def _int_variable(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def process_identity() -> dict[str, Any]:
    """Where this process runs: host name, pid, and (Linux) boot id and PID namespace.

    Two records with the same host, boot id and PID namespace name processes whose pids can be checked
    from each other; that is how a dead worker's RUNNING trials are recognised (see ``search._orphans``).
    """
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "boot_id": _read_text("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": _pid_namespace(),
    }


def environment_record() -> dict[str, Any]:
    """Host, GPU, backend and library versions, for the trial's user attributes."""
    import keras
    import optuna

    record: dict[str, Any] = {
        **process_identity(),
        "gpu": os.environ.get("CUDA_VISIBLE_DEVICES") or None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "backend": keras.backend.backend(),
        "cpus": sorted(os.sched_getaffinity(0)),  # the cores it ran on: a pinned CPU worker's own
        "threads": _int_variable(THREADS_VARIABLE),  # None: the backend's own pools, every core
        "op_threads": [_int_variable("TF_NUM_INTRAOP_THREADS"), _int_variable("TF_NUM_INTEROP_THREADS")],
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
            gpus = tf.config.list_physical_devices("GPU")
            record["memory_growth"] = bool(gpus) and all(tf.config.experimental.get_memory_growth(g) for g in gpus)
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
    record["device"] = record["devices"][0] if record.get("devices") else "CPU"
    return record


def seed_everything(seed: int) -> None:
    """Python, numpy and backend seeds; deterministic TensorFlow ops where that backend is used."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with contextlib.suppress(Exception):  # older TF, or already enabled
            tf.config.experimental.enable_op_determinism()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception from fit() is the device (or host) running out of memory."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    text = str(exc)
    return name in ("ResourceExhaustedError", "OutOfMemoryError") or "out of memory" in text.lower() or \
        "RESOURCE_EXHAUSTED" in text
