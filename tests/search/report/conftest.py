"""A small finished ``attn`` study and its ``ablation``, made in-process (the worker's code path without a
subprocess: the same prepare_study / open_study / Objective), shared by the report tests."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

TINY = {"max_len": 16, "vocab_size": 800, "epochs": 1}
#: debtags50 documents a split (see datahelpers): every model is scored on the whole valid and test splits
SUBSET = {"train": 64, "valid": 400, "test": 400}
ATTN_POSITIONS = ({"attention_position": "none"}, {"attention_position": "label"})  # with and without attention
ABLATION_TRIALS = 12  # replicates 0 and 1 of the six positions (the space enqueues replicate by replicate)


def run_study(url: str, name: str, space_name: str, trials: int, *, source: optuna.Study | None = None,
              sampler: str = "tpe", enqueue: tuple[dict[str, Any], ...] = (), **overrides: Any) -> optuna.Study:
    from search._study import open_study, prepare_study, read_study
    from search.config import RunConfig
    from search.data import embedding_matrix_for, load_dataset
    from search.errors import TrialFailure
    from search.objective import Objective
    from spaces import get_space
    from storage import artifact_store_for, create_storage

    config = RunConfig(study=name, space=space_name, pruner="none", sampler=sampler, **(TINY | overrides))
    dataset = load_dataset(config.data, config.data_settings())
    embedding = embedding_matrix_for(dataset, config.embedding_dim)
    storage = create_storage(url)
    space = get_space(space_name)
    options = {"source_study": source} if space_name == "ablation" else {}
    prepare_study(storage, config, space, dataset.fingerprint, train_documents=len(dataset.x_train), **options)
    stored = read_study(storage, name)
    study, config, context = open_study(storage, stored, space), stored.config, stored.context
    for params in enqueue:
        study.enqueue_trial(params)
    objective = Objective(config, space, context, dataset, embedding, artifact_store_for(url), log=lambda m: None)
    study.optimize(objective, n_trials=trials, catch=(TrialFailure,))
    return study


@contextlib.contextmanager
def eager_functions() -> Iterator[None]:
    """TensorFlow runs Keras' train and predict steps eagerly inside: the fixture's 14 models see 64
    documents in one epoch, and tracing a new tf.function for each cost more than running them (measured:
    the fixture in 128 s instead of 208 s on a loaded machine, the same trial values to the last digit).
    Only while the fixture is built: the tests' reports predict thousands of documents and refit, which
    ran slower eagerly. A no-op on the other backends; the previous setting is restored."""
    import keras

    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


@pytest.fixture(scope="session")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``studies.db`` (studies ``attn`` and ``ablation``, on a debtags50 subset: ``subset.jsonl``)
    and ``studies_artifacts/``."""
    from datahelpers import debtags_subset

    folder = tmp_path_factory.mktemp("report-studies")
    url = f"sqlite:///{folder / 'studies.db'}"
    data = str(debtags_subset(folder, **SUBSET))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with eager_functions():
        attn = run_study(url, "attn", "attn", len(ATTN_POSITIONS), sampler="random", enqueue=ATTN_POSITIONS,
                         data=data)
        run_study(url, "ablation", "ablation", ABLATION_TRIALS, source=attn, data=data)
    return folder
