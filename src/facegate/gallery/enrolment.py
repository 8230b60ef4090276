"""Enrolment's results, and what it keeps of a photo: its name, a digest of its bytes (to spot a
photo enrolled twice without keeping it) and the template drafts the store seals."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from facegate.errors import FacegateError
from facegate.gallery.people import NewTemplate, Person
from facegate.vision.decode import ImageInput
from facegate.vision.types import Face


@dataclass
class Refusal:
    source: str
    error: FacegateError

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, **self.error.to_dict()}


@dataclass
class Enrolment:
    person: Person
    template_ids: list[int]
    refused: list[Refusal] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "person": self.person.to_dict(),
            "templates_added": len(self.template_ids),
            "refused": [r.to_dict() for r in self.refused],
            "duplicates": self.duplicates,
        }


def source_name(source: ImageInput, i: int) -> str:
    return str(source) if isinstance(source, (str, Path)) else f"image[{i}]"


def source_digest(source: ImageInput, image: np.ndarray) -> str:
    if isinstance(source, (str, Path)):
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(source)).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def encode_chip(chip: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(chip).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def decode_chip(jpeg: bytes) -> np.ndarray:
    """A stored face chip's JPEG back to the RGB array the embedder takes."""
    with Image.open(io.BytesIO(jpeg)) as img:
        return np.asarray(img.convert("RGB"))


def drafts(faces: list[tuple[Face, str]], space: str, keep_chips: bool) -> list[NewTemplate]:
    """The templates to store for embedded faces, each with its photo's digest."""
    return [
        NewTemplate(
            space=space,
            embedding=np.asarray(f.embedding, np.float32).tobytes(),
            chip_jpeg=encode_chip(f.chip) if keep_chips else None,
            source_sha256=digest,
            face_px=f.quality.size_px,
            sharpness=f.quality.sharpness,
            frontal=f.quality.frontal,
            brightness=f.quality.brightness,
        )
        for f, digest in faces
    ]
