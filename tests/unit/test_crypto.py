"""Template encryption: round trip, wrong key, owner binding, key file permissions."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from facegate.errors import ConfigError, WrongKey
from facegate.gallery.crypto import TemplateCipher, load_or_create_key_file

pytestmark = pytest.mark.unit


def test_round_trip_and_fresh_nonces() -> None:
    c = TemplateCipher("a secret key of some length")
    a, b = c.encrypt(b"template", "p1:1"), c.encrypt(b"template", "p1:1")
    assert a != b and b"template" not in a
    assert c.decrypt(a, "p1:1") == b"template"


def test_wrong_key_fails_loudly() -> None:
    blob = TemplateCipher("a secret key of some length").encrypt(b"x" * 512, "p1:1")
    with pytest.raises(WrongKey, match="secret key is wrong"):
        TemplateCipher("another secret key, also long").decrypt(blob, "p1:1")


def test_ciphertext_is_bound_to_its_owner() -> None:
    c = TemplateCipher("a secret key of some length")
    blob = c.encrypt(b"x" * 512, "alice:1")
    with pytest.raises(WrongKey):
        c.decrypt(blob, "mallory:1")
    with pytest.raises(WrongKey, match="malformed"):
        c.decrypt(blob[:10], "alice:1")


def test_key_check_identifies_the_key_without_revealing_it() -> None:
    k = "a secret key of some length"
    assert TemplateCipher(k).key_check == TemplateCipher(k).key_check
    assert TemplateCipher(k).key_check != TemplateCipher(k + "!").key_check
    assert k not in TemplateCipher(k).key_check


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="16"):
        TemplateCipher("short")


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key_file(path) == first
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_or_create_key_file(path)
