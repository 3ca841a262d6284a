from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest

from browserhelpers import child_env, chromium, running_dashboard
from search._cli import run_main
from search.dashboard import main
from storage import artifact_store_for, create_storage

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

STUDY = "dashboard-demo"
ARTIFACT = "validation_curve.png"
N_TRIALS = 6


def _make_study(folder: Path) -> str:
    """A finished SQLite study: 6 trials with 3 intermediate values each, one PNG artifact."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    url = f"sqlite:///{folder / 'studies.db'}"
    storage = create_storage(url)
    store = artifact_store_for(url)
    png = folder / ARTIFACT
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [0.31, 0.52, 0.58], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("micro-F1")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(3):
            trial.report(x * (step + 1) / 3, step)
        if trial.number == 0:
            optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(png), study_or_trial=trial)
        return x

    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    study.optimize(objective, n_trials=N_TRIALS)
    storage.engine.dispose()
    return url


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(base URL, stdout file)`` of ``python -m search.dashboard`` serving a small study."""
    with running_dashboard(_make_study(tmp_path), tmp_path) as served:
        yield served


@pytest.fixture
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    with chromium(tmp_path / "chromium-profile", monkeypatch) as chrome:
        yield chrome


def _save(driver: WebDriver, name: str, folder: Path) -> Path:
    path = folder / name
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    target = os.environ.get("SEARCH_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


@pytest.mark.browser
def test_dashboard_in_a_browser(driver: WebDriver, dashboard: tuple[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, out = dashboard
    assert f"open {base}/dashboard/" in out.read_text()

    wait = WebDriverWait(driver, 20)
    body = (By.TAG_NAME, "body")

    # Study list: the study is there.
    driver.get(f"{base}/dashboard")
    wait.until(ec.text_to_be_present_in_element(body, STUDY))

    # Study page: the intermediate-values plot has one line per trial.
    driver.get(f"{base}/dashboard/studies/1")
    heading = wait.until(
        ec.presence_of_element_located((By.XPATH, "//*[normalize-space(text())='Intermediate values']"))
    )
    card = heading.find_element(By.XPATH, "ancestor::*[.//*[contains(@class,'js-plotly-plot')]][1]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
    wait.until(lambda _: len(card.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace")) == N_TRIALS)
    legend = card.find_element(By.CSS_SELECTOR, ".legend").text
    assert all(f"trial #{n}" in legend for n in range(N_TRIALS)), legend
    overview = _save(driver, "dashboard_intermediate_values.png", tmp_path)

    # Trials page: the trial count, and trial 0's uploaded artifact by its file name.
    driver.get(f"{base}/dashboard/studies/1/trials")
    wait.until(ec.text_to_be_present_in_element(body, f"{N_TRIALS} Trials"))
    wait.until(ec.text_to_be_present_in_element(body, ARTIFACT))
    image = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "img[src*='/artifacts/']")))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    trials = _save(driver, "dashboard_trials.png", tmp_path)
    assert overview.stat().st_size > 10_000 and trials.stat().st_size > 10_000


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--storage URL", "--host HOST", "--port PORT", "--artifacts DIR"):
        assert flag in text
    assert "$OPTUNA_STORAGE" in text and "127.0.0.1" in text and "8080" in text


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--storage", "redis://localhost"], "--storage: unsupported storage URL scheme 'redis://'"),
        (["--storage", "sqlite:///missing.db"], "--storage: SQLite file"),
        (["--port", "70000"], "expected a port number 1-65535, got 70000"),
        (["--port", "http"], "expected a port number 1-65535, got 'http'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--storage", "postgresql+psycopg://postgres:pw@127.0.0.1:1/test"], "cannot open"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    assert run_main(main, argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert fragment in captured.err
    assert "pw@" not in captured.err
    assert list(tmp_path.iterdir()) == []  # no store, no artifact folder


def test_default_storage_comes_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTUNA_STORAGE", f"sqlite:///{tmp_path / 'nope.db'}")
    assert run_main(main, []) == 2
    assert capsys.readouterr().err.startswith("error: $OPTUNA_STORAGE: SQLite file")


def test_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="x", storage=create_storage(url))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "search.dashboard", "--storage", url, "--port", str(port)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --host/--port: cannot listen on 127.0.0.1:") and "in use" in last
    assert "Traceback" not in result.stderr
