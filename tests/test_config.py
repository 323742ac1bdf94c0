"""Configuration: refuse unsafe settings with a message that says what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, Settings
from agent.keyring import KeyRing, load_keyring

GOOGLE = {"GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": "s"}


def test_placeholder_secret_is_refused_outside_local_mode(tmp_path: Path) -> None:
    for value in (None, "changeme", "changethis"):
        settings = Settings(**GOOGLE, EA_SECRET_KEY=value, EA_DATA_DIR=tmp_path)
        with pytest.raises(ConfigError, match="EA_SECRET_KEY"):
            settings.check()


def test_local_mode_binds_loopback_only(tmp_path: Path) -> None:
    Settings(EA_HOST="127.0.0.1", EA_DATA_DIR=tmp_path).check()
    with pytest.raises(ConfigError, match="loopback"):
        Settings(EA_HOST="0.0.0.0", EA_DATA_DIR=tmp_path).check()


def test_serve_refuses_public_bind_in_local_mode(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "EA_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 2
    assert "loopback" in proc.stderr


def test_local_key_is_generated_once_and_reused(tmp_path: Path) -> None:
    ring = load_keyring(Settings(EA_DATA_DIR=tmp_path))
    token = ring.encrypt("refresh-token")
    assert "refresh-token" not in token
    again = load_keyring(Settings(EA_DATA_DIR=tmp_path))
    assert again.decrypt(token) == "refresh-token"
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_key_rotation_keeps_old_tokens_readable() -> None:
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = KeyRing([old]).encrypt("secret")
    ring = KeyRing([new, old])
    assert ring.decrypt(token) == "secret"
    rotated = ring.rotate(token)
    assert KeyRing([new]).decrypt(rotated) == "secret"
    with pytest.raises(ConfigError, match="Fernet"):
        KeyRing(["not-a-key"])


def test_base_url_follows_the_port() -> None:
    assert Settings(EA_PORT=9001).base_url == "http://127.0.0.1:9001"
    assert Settings(EA_BASE_URL="https://ea.example.com/").base_url == "https://ea.example.com"
