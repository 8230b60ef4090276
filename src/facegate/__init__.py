"""facegate: consent-based face recognition for access control and identity verification.

from facegate import FaceEngine, Gallery, Consent
gallery = Gallery.open()
gallery.enroll("Alice", ["alice.jpg"], Consent("door access", expires, recorded_by="reception"))
for face in gallery.identify("door.jpg"):
    print(face.name or "unknown", face.score)
"""

from __future__ import annotations

from facegate.errors import (
    BadImage,
    ConsentExpired,
    ConsentMissing,
    FacegateError,
    FaceQualityTooLow,
    ImageTooLarge,
    NoFaceFound,
    PersonNotFound,
    TooManyFaces,
    WrongKey,
)
from facegate.gallery.gallery import FaceIdentification, Gallery
from facegate.gallery.people import Consent, Person
from facegate.match import Verification
from facegate.settings import Settings, load_settings
from facegate.vision.decode import ImageInput
from facegate.vision.engine import FaceEngine

__version__ = "0.1.0"

__all__ = [
    "BadImage",
    "Consent",
    "ConsentExpired",
    "ConsentMissing",
    "FaceEngine",
    "FaceIdentification",
    "FaceQualityTooLow",
    "FacegateError",
    "Gallery",
    "ImageTooLarge",
    "NoFaceFound",
    "Person",
    "PersonNotFound",
    "Settings",
    "TooManyFaces",
    "Verification",
    "WrongKey",
    "identify",
    "load_settings",
    "verify",
]

_default_engine: FaceEngine | None = None


def _engine() -> FaceEngine:
    global _default_engine
    if _default_engine is None:
        _default_engine = FaceEngine()
    return _default_engine


def verify(
    a: ImageInput, b: ImageInput, *, engine: FaceEngine | None = None, liveness: bool = False
) -> Verification:
    """Are the largest faces of two photos the same person, at the configured false-match rate?
    `liveness`: refuse a first photo (the selfie) judged a presentation attack."""
    from facegate.match import verify_photos

    return verify_photos(engine or _engine(), a, b, liveness=liveness)


def identify(image: ImageInput, gallery: Gallery) -> list[FaceIdentification]:
    """Who is in this photo? Same as `gallery.identify(image)`."""
    return gallery.identify(image)
