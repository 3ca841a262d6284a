"""``run(hypermodel, ...)``: a keras-tuner hypermodel as a study of this service, in this process."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import TrialState

from search.config import RunConfig
from search.errors import StudyConfigError

__all__ = ["run", "summary"]

MAX_FAILURES_FACTOR = 2  # as search.worker: stop once failed trials exceed this many times the target


def run(hypermodel: Any, *, study_name: str, storage: str | None = None, n_trials: int = 12, epochs: int = 4,
        data: str = "debtags50", vocab_size: int = RunConfig.vocab_size, max_len: int = RunConfig.max_len,
        limit: int | None = RunConfig.limit, seed: int = 0, pruner: str = "hyperband", sampler: str = "tpe",
        fixed: Mapping[str, Any] | None = None, fit_kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None, save_models: bool = True, worker_index: int = 0,
        callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
        log: Callable[[str], None] = print) -> optuna.Study:
    """Run (or resume) study ``study_name`` whose trials build and fit ``hypermodel``; return the study.

    ``hypermodel``: a ``keras_tuner.HyperModel`` instance or subclass, a ``build(hp)`` function, or
    ``"module:attr"`` naming one. Everything else is the service's: the storage (``storage``, else
    ``$OPTUNA_STORAGE``, else ``sqlite:///studies.db``), TPE and the Hyperband pruner on the
    whole-validation tuned micro-F1 after every epoch (``val_micro_f1_tuned``), the trial records, the
    saved best model, the dashboard. Stops when the study has ``n_trials`` complete or pruned trials
    (a resumed study counts its earlier trials). ``fit_kwargs`` are the other arguments a keras-tuner
    user gives ``tuner.search`` (``{"batch_size": 64}``); ``fixed`` fixes hyperparameters by name.
    """
    from search._study import count_trials, open_study, prepare_study
    from search.data import load_dataset
    from search.errors import TrialFailure
    from search.kerastuner._space import HyperModelSpace
    from search.objective import Objective
    from storage import artifact_store_for, create_storage, resolve_storage_url

    if n_trials < 1:
        raise StudyConfigError(f"got {n_trials}; expected at least 1", source="n_trials")
    space = HyperModelSpace(hypermodel, fit_kwargs)
    if isinstance(hypermodel, str):
        space.hypermodel  # load it here (this process trains anyway): a bad spec fails before the store is touched
    config = RunConfig(study=study_name, space=space.name, data=data, vocab_size=vocab_size, max_len=max_len,
                       limit=limit, epochs=epochs, seed=seed, pruner=pruner, sampler=sampler,
                       save_models=save_models, fixed=dict(fixed or {}))
    if sampler == "grid":
        space.grid({})  # refused: a hypermodel has no grid before it runs
    url = resolve_storage_url(storage)
    dataset = load_dataset(config.data, config.data_settings())
    store = create_storage(url)
    prepare_study(store, config, space, dataset.fingerprint, fit_kwargs=space.fit_kwargs or {})
    study, config, context = open_study(store, study_name, space=space, worker_index=worker_index)
    stored_fit = context.get("fit_kwargs", {})
    if space.fit_kwargs is not None and space.fit_kwargs != stored_fit:
        raise StudyConfigError(f"was created with fit arguments {stored_fit}, got {space.fit_kwargs}; expected the "
                               "same to resume (or fit_kwargs=None)", source=f"study '{study_name}'",
                               field="fit_kwargs")
    objective = Objective(config, space, context, dataset, None, artifact_store_for(url) if save_models else None,
                          log=log)

    def enough(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if count_trials(study) >= n_trials:
            study.stop()
        failed = count_trials(study, (TrialState.FAIL,))
        if failed > MAX_FAILURES_FACTOR * max(n_trials, 10):  # as search.worker: a broken hypermodel stops
            log(f"stopping: {failed} failed trials (last: {trial.user_attrs.get('failure_reason')})")
            study.stop()

    if count_trials(study) >= n_trials:
        log(f"study '{study_name}' already has {n_trials} finished trials")
        return study
    study.optimize(objective, timeout=timeout, catch=(TrialFailure,), callbacks=[enough, *callbacks],
                   gc_after_trial=True)
    return study


def summary(study: optuna.Study, top: int = 5) -> str:
    """Trial counts by state and the best ``top`` complete trials with their hyperparameters."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = ", ".join(f"{s.name.lower()} {n}" for s in TrialState if (n := sum(t.state == s for t in trials)))
    lines = [f"study '{study.study_name}': {counts or 'no trials'}"]
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)[:top]
    for t in done:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        lines.append(f"  trial {t.number}: val micro-F1 {t.value:.4f}  {params}")
    return "\n".join(lines)
