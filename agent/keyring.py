"""The secret key ring (EA_SECRET_KEY): sessions and encryption of stored credentials."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from agent.config import ConfigError, Settings

LOCAL_KEY_FILE = "secret.key"


class KeyRing:
    """Fernet keys, the first current; older ones still decrypt until rotated away."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError("EA_SECRET_KEY holds no key.")
        try:
            self._fernets = [Fernet(k.encode()) for k in keys]
        except ValueError as exc:
            raise ConfigError(
                "EA_SECRET_KEY must be comma-separated Fernet keys (32 url-safe base64 bytes each); generate one with "
                "`python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`."
            ) from exc
        self._multi = MultiFernet(self._fernets)
        self.session_secret = hashlib.sha256(b"session:" + keys[0].encode()).hexdigest()

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the current key."""
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt with any key of the ring; ValueError when none fits."""
        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt with any key in EA_SECRET_KEY") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the current key."""
        return self._multi.rotate(token.encode()).decode()


def load_keyring(settings: Settings) -> KeyRing:
    """The configured ring; in local mode a key generated once into EA_DATA_DIR when none is set."""
    keys = settings.secret_keys()
    if not keys and settings.local_mode:
        keys = [_local_key(settings.data_dir / LOCAL_KEY_FILE)]
    return KeyRing(keys)


def _local_key(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
