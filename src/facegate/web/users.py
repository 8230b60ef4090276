"""Users of the web console: a name, a role, a password kept only as a scrypt hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from facegate.api.keys import Role
from facegate.errors import BadRequest, ConfigError, KeyNotFound
from facegate.gallery.schema import ConsoleUserRow
from facegate.gallery.store import SqlStore

# The roles that have a console; a device only speaks to the API.
CONSOLE_ROLES = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)
MIN_PASSWORD_CHARS = 12
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

# scrypt at 2^17 x 8 x 1 takes ~0.3-0.5 s and 128 MiB: slow for a guesser, fine for a sign-in
# (at most two at once, web/console.py). A hash with lower parameters is redone at sign-in.
_N, _R, _P = 2**17, 8, 1
_MAXMEM = 256 * 2**20


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(want),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


def outdated(stored: str) -> bool:
    """Whether a stored hash was made with weaker parameters than new ones get."""
    try:
        _kind, n, r, p, _salt, _digest = stored.split("$")
        return int(n) < _N or int(r) < _R or int(p) < _P
    except ValueError:
        return True


# Checked against when the name is unknown: a wrong name costs the same time as a wrong password.
_DUMMY = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class ConsoleUser:
    id: str
    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


def _user(row: ConsoleUserRow) -> ConsoleUser:
    return ConsoleUser(row.id, row.name, Role(row.role), row.created_at, row.disabled_at)


def console_role(role: str) -> Role:
    try:
        r = Role(role)
    except ValueError:
        r = Role.DEVICE  # refused just below, with the list
    if r not in CONSOLE_ROLES:
        raise ConfigError(
            f"unknown console role {role!r} (one of {', '.join(x.value for x in CONSOLE_ROLES)})"
        )
    return r


class UserStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def create(self, name: str, role: str, password: str) -> ConsoleUser:
        r = console_role(role)
        if not NAME.match(name):
            raise BadRequest(
                "a user name is 1-100 letters, digits or . _ @ - (starting with a letter or digit)"
            )
        if len(password) < MIN_PASSWORD_CHARS:
            raise BadRequest(f"a console password has at least {MIN_PASSWORD_CHARS} characters")
        with self.store.write() as s:
            if s.scalars(select(ConsoleUserRow.id).where(ConsoleUserRow.name == name)).first():
                raise BadRequest(f"a console user named {name!r} already exists")
            row = ConsoleUserRow(
                id=secrets.token_hex(4),
                name=name,
                role=r.value,
                password_hash=hash_password(password),
                created_at=datetime.now(UTC),
            )
            s.add(row)
        return _user(row)

    def authenticate(self, name: str, password: str) -> ConsoleUser | None:
        """The user if the name and password match an active user; as slow either way."""
        with self.store.session() as s:
            row = s.scalars(select(ConsoleUserRow).where(ConsoleUserRow.name == name)).first()
            user = _user(row) if row is not None else None
            stored = row.password_hash if row is not None else _DUMMY
        ok = check_password(password, stored)
        if user is None or not ok or user.disabled_at is not None:
            return None
        if outdated(stored):  # made before the parameters were raised: redone now the password is known
            with self.store.write() as s:
                row = s.get(ConsoleUserRow, user.id)
                if row is not None and row.password_hash == stored:
                    row.password_hash = hash_password(password)
        return user

    def get(self, user_id: str) -> ConsoleUser | None:
        with self.store.session() as s:
            row = s.get(ConsoleUserRow, user_id)
            return _user(row) if row is not None else None

    def list(self) -> list[ConsoleUser]:
        with self.store.session() as s:
            return [_user(r) for r in s.scalars(select(ConsoleUserRow).order_by(ConsoleUserRow.created_at))]

    def disable(self, name: str) -> ConsoleUser:
        with self.store.write() as s:
            row = s.scalars(select(ConsoleUserRow).where(ConsoleUserRow.name == name)).first()
            if row is None:
                raise KeyNotFound(f"no console user named {name!r}")
            if row.disabled_at is None:
                row.disabled_at = datetime.now(UTC)
            return _user(row)
