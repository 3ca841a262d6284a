"""Helpers for the browser tests: a dashboard subprocess and headless Debian Chromium (Selenium)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("OPTUNA_STORAGE", None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_dashboard(storage_url: str, folder: Path) -> Iterator[tuple[str, Path]]:
    """``python -m search.dashboard`` on ``storage_url``: yields (base URL, its stdout file); always stopped."""
    port = free_port()
    out, err = folder / "dashboard.out", folder / "dashboard.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "search.dashboard", "--storage", storage_url,
                                    "--port", str(port)], cwd=folder, env=child_env(), stdout=stdout, stderr=stderr)
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
        yield base, out
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def chromium(profile: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator["WebDriver"]:
    """Headless Debian Chromium through Selenium; skip (fail under CI=true) when it is not installed."""
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
                     "--no-first-run", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
