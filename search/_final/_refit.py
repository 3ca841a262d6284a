"""The refit: a trial's configuration trained again on train + validation, for the best trial alone or
for each member of the final ensemble (imports keras)."""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from search._final._record import FinalEnsemble, FinalRefit, FinalRefitEnsemble
from search.errors import ModelConfigError, StudyConfigError, TrialFailure
from search.record import TrialRecord

__all__ = ["refit_epochs", "refit_best", "refit_ensemble"]


def refit_epochs(record: TrialRecord, max_epochs: int) -> int:
    """The epochs a refit trains: the trial's best report's epoch, rounded (a report inside an epoch
    counts to the nearest whole one), at least 1; a trial that recorded none trains ``max_epochs``."""
    if record.best_epoch is None or not math.isfinite(record.best_epoch):
        return max_epochs
    return max(1, round(record.best_epoch))


def refit_best(study: optuna.Study, trial: FrozenTrial, *, config: Any, space: Any, context: dict[str, Any],
               dataset: Any, embedding: np.ndarray | None, artifact_store: Any,
               log: Callable[[str], None]) -> FinalRefit:
    """Train ``trial``'s model on train + valid with its seed for :func:`refit_epochs`, upload it as an
    artifact of ``study`` and return the record (the caller stores it)."""
    import keras
    from optuna.artifacts import upload_artifact

    from search.model import InputShapes
    from search.runtime import seed_everything

    record = TrialRecord.from_trial(trial)
    if record.threshold is None:
        raise StudyConfigError(f"trial {trial.number} recorded no tuned threshold; expected a trial the objective "
                               "finished", source=f"study '{study.study_name}'")
    epochs = refit_epochs(record, config.epochs)
    fixed = optuna.trial.FixedTrial(trial.params, number=trial.number)
    params = space.suggest(fixed, context)
    seed = int(record.seed if record.seed is not None else space.trial_seed(fixed, config.seed))
    shapes = InputShapes.of(dataset, embedding, config.embedding_dim)
    x = np.concatenate([dataset.x_train, dataset.x_valid])
    y = np.concatenate([dataset.y_train, dataset.y_valid]).astype("float32")
    log(f"refit: trial {trial.number} on {len(x)} train + valid documents for {epochs} epoch(s), seed {seed}")
    start = time.perf_counter()
    seed_everything(seed)
    keras.backend.clear_session()
    try:
        built = space.build(params, shapes, trial=fixed, context=context, memory_budget=config.memory_budget)
    except (ModelConfigError, TrialFailure) as exc:  # a keras-tuner build(hp) fails with TrialFailure
        raise StudyConfigError(f"trial {trial.number} cannot be built again: {exc}",
                               source=f"study '{study.study_name}'") from None
    space.fit(built, x, y, epochs=epochs, callbacks=[keras.callbacks.TerminateOnNaN()], seed=seed)
    if built.model.stop_training:
        # a failed step of the command, not of a worker: one line for the user, as bad input is
        raise StudyConfigError(f"the refit of trial {trial.number} stopped: its training loss was not finite; "
                               "expected a configuration that trains on train + valid (--no-refit and "
                               "--no-refit-ensemble leave the refits out)", source=f"study '{study.study_name}'")
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="search-refit-") as tmp:
        path = os.path.join(tmp, f"refit-trial-{trial.number}.keras")
        built.model.save(path)
        artifact_id = upload_artifact(artifact_store=artifact_store, file_path=path, study_or_trial=study)
    return FinalRefit(trial=trial.number, epochs=epochs, threshold=float(record.threshold), artifact_id=artifact_id,
                      train_documents=len(x), seconds=round(seconds, 1))


def refit_ensemble(study: optuna.Study, ensemble: FinalEnsemble, trials: Mapping[int, FrozenTrial], *,
                   done: Mapping[int, tuple[str, int]], config: Any, space: Any, context: dict[str, Any],
                   dataset: Any, embedding: np.ndarray | None, artifact_store: Any,
                   log: Callable[[str], None]) -> FinalRefitEnsemble:
    """Refit each distinct deep member of ``ensemble`` as :func:`refit_best` does. ``done``: refits
    already made, by trial number, as (artifact id, epochs): the best trial's refit, a member of an
    earlier ensemble refit. One serves where it trained the epochs this refit would (the same
    parameters, seed and epochs: it is trained the same way), so no member is trained twice. Returns the
    record (the caller stores it)."""
    artifact_ids: list[str] = []
    epochs: list[int] = []
    seconds = 0.0
    for number in ensemble.weights():
        if number not in trials:
            raise StudyConfigError(f"has no complete trial {number}, a member of its final ensemble; expected "
                                   "python -m search.finalize to select the ensemble again",
                                   source=f"study '{study.study_name}'")
        wanted = refit_epochs(TrialRecord.from_trial(trials[number]), config.epochs)
        if number in done and done[number][1] == wanted:
            log(f"ensemble refit: trial {number} was refit for {wanted} epoch(s) already; that model serves")
            artifact_ids.append(done[number][0])
            epochs.append(wanted)
            continue
        one = refit_best(study, trials[number], config=config, space=space, context=context, dataset=dataset,
                         embedding=embedding, artifact_store=artifact_store, log=log)
        artifact_ids.append(one.artifact_id)
        epochs.append(one.epochs)
        seconds += one.seconds
    return FinalRefitEnsemble(members=ensemble.members, artifact_ids=tuple(artifact_ids), epochs=tuple(epochs),
                              threshold=ensemble.threshold, train_documents=len(dataset.x_train) + len(dataset.x_valid),
                              seconds=round(seconds, 1), reference_picks=ensemble.reference_picks,
                              label_thresholds=ensemble.label_thresholds)
