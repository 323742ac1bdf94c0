"""The `email-assistant` command as a subprocess: --version, purpose lines, doctor, and LANGSMITH_* from .env."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from server.cli import build_parser, export_tracing_env
from tests.fakes.google_oidc import FakeGoogleOIDC
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.scripted_model import ScriptedModel
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRUBBED = ("OPENAI_", "EA_", "GOOGLE_", "LANGSMITH_", "LANGCHAIN_", "PUBSUB_", "DATABASE_URL")


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real command in a clean environment (no .env of the checkout: cwd is a scratch folder)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env={**clean, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def lines(output: str) -> dict[str, tuple[str, str]]:
    """Doctor lines by check name: (status, message)."""
    found: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        parts = line.split("  ")
        if parts[0].strip() in ("ok", "warn", "fail"):
            rest = [p for p in parts[1:] if p]
            found[rest[0].strip()] = (parts[0].strip(), "  ".join(rest[1:]).strip())
    return found


@pytest.fixture
def model_env(model: tuple[FakeOpenAI, ScriptedModel], tmp_path: Path) -> dict[str, str]:
    fake, _ = model
    return {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MODEL": "fake-model",
            "EA_DATA_DIR": str(tmp_path / "data")}


def test_version_from_package_metadata(tmp_path: Path) -> None:
    result = run_cli("--version", env={}, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"email-assistant {version('email-assistant')}"


def test_every_command_has_a_purpose_line(tmp_path: Path) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    purposes = {a.dest: a.help for a in sub._choices_actions}
    assert set(purposes) == set(sub.choices) >= {"serve", "worker", "migrate", "rotate-key", "doctor"}
    helped = run_cli("--help", env={}, cwd=tmp_path).stdout
    for name, purpose in purposes.items():
        assert purpose and len(purpose) > 15, name
        assert purpose.split()[0] in helped
        assert run_cli(name, "--help", env={}, cwd=tmp_path).returncode == 0


def test_doctor_all_ok(database_url: str, model: tuple[FakeOpenAI, ScriptedModel], model_env: dict[str, str],
                       tmp_path: Path) -> None:
    fake, _ = model
    result = run_cli("doctor", env={**model_env, "DATABASE_URL": database_url}, cwd=tmp_path)
    found = lines(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("settings", "secret", "bind", "base url", "database", "migrations", "model", "google", "langsmith"):
        assert found[name][0] == "ok", (name, found.get(name), result.stdout)
    assert found["migrations"][1].startswith("all ")
    assert "fake-model" in found["model"][1] and "answered" in found["model"][1]
    assert "0 failed" in result.stdout
    assert len(fake.requests) == 1  # one cheap call
    request = fake.requests[0]
    assert 1 in (request.get("max_tokens"), request.get("max_completion_tokens"))


def test_doctor_model_failing(database_url: str, model: tuple[FakeOpenAI, ScriptedModel],
                              model_env: dict[str, str], tmp_path: Path) -> None:
    fake, _ = model
    fake.fail_always(500)
    result = run_cli("doctor", env={**model_env, "DATABASE_URL": database_url}, cwd=tmp_path)
    found = lines(result.stdout)
    assert result.returncode == 1
    status, message = found["model"]
    assert status == "fail" and "Error code: 500" in message and "OPENAI_BASE_URL" in message
    assert found["database"][0] == "ok" and "1 failed" in result.stdout
    assert len(fake.requests) == 1  # no retries behind the one line


def test_doctor_database_unreachable(model_env: dict[str, str], tmp_path: Path) -> None:
    url = f"postgresql://ea:s3cret-pw@127.0.0.1:{free_port()}/email_assistant"
    result = run_cli("doctor", env={**model_env, "DATABASE_URL": url}, cwd=tmp_path)
    found = lines(result.stdout)
    assert result.returncode == 1
    status, message = found["database"]
    assert status == "fail" and "cannot connect to 127.0.0.1:" in message and "DATABASE_URL" in message
    assert "migrations" not in found
    assert found["model"][0] == "ok"
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_doctor_pending_migrations_and_no_model_are_warnings(empty_database_url: str, tmp_path: Path) -> None:
    result = run_cli("doctor", env={"DATABASE_URL": empty_database_url, "EA_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    found = lines(result.stdout)
    assert result.returncode == 0, result.stdout
    assert found["migrations"][0] == "warn" and "pending" in found["migrations"][1]
    assert "email-assistant migrate" in found["migrations"][1]
    assert found["model"][0] == "warn" and "OPENAI_API_KEY" in found["model"][1]


def test_doctor_google_settings(database_url: str, model_env: dict[str, str], tmp_path: Path) -> None:
    with FakeGoogleOIDC() as oidc:
        google = {**model_env, "DATABASE_URL": database_url, "GOOGLE_CLIENT_ID": oidc.client_id,
                  "GOOGLE_CLIENT_SECRET": oidc.client_secret, "EA_SECRET_KEY": Fernet.generate_key().decode(),
                  "EA_BASE_URL": "https://outreach.example.com", "EA_GOOGLE_DISCOVERY_URL": oidc.discovery_url}
        good = run_cli("doctor", env=google, cwd=tmp_path)
        found = lines(good.stdout)
        assert good.returncode == 0, good.stdout
        assert found["google"][0] == "ok" and oidc.issuer in found["google"][1]
        assert found["settings"] == ("ok", "Google mode") and found["pubsub"][0] == "ok"

        lonely = run_cli("doctor", env={**google, "EA_PUBSUB_TOPIC": "projects/p/topics/gmail"}, cwd=tmp_path)
        assert lonely.returncode == 0 and lines(lonely.stdout)["pubsub"][0] == "warn"
        half_push = run_cli("doctor", env={**google, "EA_PUBSUB_TOPIC": "projects/p/topics/gmail",
                                           "EA_PUBSUB_PUSH_AUDIENCE": "https://outreach.example.com/webhooks"},
                            cwd=tmp_path)
        assert half_push.returncode == 1 and "EA_PUBSUB_PUSH_SERVICE_ACCOUNT" in lines(half_push.stdout)["pubsub"][1]
        bad_topic = run_cli("doctor", env={**google, "EA_PUBSUB_TOPIC": "gmail"}, cwd=tmp_path)
        assert bad_topic.returncode == 1 and lines(bad_topic.stdout)["pubsub"][0] == "fail"

    unreachable = run_cli("doctor", env={**google, "EA_GOOGLE_DISCOVERY_URL": f"http://127.0.0.1:{free_port()}/x"},
                          cwd=tmp_path)
    assert unreachable.returncode == 1 and "unreachable" in lines(unreachable.stdout)["google"][1]
    placeholder = run_cli("doctor", env={**google, "EA_SECRET_KEY": "changeme"}, cwd=tmp_path)
    found = lines(placeholder.stdout)
    assert placeholder.returncode == 1 and found["settings"][0] == "fail" and found["secret"][0] == "fail"
    half = {k: v for k, v in google.items() if k != "GOOGLE_CLIENT_SECRET"}
    result = run_cli("doctor", env=half, cwd=tmp_path)
    assert result.returncode == 1 and lines(result.stdout)["google"][1].startswith("GOOGLE_CLIENT_SECRET is unset")


def test_doctor_reports_bad_values_and_open_binds(database_url: str, model_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    env = {**model_env, "DATABASE_URL": database_url}
    bad_port = run_cli("doctor", env={**env, "EA_PORT": "eighty"}, cwd=tmp_path)
    assert bad_port.returncode == 1 and "EA_PORT" in lines(bad_port.stdout)["settings"][1]
    open_bind = run_cli("doctor", env={**env, "EA_HOST": "0.0.0.0"}, cwd=tmp_path)
    found = lines(open_bind.stdout)
    assert open_bind.returncode == 1 and found["bind"][0] == "fail" and found["settings"][0] == "fail"
    allowed = run_cli("doctor", env={**env, "EA_HOST": "0.0.0.0", "EA_LOCAL_ALLOWED_CLIENTS": "10.89.64.0/24"},
                      cwd=tmp_path)
    assert allowed.returncode == 0 and "10.89.64.0/24" in lines(allowed.stdout)["bind"][1]


def test_langsmith_values_in_dotenv_reach_the_command(database_url: str, model_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LANGSMITH_TRACING=false\nLANGSMITH_PROJECT=from-dotenv\n")
    env = {**model_env, "DATABASE_URL": database_url}
    result = run_cli("doctor", env=env, cwd=tmp_path)
    assert "project from-dotenv" in lines(result.stdout)["langsmith"][1], result.stdout
    overridden = run_cli("doctor", env={**env, "LANGSMITH_PROJECT": "from-environment"}, cwd=tmp_path)
    assert "project from-environment" in lines(overridden.stdout)["langsmith"][1]
    (tmp_path / ".env").write_text("LANGSMITH_TRACING=true\nLANGSMITH_PROJECT=traced\n")
    keyless = run_cli("doctor", env=env, cwd=tmp_path)
    assert lines(keyless.stdout)["langsmith"][0] == "warn"
    (tmp_path / ".env").write_text("LANGSMITH_TRACING=true\nLANGSMITH_PROJECT=traced\nLANGSMITH_API_KEY=lsv2-test\n"
                                   "LANGSMITH_ENDPOINT=http://127.0.0.1:9/langsmith\n")
    traced = lines(run_cli("doctor", env=env, cwd=tmp_path).stdout)["langsmith"]  # as LangSmith's own code reads them
    assert traced == ("ok", "tracing to project traced at http://127.0.0.1:9/langsmith"), traced


def test_export_tracing_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LANGSMITH_API_KEY=lsv2-test\nLANGSMITH_PROJECT=dotenv\nLANGCHAIN_TRACING_V2=true\n"
                        "OPENAI_API_KEY=sk-not-exported\n")
    for key in ("LANGSMITH_API_KEY", "LANGCHAIN_TRACING_V2", "OPENAI_API_KEY"):
        monkeypatch.setenv(key, "")  # recorded, so the exported values are undone after the test
        monkeypatch.delenv(key)
    monkeypatch.setenv("LANGSMITH_PROJECT", "real")
    assert sorted(export_tracing_env(env_file)) == ["LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY"]
    assert os.environ["LANGSMITH_API_KEY"] == "lsv2-test" and os.environ["LANGSMITH_PROJECT"] == "real"
    assert "OPENAI_API_KEY" not in os.environ  # Settings reads the rest of .env itself
    assert export_tracing_env(tmp_path / "missing.env") == []


def test_event_loop_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.config import ConfigError, Settings
    from server.cli import _use_uvloop

    assert _use_uvloop(Settings(EA_EVENT_LOOP="auto")) is True  # uvloop is a dependency on this platform
    assert _use_uvloop(Settings(EA_EVENT_LOOP="asyncio")) is False
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    assert _use_uvloop(Settings(EA_EVENT_LOOP="auto")) is False
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        _use_uvloop(Settings(EA_EVENT_LOOP="uvloop"))


@pytest.mark.parametrize(("setting", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio")])
def test_worker_runs_on_the_chosen_event_loop(database_url: str, model_env: dict[str, str], tmp_path: Path,
                                              setting: str, loop: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env.update(model_env, PYTHONPATH=str(ROOT), DATABASE_URL=database_url, EA_DATA_DIR=str(tmp_path / "data"),
               EA_EVENT_LOOP=setting)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "worker event loop:" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert f"worker event loop: {loop}" in log.read_text(), log.read_text()[-2000:]
