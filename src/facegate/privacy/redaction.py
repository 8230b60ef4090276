"""Redaction: blur every face in a photo or video, or every face but one enrolled person's.

Detection for redaction errs on the side of finding faces: the configured detector and the CNN
at double resolution both run, and a face either finds is blurred with a margin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facegate.errors import ConsentMissing
from facegate.vision.detectors import sensitive_detector
from facegate.vision.engine import FaceEngine
from facegate.vision.protocols import Detector
from facegate.vision.redact import blur_boxes, more_faces
from facegate.vision.types import Face

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery

Keep = Callable[[list[Face]], list[bool]]  # which faces stay visible


def keep_person(gallery: Gallery, person_id: str, *, actor: str = "library", source: str = "") -> Keep:
    """Keep the faces that match one enrolled person's templates (at the configured threshold).

    Compares with that person only: no search of the gallery, nobody else's last-seen time moves.
    Matching someone is a use of their templates: it needs their consent in force, and is audited.
    """
    gallery.person(person_id)  # PersonNotFound if absent
    gallery.sync()
    if not gallery.consent_valid(person_id):
        raise ConsentMissing(f"person {person_id} has no consent in force; their templates are not used")
    gallery.audit.record(actor, "redact", None, {"source": source}, person=person_id)
    vectors = gallery.template_vectors(person_id)
    threshold = gallery.threshold
    engine = gallery.engine

    def keep(faces: list[Face]) -> list[bool]:
        engine.embed([f for f in faces if f.embedding is None])
        if not vectors:
            return [False] * len(faces)
        refs = np.stack(vectors)
        return [f.embedding is not None and float((refs @ f.embedding).max()) >= threshold for f in faces]

    return keep


@dataclass
class Redacted:
    image: Image.Image
    blurred: int
    kept: int


class Redactor:
    def __init__(self, engine: FaceEngine, thorough: bool = True) -> None:
        self.engine = engine
        self.extra: Detector | None = sensitive_detector(engine.settings) if thorough else None

    def faces(self, image: np.ndarray) -> list[Face]:
        faces = self.engine.detect(image).faces
        if self.extra is not None:
            for det in more_faces(self.extra, image, [f.box for f in faces]):
                faces.append(self.engine.face(image, det))
        return faces

    def image(self, image: np.ndarray, keep: Keep | None = None) -> Redacted:
        faces = self.faces(image)
        kept = keep(faces) if keep is not None and faces else [False] * len(faces)
        blur = [f.box for f, k in zip(faces, kept, strict=True) if not k]
        return Redacted(blur_boxes(Image.fromarray(image).convert("RGB"), blur), len(blur), sum(kept))

    def video(
        self, src: Path, dst: Path, keep: Keep | None = None, progress: Callable[[int], None] | None = None
    ) -> dict[str, int]:
        import av

        from facegate.video.sources import decode
        from facegate.video.writer import Mp4Writer

        rate = 25.0
        with av.open(str(src)) as probe:
            if probe.streams.video and probe.streams.video[0].average_rate:
                rate = float(probe.streams.video[0].average_rate)
        frames = blurred = kept = 0
        with Mp4Writer(dst, rate) as out:
            for to_rgb, _t in decode(str(src)):
                r = self.image(to_rgb(), keep)
                out.write(np.asarray(r.image))
                frames += 1
                blurred += r.blurred
                kept += r.kept
                if progress:
                    progress(1)
        return {"frames": frames, "faces_blurred": blurred, "faces_kept": kept}
