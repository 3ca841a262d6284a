"""The dashboard shows the objective's own artifacts: a real study's learning curve and attention heatmap,
and the best trial's note, in headless Chromium (Selenium)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta

from search.plots import ATTENTION_HEATMAP_PNG, LEARNING_CURVE_PNG

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

REPO_ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_finished_trial_has_its_plots(studies: Path) -> None:
    """Without a browser: the PNGs are artifacts of each trial; the best trial has the note."""
    from optuna_dashboard import get_note

    url = f"sqlite:///{studies / 'studies.db'}"
    for name in ("attn", "ablation"):
        study = optuna.load_study(study_name=name, storage=url)
        for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            files = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
            assert LEARNING_CURVE_PNG in files and files[LEARNING_CURVE_PNG].mimetype == "image/png"
            attends = trial.params.get("attention_position", "none") not in ("none", "pooled")
            assert (ATTENTION_HEATMAP_PNG in files) == attends, (name, trial.number, sorted(files))
            assert "artifact_error" not in trial.user_attrs
        best = study.best_trial
        note = get_note(optuna.trial.Trial(study, best._trial_id))
        assert f"trial {best.number}" in note and f"{best.value:.4f}" in note


@pytest.fixture
def dashboard(studies: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", ""))
                                                      if p))
    env.pop("OPTUNA_STORAGE", None)
    err = tmp_path / "dashboard.err"
    with err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "search.dashboard", "--storage",
                                    f"sqlite:///{studies / 'studies.db'}", "--port", str(port)],
                                   cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"dashboard exited with {process.returncode}: {err.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dashboard did not answer within 30 s: {err.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    """Headless Debian Chromium (as tests/search/test_dashboard.py); skip, or fail under CI=true, without it."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        reason = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must install them (scripts/test.sh does)")
        pytest.skip(f"{reason}: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.mark.browser
def test_learning_curve_in_the_dashboard(driver: WebDriver, dashboard: str, studies: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    study = optuna.load_study(study_name="attn", storage=f"sqlite:///{studies / 'studies.db'}")
    study_id = study._study_id
    wait = WebDriverWait(driver, 30)
    body = (By.TAG_NAME, "body")
    driver.get(f"{dashboard}/dashboard/studies/{study_id}/trials")
    wait.until(ec.text_to_be_present_in_element(body, LEARNING_CURVE_PNG))
    image = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "img[src*='/artifacts/']")))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    width = driver.execute_script("return arguments[0].naturalWidth", image)
    assert width > 300  # the learning curve PNG itself, not a placeholder icon
    shot = tmp_path / "dashboard_learning_curve.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    target = os.environ.get("SEARCH_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)
