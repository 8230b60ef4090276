"""Snapshots of decision moments: redacted, downscaled, encrypted JPEGs under the data directory.

A snapshot is an image, not a template: an unknown visitor's face may be kept here (the
household wants to see who rang) for as long as the retention policy allows, but it is never
embedded into the gallery.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from facegate.errors import SnapshotNotFound
from facegate.gallery.crypto import TemplateCipher
from facegate.settings import Settings
from facegate.vision.redact import blur_boxes
from facegate.vision.types import Box

Redact = Literal["others", "all", "none"]


def redact(image: np.ndarray, keep: Box | None, faces: Sequence[Box], mode: Redact) -> Image.Image:
    """The frame with faces blurred: every face but `keep` ("others"), every face, or none."""
    img = Image.fromarray(image).convert("RGB")
    if mode == "none":
        return img
    blur = [b for b in faces if mode == "all" or b != keep]
    return blur_boxes(img, blur)


class SnapshotStore:
    def __init__(self, root: Path, cipher: TemplateCipher, max_side: int = 960) -> None:
        self.root = root
        self.cipher = cipher
        self.max_side = max_side

    def save(self, img: Image.Image, at: datetime | None = None) -> str:
        """Encrypt and write; returns the snapshot's path relative to the root."""
        at = (at or datetime.now(UTC)).astimezone(UTC)
        img = img.copy()
        img.thumbnail((self.max_side, self.max_side))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        rel = f"{at:%Y/%m/%d}/{at:%H%M%S}-{secrets.token_hex(8)}.jpg.enc"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.cipher.encrypt(buf.getvalue(), f"snapshot:{rel}"))
        tmp.replace(path)
        return rel

    def _path(self, rel: str) -> Path:
        path = (self.root / rel).resolve()
        if self.root.resolve() not in path.parents:
            raise SnapshotNotFound(f"no snapshot {rel}")
        return path

    def load(self, rel: str) -> bytes:
        """The decrypted JPEG."""
        path = self._path(rel)
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise SnapshotNotFound(f"snapshot {rel} is gone (expired or erased)") from exc
        return self.cipher.decrypt(blob, f"snapshot:{rel}")

    def delete(self, rel: str) -> bool:
        try:
            self._path(rel).unlink()
            return True
        except (OSError, SnapshotNotFound):
            return False


def snapshot_store(settings: Settings, cipher: TemplateCipher) -> SnapshotStore:
    """The installation's snapshot store: where `settings` keep snapshots, at their size, under
    `cipher` (pass the gallery's current one: it changes when the data key is rotated)."""
    return SnapshotStore(settings.snapshots_dir, cipher, settings.events.snapshot_max_side)
