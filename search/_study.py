"""Creating, checking and resuming a study; samplers and pruners from the run configuration.

Keras-free: used by the launcher (parent process) and by workers.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from search.config import BUDGETED_TRIALS, DEFAULT_TRIALS, RunConfig, defines_study, flag_of
from search.errors import ModelConfigError, StudyConfigError
from search.model import resolve_params
from spaces import SearchSpace

__all__ = ["make_sampler", "make_pruner", "prepare_study", "StoredStudy", "read_study", "recorded_config", "open_study",
           "trial_target", "study_exists", "require_study", "count_trials", "check_fixed_params", "check_pruner_steps",
           "with_stored_pruner", "RUN_CONFIG_ATTR", "CONTEXT_ATTR"]

# The study's user attributes, written when the launcher creates the study (and the run configuration
# again when a resumed launch changes a setting that may change).
RUN_CONFIG_ATTR = "run_config"
CONTEXT_ATTR = "space_context"
SPACE_VERSION_ATTR = "space_version"
FINGERPRINT_ATTR = "data_fingerprint"
# What a trial's pruner step counts. Today: intervals of training documents (1..R within the first
# epoch, then R more an epoch), so the pruner's rungs fall at the same share of training in every trial.
# A study made before this was recorded may have counted otherwise (an epoch, or a report, in earlier
# versions): where an epoch holds several intervals and a pruner compares trials, its intermediate
# values may sit at other steps than today's trials', which would be pruned against the wrong rungs.
PRUNER_STEPS_ATTR = "pruner_steps"
PRUNER_STEPS = "training-intervals"


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


def make_pruner(config: RunConfig, reports_per_epoch: int = 1) -> optuna.pruners.BasePruner:
    """The pruner; its resource is the trial's report step (``reports_per_epoch`` a training epoch)."""
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.epochs * reports_per_epoch,
                                              reduction_factor=3)
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


def require_study(storage: optuna.storages.BaseStorage, name: str, *, source: str,
                  expected: str = "a study started by search.launch") -> None:
    """Refuse ``name`` unless it is a study of ``storage``; the refusal lists the studies that are there, since
    a mistyped name is the usual cause."""
    if not study_exists(storage, name):
        known = ", ".join(sorted(optuna.get_all_study_names(storage))) or "none"
        raise StudyConfigError(f"no such study in the storage (studies there: {known}); expected {expected}",
                               source=source)


def _check_resume(study: optuna.Study, config: RunConfig, space: SearchSpace, fingerprint: str,
                  reports_per_epoch: int) -> None:
    attrs = study.user_attrs
    stored = attrs.get(RUN_CONFIG_ATTR)
    if stored is None:
        raise StudyConfigError("exists but was not created by this service (no run_config); expected a new study "
                               "name", source=f"study '{study.study_name}'")
    if attrs.get(SPACE_VERSION_ATTR) != space.version or stored.get("space") != space.name:
        raise StudyConfigError(
            f"was created with space {stored.get('space')} v{attrs.get(SPACE_VERSION_ATTR)}, not {space.name} "
            f"v{space.version}; expected the same space version (start a new study name)",
            source=f"study '{study.study_name}'", field=SPACE_VERSION_ATTR)
    _check_pruner_steps(study.study_name, attrs.get(PRUNER_STEPS_ATTR), stored.get("pruner"), reports_per_epoch)
    if attrs.get(FINGERPRINT_ATTR) != fingerprint:
        raise StudyConfigError(
            f"was created on dataset {stored.get('data')} (fingerprint {attrs.get(FINGERPRINT_ATTR)}), "
            f"got {config.data} (fingerprint {fingerprint}); expected the same data and settings",
            source=f"study '{study.study_name}'", field=FINGERPRINT_ATTR)
    stored_config = RunConfig.from_json(stored)
    before, now = stored_config.to_json(), config.to_json()
    for name in stored_config.differences(config):
        # the dataset is compared by its fingerprint above: another path to the same file is the same data
        if defines_study(name) and name != "data":
            raise StudyConfigError(
                f"study '{study.study_name}' was created with {name}={before[name]!r}, got {now[name]!r}; expected "
                "the same value to resume (start a new study name to change it)", source=flag_of(name))


def _check_pruner_steps(name: str, stored: Any, pruner: Any, reports_per_epoch: int) -> None:
    """Refuse to run trials in a study whose pruner steps may count something else than today's. Where
    nothing is pruned, or an epoch holds one interval (step = epoch = report in every version), they agree."""
    if stored == PRUNER_STEPS or pruner == "none" or reports_per_epoch <= 1:
        return
    got = "no record of what its pruner steps count" if stored is None else f"pruner steps counting {stored!r}"
    raise StudyConfigError(
        f"was created with {got} (an earlier version: an epoch or a report a step), while its trials now report "
        f"{reports_per_epoch} times in a first epoch; expected a study whose steps count {PRUNER_STEPS!r} (start "
        "a new study name; the report still reads this one)", source=f"study '{name}'", field=PRUNER_STEPS_ATTR)


def check_pruner_steps(stored: StoredStudy, train_documents: int) -> None:
    """A worker's refusal of a study it would run trials in whose pruner steps count otherwise (a replay,
    which reports to no pruner, runs without it)."""
    _check_pruner_steps(stored.config.study, stored.pruner_steps, stored.config.pruner,
                        stored.config.reports_per_epoch(train_documents))


def check_fixed_params(space: SearchSpace, fixed: Mapping[str, Any], source: str = "--set") -> None:
    """Refuse a ``--set`` value the model factory would refuse in every trial, before any store is touched.

    The values go through :func:`search.model.resolve_params` (the factory's own checks, as
    ``python -m search.model describe`` runs them), merged over the space's fixed parameters. A refusal
    that names a parameter the user set (an unknown name, a value out of range, a combination with the
    space's fixed parameters) is raised naming ``source``; one about a parameter the space still searches
    is left to the trials, where other values of it may build. A keras-tuner hypermodel's ``--set`` names
    its own hyperparameters: its ``build(hp)`` checks them (see :func:`search.kerastuner.check_spec`).
    """
    if not fixed or space.name.startswith("hypermodel:"):
        return
    try:
        resolve_params(dict(space.fixed) | dict(fixed))
    except ModelConfigError as exc:
        if exc.field is None or exc.field in fixed:
            raise ModelConfigError(exc.detail, source=source, field=exc.field) from None


def prepare_study(storage: optuna.storages.BaseStorage, config: RunConfig, space: SearchSpace, fingerprint: str,
                  *, train_documents: int, context: Mapping[str, Any] | None = None, **prepare_options: Any
                  ) -> tuple[optuna.Study, bool]:
    """Create the study, or check and resume it. Returns (study, created).

    Everything that can be refused is checked before anything is written to the store.
    ``train_documents``: the size of the study's training split (how many pruner steps an epoch holds,
    which decides whether an older study's steps still agree with today's). ``context``: the
    space's context when the caller has prepared it already (before it opened the store); else the
    space's ``prepare(None, **prepare_options)`` runs here. A resumed study takes the settings that may
    change (target, timeout, memory budget, heartbeats) from ``config``, so every worker, on any node,
    runs with the latest launch's.
    """
    if study_exists(storage, config.study):
        study = optuna.load_study(study_name=config.study, storage=storage)
        _check_resume(study, config, space, fingerprint, config.reports_per_epoch(train_documents))
        if RunConfig.from_json(study.user_attrs[RUN_CONFIG_ATTR]).differences(config):
            study.set_user_attr(RUN_CONFIG_ATTR, config.to_json())
        return study, False
    if context is None:
        context = space.prepare(None, **prepare_options)  # may raise: nothing written yet
    context = dict(context) | ({"fixed": dict(config.fixed)} if config.fixed else {})
    study = optuna.create_study(study_name=config.study, storage=storage, direction="maximize")
    study.set_user_attr(RUN_CONFIG_ATTR, config.to_json())
    study.set_user_attr(CONTEXT_ATTR, context)
    study.set_user_attr(SPACE_VERSION_ATTR, space.version)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
    study.set_user_attr(PRUNER_STEPS_ATTR, PRUNER_STEPS)
    space.enqueue(study, context)
    return study, True


@dataclass(frozen=True)
class StoredStudy:
    """What a study made by the launcher holds about itself: how to run it, its space's context, its size."""

    config: RunConfig
    context: dict[str, Any]
    n_trials: int
    #: what the study's pruner steps count (:data:`PRUNER_STEPS`; None: made before that was recorded)
    pruner_steps: str | None = PRUNER_STEPS


def recorded_config(study: optuna.Study, *, source: str) -> RunConfig:
    """The run configuration the launcher recorded on a loaded ``study`` (refused if it was not made by the
    launcher; ``source`` names it in the refusal)."""
    raw = study.user_attrs.get(RUN_CONFIG_ATTR)
    if raw is None:
        raise StudyConfigError("was not created by search.launch (no run_config); expected a study it started",
                               source=source)
    return RunConfig.from_json(raw)


def read_study(storage: optuna.storages.BaseStorage, name: str, *, source: str | None = None) -> StoredStudy:
    """The run configuration and space context of study ``name`` (refused if it is not in the storage or was
    not made by the launcher; ``source`` names the flag that gave the name in the refusal)."""
    source = source or f"study '{name}'"
    require_study(storage, name, source=source)
    summary = optuna.load_study(study_name=name, storage=storage)
    return StoredStudy(config=recorded_config(summary, source=source),
                       context=dict(summary.user_attrs.get(CONTEXT_ATTR, {})),
                       n_trials=len(summary.get_trials(deepcopy=False)),
                       pruner_steps=summary.user_attrs.get(PRUNER_STEPS_ATTR))


def with_stored_pruner(config: RunConfig, stored: StoredStudy | None, given: str | None) -> RunConfig:
    """``config`` with the pruner a resumed study was created with, where none was ``given``: the default
    pruner has changed between versions (Hyperband, then successive halving), and the same command must
    still resume a study made under the earlier default. A given pruner is compared as before."""
    if stored is None or given is not None:
        return config
    return replace(config, pruner=stored.config.pruner)


def open_study(storage: optuna.storages.BaseStorage, stored: StoredStudy, space: SearchSpace,
               worker_index: int = 0, *, reports_per_epoch: int = 1) -> optuna.Study:
    """The study of ``stored`` with the sampler and pruner of its run configuration (for a worker whose
    training split makes ``reports_per_epoch`` report intervals an epoch)."""
    # A resumed study gets fresh sampler streams (its random start-up points must not repeat the first
    # launch's); a new study's streams depend only on the seed and the worker index.
    stream = worker_index + 1000 * stored.n_trials
    return optuna.load_study(study_name=stored.config.study, storage=storage,
                             sampler=make_sampler(stored.config, space, stored.context, stream),
                             pruner=make_pruner(stored.config, reports_per_epoch))


def check_data_fingerprint(study_name: str, expected: str | None, data: str, fingerprint: str) -> None:
    """Refuse data whose fingerprint is not the one study ``study_name`` recorded (``expected``; None: a
    study that recorded none), before anything reads it as the study's."""
    if expected and fingerprint != expected:
        raise StudyConfigError(f"was run on data with fingerprint {expected}, but '{data}' with its settings now "
                               f"gives {fingerprint}; expected the same dataset file", source=f"study '{study_name}'")


def trial_target(config: RunConfig, space: SearchSpace, context: Mapping[str, Any]) -> int:
    """Finished trials the study aims at: ``--trials``, else the space's own count, else as many as its
    ``--timeout`` allows, else the default."""
    return config.trials or space.n_trials(context) or (BUDGETED_TRIALS if config.timeout else DEFAULT_TRIALS)


def count_trials(study: optuna.Study, states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)
                 ) -> int:
    return len(study.get_trials(deepcopy=False, states=states))
