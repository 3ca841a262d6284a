from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta, upload_artifact

from search.errors import StorageError
from storage import artifact_dir_for, artifact_store_for, create_storage


def test_sqlite_gets_a_folder_beside_the_file(tmp_path: Path) -> None:
    store = artifact_store_for(f"sqlite:///{tmp_path / 'studies.db'}", environ={"SEARCH_ARTIFACTS_DIR": "/x"})
    assert isinstance(store, FileSystemArtifactStore)
    assert (tmp_path / "studies_artifacts").is_dir()


def test_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_dir_for("sqlite:///studies.db") == tmp_path / "studies_artifacts"


def test_server_database_uses_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert artifact_dir_for(url, environ={"SEARCH_ARTIFACTS_DIR": str(tmp_path / "env")}) == tmp_path / "env"
    monkeypatch.chdir(tmp_path)
    assert artifact_dir_for(url, environ={}) == tmp_path / "artifacts"
    assert artifact_dir_for("grpc://localhost:13000", environ={}) == tmp_path / "artifacts"


def test_root_overrides(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    artifact_store_for("sqlite:///studies.db", str(root))
    assert root.is_dir()


def test_bad_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="artifacts folder: cannot create"):
        artifact_store_for("sqlite:///studies.db", str(blocker / "sub"))
    with pytest.raises(StorageError, match="empty path"):
        artifact_store_for("sqlite:///studies.db", " ")


def test_upload_and_download_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = create_storage(url)
    store = artifact_store_for(url)
    study = optuna.create_study(study_name="art", storage=storage)
    source = tmp_path / "note.txt"
    source.write_text("hello")

    def objective(trial: optuna.Trial) -> float:
        upload_artifact(artifact_store=store, file_path=str(source), study_or_trial=trial)
        return 1.0

    study.optimize(objective, n_trials=1)
    (meta,) = get_all_artifact_meta(study.trials[0], storage=storage)
    assert meta.filename == "note.txt"
    target = tmp_path / "back.txt"
    download_artifact(artifact_store=store, artifact_id=meta.artifact_id, file_path=str(target))
    assert target.read_text() == "hello"
    assert (tmp_path / "studies_artifacts" / meta.artifact_id).is_file()
    storage.engine.dispose()
