from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from search.errors import StorageError
from storage import create_storage

WORKER = """
import sys
import optuna
from storage import create_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[2], storage=create_storage(sys.argv[1]))

def objective(trial):
    trial.set_user_attr("pid", 1)
    trial.report(0.5, 0)
    return trial.suggest_float("x", 0.0, 1.0)

study.optimize(objective, n_trials=int(sys.argv[3]))
"""


def _pragma(storage: optuna.storages.RDBStorage, name: str) -> object:
    with storage.engine.connect() as connection:
        return connection.execute(sqlalchemy.text(f"PRAGMA {name}")).scalar()


def test_sqlite_uses_wal_and_busy_timeout(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert _pragma(storage, "journal_mode") == "wal"
    assert _pragma(storage, "busy_timeout") == 30000
    storage.engine.dispose()


def test_sqlite_settings_survive_pickling(tmp_path: Path) -> None:
    # RDBStorage re-creates its engine when unpickled (e.g. sent to a worker process).
    storage = pickle.loads(pickle.dumps(create_storage(f"sqlite:///{tmp_path / 'studies.db'}")))
    assert _pragma(storage, "journal_mode") == "wal"
    assert _pragma(storage, "busy_timeout") == 30000
    assert storage.get_heartbeat_interval() == 60
    storage.engine.dispose()


def test_relative_sqlite_path_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = create_storage("sqlite:///studies.db")
    optuna.create_study(study_name="here", storage=storage)
    storage.engine.dispose()
    assert (tmp_path / "studies.db").is_file()


def test_two_processes_write_the_same_sqlite_file(tmp_path: Path, child_env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=create_storage(url))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, "shared", "30"],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert "database is locked" not in stderr
        assert worker.returncode == 0, stderr
    study = optuna.load_study(study_name="shared", storage=create_storage(url))
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 60
    assert sorted(t.number for t in trials) == list(range(60))


def test_missing_directory_is_a_one_line_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        create_storage(f"sqlite:///{tmp_path / 'nowhere' / 'studies.db'}")
    message = str(info.value)
    assert "\n" not in message
    assert "does not exist" in message and "nowhere" in message
    assert not (tmp_path / "nowhere").exists()


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("this is not a database\n" * 100)
    with pytest.raises(StorageError) as info:
        create_storage(f"sqlite:///{bogus}")
    assert "file is not a database" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": 10, "grace_period": 10}, "grace_period"),
        ({"grace_period": -1}, "grace_period"),
        ({"max_retry": -1}, "max_retry"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_bad_settings(tmp_path: Path, kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(StorageError) as info:
        create_storage(f"sqlite:///{tmp_path / 'studies.db'}", **kwargs)
    assert info.value.field == field
    assert not (tmp_path / "studies.db").exists()


def test_heartbeat_off(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 'studies.db'}", heartbeat_interval=None)
    assert storage.get_heartbeat_interval() is None
    assert storage.get_heartbeat_stale_trial_callback() is None
    storage.engine.dispose()


def test_optuna_cli_reads_the_study(tmp_path: Path, child_env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="cli-check", storage=create_storage(url))
    study.optimize(lambda trial: trial.suggest_int("n", 1, 3) * 10.0, n_trials=3)
    optuna_cli = "import sys; from optuna.cli import main; sys.exit(main())"  # the `optuna` console script
    result = subprocess.run(
        [sys.executable, "-c", optuna_cli, "trials", "--study-name", "cli-check", "--storage", url, "-f", "json"],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["number"] for row in rows] == [0, 1, 2]
    assert [row["state"] for row in rows] == ["COMPLETE"] * 3
    assert [row["value"] for row in rows] == [t.value for t in study.trials]
