"""The dashboard shows the objective's own artifacts: a real study's learning curve and attention heatmap,
and the best trial's note, in headless Chromium (Selenium)."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta

from browserhelpers import chromium, running_dashboard
from search.plots import ATTENTION_HEATMAP_PNG, LEARNING_CURVE_PNG
from search.record import TrialRecord

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver



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
            assert TrialRecord.from_trial(trial).artifact_error is None
        best = study.best_trial
        note = get_note(optuna.trial.Trial(study, best._trial_id))
        assert f"trial {best.number}" in note and f"{best.value:.4f}" in note


@pytest.fixture
def dashboard(studies: Path, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(f"sqlite:///{studies / 'studies.db'}", tmp_path) as (base, _):
        yield base


@pytest.fixture
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    with chromium(tmp_path / "profile", monkeypatch) as chrome:
        yield chrome


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
