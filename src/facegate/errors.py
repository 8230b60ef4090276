"""Typed errors, each with a stable code, a CLI exit code and an HTTP status.

The mapping lives here once; the CLI and the API read it from the exception instead of
re-deciding per call site.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `facegate` CLI (documented in README)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    BAD_INPUT = 3
    NO_FACE = 4
    UNKNOWN = 5  # identify: a face matched nobody; verify: not the same person
    REFUSED = 6  # enrolment refused: consent or face quality
    NOT_FOUND = 7
    SECURITY = 8  # wrong key, tampered data, model file integrity


class FacegateError(Exception):
    """Base of every error facegate raises on purpose."""

    code = "facegate_error"
    exit_code = ExitCode.ERROR
    http_status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, **self.details}


class ConfigError(FacegateError):
    code = "config_error"
    exit_code = ExitCode.USAGE
    http_status = 500


class GalleryNotFound(ConfigError):
    """No gallery where the settings point (a mistyped FACEGATE_DATA_DIR or database URL): a
    command that only reads refuses rather than create an empty gallery and a new key there."""

    code = "no_gallery"


class SourceUnavailable(FacegateError):
    """A video source cannot be opened or read (missing file, unreachable camera, no video)."""

    code = "source_unavailable"
    exit_code = ExitCode.BAD_INPUT
    http_status = 422


# --- input -------------------------------------------------------------------------------------


class BadRequest(FacegateError):
    """Input that is well-formed but not acceptable (a forbidden event kind, oversize details)."""

    code = "invalid_request"
    exit_code = ExitCode.BAD_INPUT
    http_status = 422


class BadImage(FacegateError):
    """The bytes are not an image we accept (empty, not an image, truncated, unsupported)."""

    code = "bad_image"
    exit_code = ExitCode.BAD_INPUT
    http_status = 422


class ImageTooLarge(BadImage):
    """Too many bytes or pixels; refused before decoding (decompression bombs)."""

    code = "image_too_large"
    http_status = 413


class NoFaceFound(FacegateError):
    code = "no_face"
    exit_code = ExitCode.NO_FACE
    http_status = 422


class TooManyFaces(FacegateError):
    code = "too_many_faces"
    exit_code = ExitCode.REFUSED
    http_status = 422


class FaceQualityTooLow(FacegateError):
    code = "face_quality_too_low"
    exit_code = ExitCode.REFUSED
    http_status = 422


# --- gallery -----------------------------------------------------------------------------------


class ConsentMissing(FacegateError):
    code = "consent_missing"
    exit_code = ExitCode.REFUSED
    http_status = 422


class ConsentExpired(ConsentMissing):
    code = "consent_expired"


class PersonNotFound(FacegateError):
    code = "person_not_found"
    exit_code = ExitCode.NOT_FOUND
    http_status = 404


class SnapshotNotFound(FacegateError):
    code = "snapshot_not_found"
    exit_code = ExitCode.NOT_FOUND
    http_status = 404


class KeyNotFound(FacegateError):
    code = "key_not_found"
    exit_code = ExitCode.NOT_FOUND
    http_status = 404


class Unauthorized(FacegateError):
    code = "unauthorized"
    exit_code = ExitCode.SECURITY
    http_status = 401


class Forbidden(FacegateError):
    code = "forbidden"
    exit_code = ExitCode.SECURITY
    http_status = 403


class RateLimited(FacegateError):
    code = "rate_limited"
    exit_code = ExitCode.ERROR
    http_status = 429


class ServiceBusy(FacegateError):
    code = "busy"
    exit_code = ExitCode.ERROR
    http_status = 503


class DatabaseUnavailable(FacegateError):
    """The database cannot be reached or is shutting down (a restart, a network cut, a lock
    held past its timeout): try the same request again shortly."""

    code = "database_unavailable"
    exit_code = ExitCode.ERROR
    http_status = 503


class RequestTimeout(FacegateError):
    code = "timeout"
    exit_code = ExitCode.ERROR
    http_status = 504


class WrongKey(FacegateError):
    """The secret key does not open this gallery, or a ciphertext was altered."""

    code = "wrong_key"
    exit_code = ExitCode.SECURITY
    http_status = 500


class KeyRotated(WrongKey):
    """Another process rotated the data key and this one cannot load the new key (it came from
    FACEGATE_SECRET_KEY, or the key file does not hold it yet): nothing is written under the
    old key. A service answers 503 and reports not ready until it is restarted with the new key."""

    code = "key_rotated"
    http_status = 503


class AuditTampered(FacegateError):
    """The audit trail's chain or anchor does not verify: someone edited it."""

    code = "audit_tampered"
    exit_code = ExitCode.SECURITY
    http_status = 500


class ModelIntegrityError(FacegateError):
    """A model file is missing, truncated or does not match its pinned SHA-256."""

    code = "model_integrity"
    exit_code = ExitCode.SECURITY
    http_status = 500


class EmbeddingSpaceMismatch(FacegateError):
    """Templates were made by a model whose embeddings cannot be compared with the current one."""

    code = "embedding_space_mismatch"
    exit_code = ExitCode.ERROR
    http_status = 409


# --- liveness ----------------------------------------------------------------------------------


class PresentationAttack(FacegateError):
    """The photo was judged a presentation attack (a printed photo, a screen), not a live face."""

    code = "presentation_attack"
    exit_code = ExitCode.REFUSED
    http_status = 422


class LivenessNotAssessed(FacegateError):
    """Liveness was asked for but the face cannot be judged (too small, at the edge, turned)."""

    code = "liveness_not_assessed"
    exit_code = ExitCode.REFUSED
    http_status = 422
