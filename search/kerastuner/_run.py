"""``run(hypermodel, ...)``: a keras-tuner hypermodel as a study of this service, in this process."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

from search.config import DEFAULT_TRIALS, RunConfig
from search.errors import StudyConfigError

__all__ = ["run", "summary"]


def run(hypermodel: Any, *, study_name: str, storage: str | None = None, n_trials: int = DEFAULT_TRIALS,
        epochs: int = RunConfig.epochs, data: str = RunConfig.data, vocab_size: int = RunConfig.vocab_size,
        max_len: int = RunConfig.max_len, limit: int | None = RunConfig.limit, seed: int = RunConfig.seed,
        pruner: str | None = None, sampler: str = RunConfig.sampler, fixed: Mapping[str, Any] | None = None,
        fit_kwargs: Mapping[str, Any] | None = None, timeout: float | None = None, save_models: bool = True,
        worker_index: int = 0, callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
        log: Callable[[str], None] = print) -> optuna.Study:
    """Run (or resume) study ``study_name`` whose trials build and fit ``hypermodel``; return the study.

    ``hypermodel``: a ``keras_tuner.HyperModel`` instance or subclass, a ``build(hp)`` function, or
    ``"module:attr"`` naming one. Everything else is the service's: the storage (``storage``, else
    ``$OPTUNA_STORAGE``, else ``sqlite:///studies.db``), TPE and the pruner (``pruner``; None: the
    study's own when resuming, else the service's default, successive halving) on the whole-validation
    tuned micro-F1 at every report (``val_micro_f1_tuned``), the trial records, the
    saved best model, the dashboard, and the worker's loop: a storage error pauses the run instead of
    ending it, and trials left RUNNING by dead processes on this machine are failed and re-queued.
    Stops when the study has ``n_trials`` complete or pruned trials (a resumed study counts its earlier
    trials). A hypermodel whose ``build(hp)`` fails on keras-tuner's default values is refused
    (:class:`~search.errors.StudyConfigError`) before the store is touched; trials that keep failing for
    the same reason end the run with :class:`search._worker._loop.TrialsKeepFailing`. ``fit_kwargs`` are
    the other arguments a keras-tuner user gives ``tuner.search`` (``{"batch_size": 64}``); ``fixed``
    fixes hyperparameters by name. Resuming with another value of a setting that defines the study
    (epochs, seed, a given pruner, sampler, fixed, save_models, data) is refused.
    """
    from search._study import open_study, prepare_study, read_study, study_exists, with_stored_pruner
    from search._worker._loop import run_objective
    from search.data import load_dataset
    from search.kerastuner._check import check_build
    from search.kerastuner._resolve import check_spec
    from search.kerastuner._space import HyperModelSpace
    from search.objective import Objective
    from storage import artifact_store_for, create_storage, resolve_storage_url

    space = HyperModelSpace(hypermodel, fit_kwargs)
    config = RunConfig(study=study_name, space=space.name, data=data, vocab_size=vocab_size, max_len=max_len,
                       limit=limit, epochs=epochs, seed=seed, pruner=pruner or RunConfig.pruner, sampler=sampler,
                       save_models=save_models, fixed=dict(fixed or {}), trials=n_trials, timeout=timeout)
    if sampler == "grid":
        space.grid({})  # refused: a hypermodel has no grid before it runs
    url = resolve_storage_url(storage)
    dataset = load_dataset(config.data, config.data_settings())
    # Loaded and built once on keras-tuner's defaults (this process trains anyway): a hypermodel that cannot
    # be loaded, or whose build(hp) fails, is refused before the store is touched, not trial after trial.
    if isinstance(hypermodel, str):
        check_spec(hypermodel, in_process=True, fixed=config.fixed, n_labels=dataset.n_labels)
    else:
        check_build(hypermodel, config.fixed, dataset.n_labels)
    store = create_storage(url, heartbeat_interval=config.heartbeat_interval, grace_period=config.grace_period)
    before = read_study(store, study_name) if study_exists(store, study_name) else None
    config = with_stored_pruner(config, before, pruner)
    stored_fit = dict(before.context.get("fit_kwargs", {})) if before is not None else None
    if space.fit_kwargs is not None and stored_fit is not None and space.fit_kwargs != stored_fit:
        raise StudyConfigError(f"was created with fit arguments {stored_fit}, got {space.fit_kwargs}; expected the "
                               "same to resume (or fit_kwargs=None)", source=f"study '{study_name}'",
                               field="fit_kwargs")
    prepare_study(store, config, space, dataset.fingerprint, train_documents=len(dataset.x_train),
                  fit_kwargs=space.fit_kwargs or {})
    stored = read_study(store, study_name)
    study = open_study(store, stored, space, worker_index,
                       reports_per_epoch=stored.config.reports_per_epoch(len(dataset.x_train)))
    objective = Objective(stored.config, space, stored.context, dataset, None,
                          artifact_store_for(url) if save_models else None, log=log)
    run_objective(study, objective, target=n_trials, timeout=timeout, log=log, callbacks=callbacks)
    return study


def summary(study: optuna.Study, top: int = 5) -> str:
    """Trial counts by state and the best ``top`` complete trials with their hyperparameters."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = ", ".join(f"{s.name.lower()} {n}" for s in TrialState if (n := sum(t.state == s for t in trials)))
    lines = [f"study '{study.study_name}': {counts or 'no trials'}"]
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -(t.value or 0.0))[:top]
    for t in done:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        lines.append(f"  trial {t.number}: val micro-F1 {t.value:.4f}  {params}")
    return "\n".join(lines)
