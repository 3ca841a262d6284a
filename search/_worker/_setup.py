"""Who a worker is (its command line) and what it opens before its first trial (one :class:`WorkerSetup`).

A worker's identity -- study, storage, device, index, parent -- comes from its command line; how it runs
(data, epochs, pruner, target, heartbeats) comes from the study's run configuration, so a worker started
by hand on another node runs exactly what the launcher's workers run.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.runtime import INHERIT_GPUS

if TYPE_CHECKING:
    import numpy as np
    import optuna

    from search._study import StoredStudy
    from search.config import RunConfig
    from search.data import Dataset
    from spaces import SearchSpace

__all__ = ["WorkerIdentity", "WorkerSetup", "set_up"]


@dataclass(frozen=True)
class WorkerIdentity:
    """What a worker's command line says: which study in which store, on which device, as which worker."""

    study: str
    storage_url: str
    gpu: str | None = INHERIT_GPUS  # an id, None (CPU only) or INHERIT_GPUS (CUDA_VISIBLE_DEVICES as given)
    backend: str | None = None  # the Keras backend, else $KERAS_BACKEND, else tensorflow
    threads: int | None = None  # the backend's thread pools (None: its own default, every core)
    cpus: tuple[int, ...] | None = None  # the cores it runs on (None: every core it may use)
    index: int = 0  # the launcher's number for this worker: its sampler stream
    parent_pid: int | None = None  # the launcher's pid: the worker stops once its parent is another

    def log(self, message: str) -> None:
        """Print ``message`` as this worker's line: ``[worker 1 gpu 0] message``."""
        shown = "" if self.gpu in (None, INHERIT_GPUS) else f" gpu {self.gpu}"
        print(f"[worker {self.index}{shown}] {message}", flush=True)


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker opened once for all its trials: the storage and the study (with its sampler
    and pruner), what the study stored, the space resolved once, the data loaded once."""

    identity: WorkerIdentity
    storage: optuna.storages.BaseStorage
    study: optuna.Study
    stored: StoredStudy
    space: SearchSpace
    dataset: Dataset
    embedding: np.ndarray | None  # word2vec for the built-in spaces; None for a model that builds its own
    artifacts: Any | None  # the artifact store of the best models; None when nothing is saved
    log: Callable[[str], None]

    @property
    def config(self) -> RunConfig:
        return self.stored.config

    @property
    def context(self) -> dict[str, Any]:
        """The space's context, as the study stored it."""
        return self.stored.context


def set_up(identity: WorkerIdentity, *, trials: bool = True, heartbeats: bool = True, artifacts: bool = True,
           log: Callable[[str], None] | None = None,
           check: Callable[[optuna.storages.BaseStorage, StoredStudy], None] | None = None) -> WorkerSetup:
    """Pin the device and backend, open the storage and the study, resolve the space, load the data.

    ``trials``: the worker will run trials, reporting to the study's pruner (a replay does not): a study
    whose pruner steps count otherwise is refused. ``heartbeats``: the storage beats for running trials
    with the study's heartbeat settings (a replay, which writes nothing, opens it without). ``artifacts``:
    open the artifact store for the best models.
    ``check(storage, stored)``: a caller's own refusal (a replay's trial number), run with the rest of the
    checks. Everything that can refuse the worker's input runs before TensorFlow loads, so a refusal is
    one line, not one line after TensorFlow's start-up logging.
    """
    from search.runtime import configure_process, limit_cpu_threads

    log = log or identity.log
    threads = identity.threads or len(identity.cpus or ()) or None
    if threads is None and identity.gpu is None:
        # A CPU worker of its own: every core it may use, TensorFlow's pools split between ops (op_threads:
        # measured faster here than TensorFlow's own pools).
        threads = len(os.sched_getaffinity(0))
    if threads is not None:  # before anything imports keras
        limit_cpu_threads(threads, set(identity.cpus or ()) or None)
    configure_process(identity.gpu, identity.backend)
    from search.data import load_dataset
    from spaces import get_space

    stored, storage = _open(identity.storage_url, identity.study, heartbeats)
    config = stored.config
    space = get_space(config.space, source=f"study '{identity.study}' (its space)")  # this process's one resolution
    dataset = load_dataset(config.data, config.data_settings())
    if trials:
        from search._study import check_pruner_steps

        check_pruner_steps(stored, len(dataset.x_train))
    if check is not None:
        check(storage, stored)
    from search.runtime import enable_memory_growth

    gpus = enable_memory_growth()  # before TensorFlow's first op
    if identity.gpu not in (None, INHERIT_GPUS) and not gpus and os.environ.get("KERAS_BACKEND") == "tensorflow":
        log(f"GPU {identity.gpu} requested but TensorFlow sees no GPU (CUDA_VISIBLE_DEVICES={identity.gpu}); "
            "running on the CPU")
    from search._study import open_study
    from search.data import embedding_matrix_for
    from search.kerastuner import HyperModelSpace
    from storage import artifact_store_for

    study = open_study(storage, stored, space, identity.index,
                       reports_per_epoch=config.reports_per_epoch(len(dataset.x_train)))
    # a keras-tuner hypermodel builds its own embedding: no word2vec for it
    embedding = None if isinstance(space, HyperModelSpace) else embedding_matrix_for(dataset, config.embedding_dim)
    store = artifact_store_for(identity.storage_url) if artifacts else None
    return WorkerSetup(identity=identity, storage=storage, study=study, stored=stored, space=space, dataset=dataset,
                       embedding=embedding, artifacts=store, log=log)


def _open(url: str, study_name: str, heartbeats: bool) -> tuple[StoredStudy, optuna.storages.BaseStorage]:
    """The study's stored settings, and the worker's storage opened with its heartbeat settings.

    Heartbeats are a setting of the storage object, and the study says which: so the settings are read
    through a storage without heartbeats, closed again before the worker's own is opened (a worker holds
    one connection at a time).
    """
    from search._study import read_study
    from search._worker._storage import open_storage
    from storage import close_storage

    reader = open_storage(url, heartbeat_interval=None)
    try:
        stored = read_study(reader, study_name)
    except BaseException:
        close_storage(reader)
        raise
    if not heartbeats:
        return stored, reader
    close_storage(reader)
    config = stored.config
    return stored, open_storage(url, heartbeat_interval=config.heartbeat_interval, grace_period=config.grace_period)
