"""Encryption at rest for templates and face chips: AES-256-GCM under a data key.

The data key is derived (HKDF-SHA256) from `FACEGATE_SECRET_KEY`, or from a random key
generated once into `<data_dir>/keys/secret.key` with 0600 permissions. Every ciphertext
is bound to its owner through GCM's associated data, so a row copied onto another person
does not decrypt. A key check value stored in the database makes a wrong key fail loudly
at open instead of at the first decryption.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from facegate.errors import ConfigError, WrongKey

_VERSION = b"\x01"
_NONCE = 12


def new_secret() -> str:
    """A fresh random secret (32 bytes, URL-safe base64), as key files hold them."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def write_key_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` (0600, directory 0700), replacing it, and sync it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def load_or_create_key_file(path: Path) -> str:
    """Read the secret from `path`, creating it (0600, directory 0700) on first use."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = new_secret()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


class TemplateCipher:
    def __init__(self, secret: str | bytes) -> None:
        material = secret.encode() if isinstance(secret, str) else secret
        if len(material) < 16:
            raise ConfigError("FACEGATE_SECRET_KEY must be at least 16 characters")
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"facegate", info=b"facegate data key v1"
        ).derive(material)
        self._aead = AESGCM(self._key)

    def derive(self, purpose: str) -> bytes:
        """A separate 32-byte key for another use (e.g. the audit chain's MAC)."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"facegate", info=purpose.encode()).derive(
            self._key
        )

    @property
    def key_check(self) -> str:
        """A value that identifies the key without revealing it (stored beside the data)."""
        return hmac.new(self._key, b"facegate key check v1", hashlib.sha256).hexdigest()[:32]

    def encrypt(self, plaintext: bytes, owner: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, owner.encode())

    def decrypt(self, blob: bytes, owner: str) -> bytes:
        if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
            raise WrongKey("a stored ciphertext is malformed (truncated or not written by facegate)")
        try:
            return self._aead.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], owner.encode())
        except InvalidTag as exc:
            raise WrongKey(
                "a stored template does not decrypt: the secret key is wrong or the data was altered"
            ) from exc
