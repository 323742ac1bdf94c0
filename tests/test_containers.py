"""The Dockerfile and docker-compose.yml, checked without Docker (none runs here), and local mode's client allow-list.

Static: compose parses, every variable is a real setting or a documented outside one, every command is a real
`email-assistant` subcommand, the healthcheck asks a real route, the image runs as non-root on a pinned Python.
Live: the image's HEALTHCHECK command run against a real server, and a real server bound to 0.0.0.0 in local mode
answering an allowed client and refusing another one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from dockerfile_parse import DockerfileParser
from pydantic import AliasChoices

from agent.config import ConfigError, Settings
from server.cli import build_parser
from server.clients import ClientAllowList, client_allowed
from tests.support import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# Variables read by something other than Settings, each documented by its owner.
EXTERNAL = {
    "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",  # CPython
    "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK",  # pip
    "PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",  # Google's client libraries
    "LANGSMITH_TRACING", "LANGSMITH_API_KEY", "LANGSMITH_PROJECT", "LANGSMITH_ENDPOINT",  # LangSmith
}
IMAGE_VARIABLES = {"postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}}  # the official image's
COMPOSE_VARIABLES = {"EA_COMPOSE_SUBNET"}  # interpolated by compose itself, documented in docs/containers.md
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def setting_aliases() -> set[str]:
    """Every environment name Settings reads."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            names.add(alias)
    return names


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the default."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run this project's image."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def instructions(dockerfile: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in dockerfile.structure if i["instruction"] == name]


def test_compose_parses_and_has_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(ours(compose)) == {"app", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert services["pubsub"]["profiles"] == ["pubsub"]
    assert "pubsub" in " ".join(services["pubsub"]["command"])
    assert set(compose["volumes"]) >= {"pgdata", "eadata"}
    for name, svc in services.items():
        assert svc.get("restart") in ("unless-stopped", "always"), f"{name} has no restart policy"
    for name, svc in ours(compose).items():
        assert "eadata:/data" in svc["volumes"], name
        assert svc["depends_on"]["db"]["condition"] == "service_healthy", name
        assert "pip" not in json.dumps(svc.get("command", "")), f"{name} installs at start"
    assert compose["services"]["worker"]["depends_on"]["app"]["condition"] == "service_healthy"


def service_env(svc: dict[str, Any], data_dir: Path) -> dict[str, str]:
    """The settings a service runs with: its environment, plus what its command's options override."""
    env = {k: interpolate(str(v)) for k, v in svc["environment"].items()}
    args = build_parser().parse_args(svc["command"])
    if getattr(args, "metrics_port", None) is not None:
        env["EA_WORKER_METRICS_PORT"] = str(args.metrics_port)
    return {**env, "EA_DATA_DIR": str(data_dir)}


def test_worker_scales_and_server_leaves_jobs_to_it(compose: dict[str, Any]) -> None:
    worker, app = compose["services"]["worker"], compose["services"]["app"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=3 needs both absent
    assert app["environment"]["EA_WORKER_IN_PROCESS"] == "false"
    assert Settings(**{k: interpolate(v) for k, v in app["environment"].items()}).worker_in_process is False


def test_every_worker_serves_metrics_on_the_compose_network(compose: dict[str, Any], tmp_path: Path) -> None:
    from server.metrics import worker_app

    worker = compose["services"]["worker"]
    settings = Settings(**service_env(worker, tmp_path))
    settings.check()  # the sandbox: local mode, metrics beyond loopback only to the compose subnet
    port = settings.worker_metrics_port
    assert port and settings.worker_metrics_host == "0.0.0.0"
    assert worker["expose"] == [str(port)], "reachable by a Prometheus on the compose network, not on the host"
    probe = " ".join(worker["healthcheck"]["test"])
    path = re.search(rf"http://127\.0\.0\.1:{port}(/\w+)'", probe).group(1)
    routes = {route.path for route in worker_app(settings).routes}
    assert {path, "/metrics"} <= routes
    assert worker["healthcheck"]["test"][0] == "CMD" and "curl" not in probe
    google = Settings(**service_env(worker, tmp_path), GOOGLE_CLIENT_ID="id", GOOGLE_CLIENT_SECRET="secret",
                      EA_SECRET_KEY=Fernet.generate_key().decode())
    google.check()  # with sign-in and no EA_METRICS_TOKEN the worker still starts; its /metrics answers 404
    for doc in ("containers.md", "deploy.md"):
        assert f"--metrics-port {port}" in (ROOT / "docs" / doc).read_text(), doc


def test_server_published_on_loopback_only(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert compose["services"]["app"]["ports"] == ["127.0.0.1:8000:8000"]


def test_every_variable_is_a_setting_or_documented(compose: dict[str, Any], dockerfile: DockerfileParser) -> None:
    known = setting_aliases() | EXTERNAL
    for name, svc in compose["services"].items():
        allowed = known if "build" in svc else IMAGE_VARIABLES.get(svc["image"].split(":")[0], set())
        unknown = set(svc.get("environment", {})) - allowed
        assert not unknown, f"{name} sets {unknown}, which nothing reads"
    assert set(dockerfile.envs) - known == set()
    used = set(INTERPOLATION.findall(COMPOSE.read_text()))
    assert {var for var, _ in used} <= COMPOSE_VARIABLES
    assert all(var in (ROOT / "docs" / "containers.md").read_text() for var in COMPOSE_VARIABLES)


def test_compose_settings_are_valid_and_allow_the_sandbox(compose: dict[str, Any], tmp_path: Path) -> None:
    subnet = interpolate(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    for name, svc in ours(compose).items():
        settings = Settings(**service_env(svc, tmp_path))
        settings.check()  # local mode, nothing configured: must start, even on 0.0.0.0
        assert settings.local_mode
        assert [str(n) for n in settings.local_client_networks()] == [subnet], name


def test_commands_are_real_subcommands(compose: dict[str, Any], dockerfile: DockerfileParser) -> None:
    parser = build_parser()
    entrypoint = json.loads(instructions(dockerfile, "ENTRYPOINT")[-1])
    assert entrypoint == ["email-assistant"]
    assert 'email-assistant = "server.cli:main"' in (ROOT / "pyproject.toml").read_text()
    commands = [json.loads(instructions(dockerfile, "CMD")[-1])]
    commands += [svc["command"] for svc in ours(compose).values()]
    for command in commands:
        assert isinstance(command, list), "exec form, so signals reach the process"
        args = parser.parse_args(command)  # SystemExit on an unknown command
        assert callable(args.func)
    assert {c[0] for c in commands} == {"serve", "worker"}


def test_image_is_slim_pinned_non_root_and_caches_dependencies(dockerfile: DockerfileParser) -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", dockerfile.baseimage), dockerfile.baseimage
    users = instructions(dockerfile, "USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    order = [(i["instruction"], i["value"]) for i in dockerfile.structure if i["instruction"] in ("COPY", "RUN")]
    first_copy = next(n for n, (kind, _) in enumerate(order) if kind == "COPY")
    assert order[first_copy][1].split()[0] == "pyproject.toml"
    assert "pip install -r" in order[first_copy + 1][1]  # dependencies before any code is copied
    code = [n for n, (kind, value) in enumerate(order) if kind == "COPY" and value.split()[0] in ("agent", "server")]
    install = next(n for n, (kind, value) in enumerate(order) if kind == "RUN" and "--no-deps" in value)
    assert first_copy + 1 < min(code) and install > max(code)
    assert json.loads(instructions(dockerfile, "VOLUME")[-1]) == ["/data"]
    assert dockerfile.envs["EA_DATA_DIR"] == "/data"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "tests"} <= set(ignored)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for needed in ("migrations", "prompts", "README.md", *(p.rstrip("*") for p in packages["include"])):
        assert any(v.split()[0] == needed for kind, v in order if kind == "COPY"), needed


def healthcheck_command(dockerfile: DockerfileParser) -> list[str]:
    """The exec-form command of the image's HEALTHCHECK."""
    value = instructions(dockerfile, "HEALTHCHECK")[-1]
    assert "--interval=" in value and "CMD [" in value
    command = json.loads(value.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"] and "curl" not in value  # slim images have no curl
    return command


def test_healthcheck_route_exists(dockerfile: DockerfileParser, tmp_path: Path) -> None:
    from server.app import create_app

    path = re.search(r"http://127\.0\.0\.1:%s(/[\w/]+)", healthcheck_command(dockerfile)[2]).group(1)
    app = create_app(Settings(EA_DATA_DIR=str(tmp_path)))
    assert "get" in app.openapi()["paths"][path]


def test_healthcheck_command_against_a_real_server(dockerfile: DockerfileParser, server: ServerProcess) -> None:
    command = [sys.executable, *healthcheck_command(dockerfile)[1:]]
    ok = subprocess.run(command, env={"EA_PORT": str(server.port)}, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(command, env={"EA_PORT": str(free_port())}, capture_output=True, timeout=30)
    assert down.returncode != 0 and b"Connection refused" in down.stderr


# Local mode inside a container: EA_LOCAL_ALLOWED_CLIENTS.

def test_allowed_clients_setting_is_checked(tmp_path: Path) -> None:
    base = {"EA_DATA_DIR": str(tmp_path), "EA_HOST": "0.0.0.0"}
    with pytest.raises(ConfigError, match="loopback only"):
        Settings(**base).check()
    Settings(**base, EA_LOCAL_ALLOWED_CLIENTS="10.89.64.0/24").check()
    for wide in ("0.0.0.0/0", "10.0.0.0/8", "8.8.8.0/24", "::/0", "not-a-network"):
        with pytest.raises(ConfigError, match="EA_LOCAL_ALLOWED_CLIENTS"):
            Settings(**base, EA_LOCAL_ALLOWED_CLIENTS=wide).check()


def test_client_allowed_rules() -> None:
    nets = Settings(EA_LOCAL_ALLOWED_CLIENTS="10.89.64.0/24, fd00:89::/64").local_client_networks()
    assert client_allowed(("127.0.0.1", 1), nets) and client_allowed(("127.0.0.2", 1), nets)
    assert client_allowed(("::1", 1), nets) and client_allowed(None, nets)
    assert client_allowed(("10.89.64.1", 1), nets) and client_allowed(("::ffff:10.89.64.9", 1), nets)
    assert client_allowed(("fd00:89::5", 1), nets)
    assert not client_allowed(("10.89.65.1", 1), nets)
    assert not client_allowed(("192.168.1.20", 1), nets) and not client_allowed(("testclient", 1), nets)
    assert not client_allowed(("10.89.64.1", 1), [])


async def test_middleware_refuses_websocket_from_outside() -> None:
    sent: list[dict[str, Any]] = []
    called: list[str] = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        called.append(scope["type"])

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = ClientAllowList(app, networks=[])
    await guard({"type": "websocket", "client": ("203.0.113.9", 5000), "path": "/", "headers": []}, None, send)
    assert sent == [{"type": "websocket.close", "code": 1008}] and called == []
    await guard({"type": "lifespan"}, None, send)
    assert called == ["lifespan"]


@pytest.fixture
def open_server(server_env: dict[str, str], tmp_path: Path) -> ServerProcess:
    """A local-mode server bound to every interface with the compose-style allow-list."""
    proc = ServerProcess(server_env, log_path=tmp_path / "server.log")
    proc.start(EA_HOST="0.0.0.0", EA_LOCAL_ALLOWED_CLIENTS="10.89.64.0/24")
    yield proc
    proc.stop()


def test_open_bind_answers_allowed_clients_only(open_server: ServerProcess) -> None:
    api = open_server.client
    assert api.get("/api/threads").status_code == 200  # loopback
    # uvicorn takes the client address from X-Forwarded-For when the peer is 127.0.0.1 (its default trust).
    assert api.get("/api/threads", headers={"X-Forwarded-For": "10.89.64.7"}).status_code == 200
    refused = api.get("/api/threads", headers={"X-Forwarded-For": "203.0.113.9"})
    assert refused.status_code == 403 and "local mode" in refused.json()["detail"]
    assert api.post("/api/assistants", json={}, headers={"X-Forwarded-For": "10.89.65.1"}).status_code == 403
    # The Host allow-list against DNS rebinding still holds for an allowed client.
    assert api.get("/api/threads", headers={"Host": "rebind.example"}).status_code == 400
    assert "refused a request from 203.0.113.9" in open_server.log()
