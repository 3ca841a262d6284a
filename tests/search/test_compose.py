"""docker-compose.yml, Dockerfile, .env.example: parsed and checked without a Docker engine.

PyYAML comes with Optuna (one of its dependencies). With the ``docker compose`` plugin installed, the file
is also checked by Compose itself (``docker compose config``), else that test skips.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from clihelpers import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
APP_SERVICES = ("dashboard", "worker-gpu0", "worker-gpu1", "worker-cpu", "proxy")
GPU_WORKERS = ("worker-gpu0", "worker-gpu1")
_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: '{line}' is not KEY=VALUE"
            pairs[key] = value
    return pairs


def test_services_and_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "dashboard", *GPU_WORKERS, "proxy"} <= set(services)
    for name, service in services.items():
        assert "image" in service, name
        if name != "postgres":
            assert service["build"] == "." and service["image"] == services["dashboard"]["image"]
    assert set(compose["volumes"]) >= {"pgdata", "artifacts"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in APP_SERVICES:  # the dashboard shows the artifacts the workers upload
        assert "artifacts:/data/artifacts" in services[name]["volumes"], name
        assert services[name]["environment"]["SEARCH_ARTIFACTS_DIR"] == "/data/artifacts"


def test_postgres_has_a_healthcheck_and_reads_credentials_from_env_file(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["env_file"] == ".env"
    assert "environment" not in postgres  # nothing hard-coded beside the env_file
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "pg_isready" in test[1]
    assert "$${POSTGRES_USER}" in test[1]  # the container's variable, not compose's interpolation
    for key in ("interval", "timeout", "retries"):
        assert key in postgres["healthcheck"]


def test_workers_and_dashboard_point_at_the_postgres_service(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        url = service["environment"]["OPTUNA_STORAGE"]
        assert url.startswith("postgresql+psycopg://"), (name, url)
        assert "@postgres:5432/" in url, (name, url)  # the compose service, by its name
        assert "${POSTGRES_PASSWORD:?" in url and "${POSTGRES_USER:?" in url and "${POSTGRES_DB:?" in url
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    for name in ("worker-gpu0", "worker-gpu1", "worker-cpu"):
        command = compose["services"][name]["command"]
        assert command[:3] == ["python", "-m", "search.launch"] and "--study" in command
        assert "--storage" not in command  # $OPTUNA_STORAGE, so the password is not on a command line


def test_one_gpu_reservation_per_gpu_worker(compose: dict[str, Any]) -> None:
    seen = []
    for name in GPU_WORKERS:
        service = compose["services"][name]
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert len(device["device_ids"]) == 1
        seen += device["device_ids"]
        command = service["command"]
        assert command[command.index("--gpus") + 1] == "0"  # the container's one visible GPU
        assert service.get("init") is True and service["restart"] == "on-failure"
    assert seen == ["0", "1"]
    assert "deploy" not in compose["services"]["worker-cpu"]


def test_proxy_service_serves_the_grpc_storage_proxy(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert proxy["command"][:3] == ["python", "-m", "search.proxy"]
    assert proxy["command"][proxy["command"].index("--host") + 1] == "0.0.0.0"
    assert proxy["profiles"] == ["proxy"]  # started only on request
    assert any(port.endswith(":13000:13000") for port in proxy["ports"])


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (path, string) of a parsed YAML document, mapping keys included."""
    if isinstance(node, dict):
        return [item for k, v in node.items() for item in [(path, str(k)), *_strings(v, f"{path}.{k}")]]
    if isinstance(node, list):
        return [item for i, v in enumerate(node) for item in _strings(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def test_no_hard_coded_password(compose: dict[str, Any]) -> None:
    assert _env_example()["POSTGRES_PASSWORD"] not in COMPOSE.read_text()
    for path, text in _strings(compose):
        if path.endswith(".environment") and "PASSWORD" in text.upper():
            raise AssertionError(f"{path}: a password variable set in the compose file")
        if "://" in text:  # a URL: its credentials are variable references
            userinfo = text.split("://", 1)[1].rpartition("@")[0]
            assert _VARIABLE.sub("", userinfo) in ("", ":"), (path, text)


def test_env_example_defines_every_required_variable(compose: dict[str, Any]) -> None:
    example = _env_example()
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= set(example)
    for match in _VARIABLE.finditer(COMPOSE.read_text()):
        name, operator = match.group(1), match.group(2)
        if operator == ":?":  # required: compose refuses to start without it
            assert name in example, name
    gitignore = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in gitignore  # the real credentials are never committed


def test_dockerfile_builds_the_service_image() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions[0] == "FROM" and "USER" in instructions and "CMD" in instructions
    assert re.search(r'^RUN pip install "\.\[\$\{EXTRAS\}\]"$', text, re.MULTILINE)
    assert re.search(r"^ARG EXTRAS=.*postgres.*gpu", text, re.MULTILINE)
    for package in ("search", "spaces", "storage"):
        assert f"COPY {package} ./{package}" in text
    dockerignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ".env" in dockerignore and "*.db" in dockerignore  # no secrets or studies in the image


@pytest.mark.skipif(subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
                    if shutil.which("docker") else True, reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    proc = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE),
                           "--profile", "cpu", "--profile", "proxy", "config", "--quiet"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
