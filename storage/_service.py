"""Optuna's storages as this project opens them: fixes for several worker processes on one study.

:class:`ServiceRDBStorage` (SQL databases):

* SQLite: every transaction starts with ``BEGIN IMMEDIATE``. Python's sqlite3 driver otherwise runs the
  reads before a transaction's first write outside any transaction, so two processes can both read a
  WAITING trial and both set it RUNNING (Optuna's ``SELECT ... FOR UPDATE`` is a no-op on SQLite): an
  enqueued or retried trial then runs twice. With ``BEGIN IMMEDIATE`` the read and the write hold
  SQLite's write lock together (other writers wait, up to the busy timeout). The driver's own BEGIN is
  turned off with ``isolation_level=None`` in ``connect_args`` (see :mod:`storage._engine`).
* Heartbeats: a database error while recording one heartbeat (a dropped connection, a restarting
  server) is logged and the next beat tries again. Optuna's heartbeat thread would otherwise die with
  the exception, and the trial, still running, would be failed as stale after the grace period.

Both it and :class:`ServiceGrpcStorageProxy` remember the trials this process set RUNNING and has not
finished (:meth:`~OwnTrials.running_trial_ids`). When a storage error cuts ``study.optimize`` short, the
worker fails and re-queues exactly those: a trial created by ``study.ask()`` whose next query failed has
neither a worker record nor a heartbeat yet, and nothing else would ever finish it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna import logging
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import GrpcStorageProxy, RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["OwnTrials", "ServiceRDBStorage", "ServiceGrpcStorageProxy"]

_logger = logging.get_logger(__name__)


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class OwnTrials:
    """Mixin for a storage: the ids of the trials this object set RUNNING and has not finished since."""

    _own_running: set[int]

    def running_trial_ids(self) -> list[int]:
        """Trials this process started and did not finish (another process may have failed them since)."""
        return sorted(getattr(self, "_own_running", ()))

    def _own(self) -> set[int]:
        if not hasattr(self, "_own_running"):
            self._own_running = set()
        return self._own_running

    def _created(self, trial_id: int, template_trial: FrozenTrial | None) -> None:
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self._own().add(trial_id)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
                               ) -> bool:
        try:
            changed = super().set_trial_state_values(trial_id, state, values)  # type: ignore[misc]
        except UpdateFinishedTrialError:
            self._own().discard(trial_id)
            raise
        if changed and state == TrialState.RUNNING:
            self._own().add(trial_id)
        elif changed and state.is_finished():
            self._own().discard(trial_id)
        return changed


class ServiceGrpcStorageProxy(OwnTrials, GrpcStorageProxy):
    """:class:`optuna.storages.GrpcStorageProxy` that remembers its own running trials."""

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        self._created(trial_id, template_trial)
        return trial_id


class ServiceRDBStorage(OwnTrials, RDBStorage):
    """:class:`optuna.storages.RDBStorage` with SQLite ``BEGIN IMMEDIATE``, resilient heartbeats, and its
    own running trials remembered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._install_transaction_mode()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)  # re-creates the engine: its event listeners must be added again
        self._install_transaction_mode()

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        # Optuna's cached storage (what a study uses) calls this, not create_new_trial.
        frozen = super()._create_new_trial(study_id, template_trial)
        self._created(frozen._trial_id, template_trial)
        return frozen

    def _install_transaction_mode(self) -> None:
        if self.engine.dialect.name == "sqlite" and not event.contains(self.engine, "begin", _begin_immediate):
            event.listen(self.engine, "begin", _begin_immediate)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except (StorageInternalError, SQLAlchemyError) as exc:
            reason = exc.__cause__ if exc.__cause__ is not None else exc
            _logger.warning(f"heartbeat of trial id {trial_id} not recorded ({type(reason).__name__}); "
                            f"the next beat tries again")
