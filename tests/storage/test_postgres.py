from __future__ import annotations

import optuna
import pytest

from search.errors import StorageError
from storage import create_storage

pytestmark = pytest.mark.postgres


def test_create_write_read(postgres_url: str, pg_study_name: str) -> None:
    writer = create_storage(postgres_url)
    assert isinstance(writer, optuna.storages.RDBStorage)
    assert writer.engine.pool._pre_ping is True
    study = optuna.create_study(study_name=pg_study_name, storage=writer, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(2):
            trial.report(x * (step + 1), step)
        trial.set_user_attr("host", "test")
        return x

    study.optimize(objective, n_trials=4)
    writer.engine.dispose()

    reader = create_storage(postgres_url, heartbeat_interval=None, pool_size=2)
    loaded = optuna.load_study(study_name=pg_study_name, storage=reader)
    assert [t.state for t in loaded.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert loaded.best_value == max(t.params["x"] for t in loaded.trials)
    assert loaded.trials[0].intermediate_values == {0: loaded.trials[0].value, 1: 2 * loaded.trials[0].value}
    assert loaded.trials[0].user_attrs == {"host": "test"}
    reader.engine.dispose()


def test_bare_postgresql_url_uses_psycopg3(postgres_url: str, pg_study_name: str) -> None:
    bare = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    storage = create_storage(bare, heartbeat_interval=None)
    assert storage.engine.dialect.driver == "psycopg"
    optuna.create_study(study_name=pg_study_name, storage=storage)
    storage.engine.dispose()


def test_unreachable_server_is_one_line_storage_error() -> None:
    with pytest.raises(StorageError) as info:
        create_storage("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("storage: cannot open postgresql+psycopg://postgres:***@127.0.0.1:1/test: ")
    assert "Connection refused" in message or "connection failed" in message
    assert "hunter2" not in message
    assert "Background on this error" not in message


def test_missing_database_is_storage_error(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database_for_search_tests"
    with pytest.raises(StorageError, match='database "no_such_database_for_search_tests" does not exist'):
        create_storage(url)


def test_missing_driver_is_storage_error() -> None:
    try:
        import pymysql  # noqa: F401
    except ImportError:
        with pytest.raises(StorageError, match="driver is not installed.*pymysql"):
            create_storage("mysql+pymysql://user@127.0.0.1:1/db")
    else:
        pytest.skip("pymysql is installed")
