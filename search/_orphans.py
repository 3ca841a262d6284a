"""RUNNING trials whose worker process is gone: find them by the worker record, fail them, retry them.

Heartbeats find a dead worker's trial only after the grace period, and not at all through a gRPC storage
proxy. What runs on the same machine can do better: every trial records its worker
(:attr:`search.record.TrialRecord.worker`: host, pid, boot id, PID namespace; see
:func:`search.runtime.process_identity`), so

* the launcher fails the trials of a worker it saw exit (``pids``), at once, and re-queues them;
* a worker starting up fails the trials of dead workers that ran in its own PID namespace (for example
  its predecessor in a restarted container), and, after a storage error, its own interrupted trial.

Keras-free (the launcher uses it).
"""
from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.record import TrialRecord
from search.runtime import process_identity
from storage import fail_and_retry

__all__ = ["same_pid_space", "pid_alive", "orphaned_trials", "fail_orphans"]


def same_pid_space(record: Mapping[str, Any], identity: Mapping[str, Any]) -> bool:
    """Whether the worker ``record`` ran where ``identity``'s process can see its pid.

    Same host name; and the same boot id and PID namespace where both sides recorded them (Linux), so
    two machines or containers that share a host name are still told apart.
    """
    if not record.get("host") or record.get("host") != identity.get("host"):
        return False
    for key in ("boot_id", "pid_namespace"):
        mine, theirs = identity.get(key), record.get(key)
        if mine is not None and theirs is not None and mine != theirs:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as alive until its parent reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def orphaned_trials(study: optuna.Study, pids: Collection[int] | None = None,
                    identity: Mapping[str, Any] | None = None) -> list[FrozenTrial]:
    """RUNNING trials whose worker ran in this PID space and is gone.

    ``pids`` given: the worker's pid is one of them (processes the caller knows have stopped).
    ``pids`` None: the worker's pid no longer exists, or is this very process (a trial recorded under
    our own pid that we are not running: a predecessor's in a restarted container, or our own after
    ``study.optimize`` was cut short by a storage error).
    """
    identity = identity or process_identity()
    found = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        record = TrialRecord.from_trial(trial).worker
        if not isinstance(record, Mapping) or not same_pid_space(record, identity):
            continue
        pid = record.get("pid")
        if not isinstance(pid, int):
            continue
        gone = pid in pids if pids is not None else (pid == identity.get("pid") or not pid_alive(pid))
        if gone:
            found.append(trial)
    return found


def fail_orphans(study: optuna.Study, reason: str, *, pids: Collection[int] | None = None,
                 retry: bool = True) -> list[int]:
    """Fail :func:`orphaned_trials` with ``reason`` (re-queued if ``retry``); return their numbers."""
    return [trial.number for trial in orphaned_trials(study, pids)
            if fail_and_retry(study, trial, reason, retry=retry)]
