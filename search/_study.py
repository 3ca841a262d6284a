"""Creating, checking and resuming a study; samplers and pruners from the run configuration.

Keras-free: used by the launcher (parent process) and by workers.
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import optuna
from optuna.trial import TrialState

from search.config import RunConfig
from search.errors import StudyConfigError
from spaces import SearchSpace

__all__ = ["make_sampler", "make_pruner", "open_study", "prepare_study", "study_exists", "count_trials",
           "RUN_CONFIG_ATTR", "CONTEXT_ATTR"]

RUN_CONFIG_ATTR = "run_config"
CONTEXT_ATTR = "space_context"
# What defines a study: resuming with any of these changed is refused.
_DEFINING = ("space", "data", "vocab_size", "max_len", "limit", "epochs", "embedding_dim")


def make_sampler(config: RunConfig, space: SearchSpace, context: Mapping[str, Any], worker_index: int = 0
                 ) -> optuna.samplers.BaseSampler:
    seed = config.seed + worker_index  # distinct streams per worker, reproducible per index
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(context), seed=seed)
    # multivariate + group: TPE models the conditional parameters (num_heads) jointly with the position;
    # constant_liar keeps parallel workers from sampling the same point. Both are marked experimental.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=5,
                                          constant_liar=True)


def make_pruner(config: RunConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.epochs, reduction_factor=3)
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if config.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def study_exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _check_resume(study: optuna.Study, config: RunConfig, space: SearchSpace, fingerprint: str) -> None:
    attrs = study.user_attrs
    stored = attrs.get(RUN_CONFIG_ATTR)
    if stored is None:
        raise StudyConfigError("exists but was not created by this service (no run_config); expected a new study "
                               "name", source=f"study '{study.study_name}'")
    if attrs.get("space_version") != space.version or stored.get("space") != space.name:
        raise StudyConfigError(
            f"was created with space {stored.get('space')} v{attrs.get('space_version')}, not {space.name} "
            f"v{space.version}; expected the same space version (start a new study name)",
            source=f"study '{study.study_name}'", field="space_version")
    if attrs.get("data_fingerprint") != fingerprint:
        raise StudyConfigError(
            f"was created on dataset {stored.get('data')} (fingerprint {attrs.get('data_fingerprint')}), "
            f"got {config.data} (fingerprint {fingerprint}); expected the same data and settings",
            source=f"study '{study.study_name}'", field="data_fingerprint")
    current = config.to_json()
    for key in _DEFINING:
        if key in ("data",):
            continue
        if stored.get(key) != current.get(key):
            raise StudyConfigError(f"was created with {key}={stored.get(key)!r}, got {current.get(key)!r}; "
                                   f"expected the same value to resume", source=f"study '{study.study_name}'",
                                   field=key)


def prepare_study(storage: optuna.storages.BaseStorage, config: RunConfig, space: SearchSpace, fingerprint: str,
                  **prepare_options: Any) -> tuple[optuna.Study, bool]:
    """Create the study, or check and resume it. Returns (study, created).

    Everything that can be refused is checked before anything is written to the store.
    """
    if study_exists(storage, config.study):
        study = optuna.load_study(study_name=config.study, storage=storage)
        _check_resume(study, config, space, fingerprint)
        return study, False
    context = space.prepare(None, **prepare_options)  # may raise: nothing written yet
    context = dict(context) | ({"fixed": dict(config.fixed)} if config.fixed else {})
    study = optuna.create_study(study_name=config.study, storage=storage, direction="maximize")
    study.set_user_attr(RUN_CONFIG_ATTR, config.to_json())
    study.set_user_attr(CONTEXT_ATTR, context)
    study.set_user_attr("space_version", space.version)
    study.set_user_attr("data_fingerprint", fingerprint)
    space.enqueue(study, context)
    return study, True


def open_study(storage: optuna.storages.BaseStorage, name: str, space: SearchSpace | None = None,
               worker_index: int = 0) -> tuple[optuna.Study, RunConfig, dict]:
    """Load a study made by the launcher with its sampler and pruner (for workers)."""
    from search.kerastuner import get_space  # the registered spaces, and "hypermodel:module:attr"

    if not study_exists(storage, name):
        raise StudyConfigError("no such study in the storage; expected a study started by search.launch",
                               source=f"study '{name}'")
    summary = optuna.load_study(study_name=name, storage=storage)
    if RUN_CONFIG_ATTR not in summary.user_attrs:
        raise StudyConfigError("was not created by this service (no run_config)", source=f"study '{name}'")
    config = RunConfig.from_json(summary.user_attrs[RUN_CONFIG_ATTR])
    context = dict(summary.user_attrs.get(CONTEXT_ATTR, {}))
    space = space or get_space(config.space)
    # A resumed study gets fresh sampler streams (its random start-up points must not repeat the first
    # launch's); a new study's streams depend only on the seed and the worker index.
    stream = worker_index + 1000 * len(summary.get_trials(deepcopy=False))
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=make_sampler(config, space, context, stream), pruner=make_pruner(config))
    return study, config, context


def count_trials(study: optuna.Study, states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)
                 ) -> int:
    return len(study.get_trials(deepcopy=False, states=states))
