"""A tiny finished study with saved models and one export of it, shared by the export and predict tests.

Made in-process the way a worker runs trials (prepare_study / open_study / Objective), on a debtags50
subset (64 training, 400 validation and 400 test documents, see datahelpers), 16 tokens, an 800-word
vocabulary and one epoch. Built once per test run: the test modules ask for it, and the later ones find
it made.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest

if TYPE_CHECKING:
    from search.config import RunConfig

TINY = {"max_len": 16, "vocab_size": 800, "epochs": 1}
SUBSET = {"train": 64, "valid": 400, "test": 400}
STUDY = "tiny"
NO_MODEL_STUDY = "nomodel"
#: Trial 0 without attention, trial 1 with label-wise attention (a custom layer the export must reload).
POSITIONS = ({"attention_position": "none"}, {"attention_position": "label"})


def _run_study(url: str, data: str) -> None:
    from search._study import open_study, prepare_study, read_study
    from search.config import RunConfig
    from search.data import embedding_matrix_for, load_dataset
    from search.errors import TrialFailure
    from search.objective import Objective
    from spaces import get_space
    from storage import artifact_store_for, create_storage

    config = RunConfig(study=STUDY, space="attn", pruner="none", sampler="random", data=data, **TINY)
    dataset = load_dataset(config.data, config.data_settings())
    embedding = embedding_matrix_for(dataset, config.embedding_dim)
    storage = create_storage(url)
    space = get_space("attn")
    prepare_study(storage, config, space, dataset.fingerprint, train_documents=len(dataset.x_train))
    stored = read_study(storage, STUDY)
    study = open_study(storage, stored, space)
    for params in POSITIONS:
        study.enqueue_trial(params)
    objective = Objective(stored.config, space, stored.context, dataset, embedding, artifact_store_for(url),
                          log=lambda m: None)
    study.optimize(objective, n_trials=len(POSITIONS), catch=(TrialFailure,))

    # A study whose one complete trial saved no model (as --no-save-models leaves it): no training needed.
    no_model = RunConfig(study=NO_MODEL_STUDY, space="attn", pruner="none", save_models=False, data=data, **TINY)
    prepare_study(storage, no_model, space, dataset.fingerprint, train_documents=len(dataset.x_train))
    optuna.load_study(study_name=NO_MODEL_STUDY, storage=storage).add_trial(
        optuna.trial.create_trial(value=0.1, user_attrs={"threshold": 0.3}))


def tiny_studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder with ``studies.db`` (studies ``tiny`` and ``nomodel``), its artifacts and ``export/``."""
    folder = tmp_path_factory.getbasetemp() / "serving-studies"
    done = folder / "ready"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{folder / 'studies.db'}"
    from datahelpers import debtags_subset

    _run_study(url, str(debtags_subset(folder, **SUBSET)))
    from search._cli import run_main
    from search.export import main

    code = run_main(main, ["--study", STUDY, "--storage", url, "--out", str(folder / "export")])
    assert code == 0
    done.write_text("ok")
    return folder


def storage_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'studies.db'}"


def tiny_config(folder: Path) -> RunConfig:
    """The tiny study's run settings as stored (its data file included)."""
    from search._study import read_study
    from storage import create_storage

    return read_study(create_storage(storage_url(folder)), STUDY).config
