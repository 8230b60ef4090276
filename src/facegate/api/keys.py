"""API keys with roles. A key is shown once at creation; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select

from facegate.errors import ConfigError, KeyNotFound
from facegate.gallery.schema import ApiKeyRow
from facegate.gallery.store import SqlStore

PREFIX = "fgk"


class Role(StrEnum):
    ADMIN = "admin"  # people, consent, keys, settings
    OPERATOR = "operator"  # identify, verify, read events
    DEVICE = "device"  # submit frames and events for its own cameras
    AUDITOR = "auditor"  # read the audit log only


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    cameras: tuple[str, ...] = ()

    def may_speak_for(self, camera: str) -> bool:
        """Admins for every camera; device keys only for the cameras they were given."""
        return self.role is Role.ADMIN or (self.role is Role.DEVICE and camera in self.cameras)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "cameras": list(self.cameras),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _hash(token: str) -> str:
    # The key carries 256 random bits: a plain SHA-256 cannot be brute-forced back to it.
    return hashlib.sha256(token.encode()).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    cameras = tuple(c for c in (row.cameras or "").split(",") if c)
    return ApiKey(row.id, row.name, Role(row.role), row.created_at, row.revoked_at, cameras)


class KeyStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def create(self, name: str, role: str, cameras: list[str] | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret token (shown to the caller once, never stored)."""
        try:
            r = Role(role)
        except ValueError as exc:
            raise ConfigError(f"unknown role {role!r} (one of {', '.join(x.value for x in Role)})") from exc
        if any("," in c or not c.strip() for c in cameras or []):
            raise ConfigError("camera names must be non-empty and contain no commas")
        key_id = secrets.token_hex(4)
        token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with self.store.write() as s:
            row = ApiKeyRow(
                id=key_id,
                name=name,
                role=r.value,
                key_sha256=_hash(token),
                created_at=datetime.now(UTC),
                cameras=",".join(cameras) if cameras else None,
            )
            s.add(row)
        return _key(row), token

    def authenticate(self, token: str) -> ApiKey | None:
        parts = token.split("_")
        if len(parts) < 3 or parts[0] != PREFIX:
            return None
        with self.store.session() as s:
            row = s.get(ApiKeyRow, parts[1])
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.key_sha256, _hash(token)):
                return None
            return _key(row)

    def list(self) -> list[ApiKey]:
        with self.store.session() as s:
            return [_key(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def revoke(self, key_id: str) -> ApiKey:
        with self.store.write() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise KeyNotFound(f"no API key with id {key_id}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return _key(row)

    def any_ever(self) -> bool:
        """Whether any key was ever created (revoked ones included): the store is initialised."""
        with self.store.session() as s:
            return s.scalars(select(ApiKeyRow.id).limit(1)).first() is not None

    def any_active(self) -> bool:
        with self.store.session() as s:
            return (
                s.scalars(select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None)).limit(1)).first()
                is not None
            )
