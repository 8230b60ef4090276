"""The audit trail's signed head: the id and hash of the newest entry, MAC'd, kept in the key
directory, outside the database. The hash chain shows an entry edited or removed in the middle;
only something kept elsewhere shows entries cut off the end, or the whole table emptied.

Each machine keeps its own head of what it wrote, one per database it writes to (the file
maps a database to its head), so it moves forward only; processes update it under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facegate.errors import AuditTampered


@dataclass(frozen=True)
class Head:
    id: int
    hash: str

    def reached_at(self, entry_id: int, entry_hash: str) -> bool:
        """Whether a chain that has come to this entry (or anchor) has reached the head: the head
        is this entry, or an older one (one that retention removed, when this is the anchor)."""
        return self.id < entry_id or (self.id, self.hash) == (entry_id, entry_hash)


class SignedHead:
    def __init__(self, path: Path, mac_key: bytes, database: str) -> None:
        self.path = path
        self.mac_key = mac_key
        self.database = database  # which database's trail (a URL without its password)

    def _mac(self, entry_id: int, entry_hash: str) -> str:
        msg = f"head|{self.database}|{entry_id}|{entry_hash}".encode()
        return hmac.new(self.mac_key, msg, hashlib.sha256).hexdigest()

    def _heads(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AuditTampered(f"the audit head {self.path} is not valid") from exc
        if not isinstance(data, dict):
            raise AuditTampered(f"the audit head {self.path} is not valid")
        return data

    def read(self) -> Head | None:
        """The head, None if none was written yet; raises `AuditTampered` if it was altered."""
        entry = self._heads().get(self.database)
        if entry is None:
            return None
        try:
            head = Head(int(entry["id"]), str(entry["hash"]))  # type: ignore[index]
            mac = str(entry["mac"])  # type: ignore[index]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditTampered(f"the audit head {self.path} is not valid") from exc
        if not hmac.compare_digest(mac, self._mac(head.id, head.hash)):
            raise AuditTampered(f"the audit head {self.path} was altered")
        return head

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, entry_id: int, entry_hash: str) -> None:
        try:
            heads = self._heads()
        except AuditTampered:
            heads = {}
        heads[self.database] = {"id": entry_id, "hash": entry_hash, "mac": self._mac(entry_id, entry_hash)}
        body = json.dumps(heads, indent=1, sort_keys=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def advance(self, entry_id: int, entry_hash: str) -> None:
        """Move the head to this entry, unless it already names a newer one."""
        with self._locked():
            try:
                current = self.read()
            except AuditTampered:
                current = None  # `verify` reports it; the newest entry is still worth keeping
            if current is None or entry_id > current.id:
                self._write(entry_id, entry_hash)

    def reset(self, entry_id: int, entry_hash: str) -> None:
        """Rewrite the head (the chain was re-keyed, so every hash changed)."""
        with self._locked():
            self._write(entry_id, entry_hash)
