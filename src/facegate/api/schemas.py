"""What requests carry: the pydantic models of JSON bodies and the checked text and time types.

Text never holds NUL characters and times are aware and storable, so bad input is a 422
before it reaches a database.
"""

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from facegate.errors import BadImage
from facegate.events.submitted import DEVICE_KINDS
from facegate.gallery.people import Consent


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _storable(value: datetime | None) -> datetime | None:
    """Aware, and within what every database stores once converted to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2027-01-31T00:00:00Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("date out of range") from exc
    if not 1900 <= utc.year <= 9000:
        raise ValueError("date out of range (years 1900 to 9000)")
    return utc


Text = Annotated[str, AfterValidator(_no_nul)]
When = Annotated[datetime, AfterValidator(_storable)]


def decode_base64(data: str) -> bytes:
    """The bytes of a base64 image field (`BadImage` if it is not base64)."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage("image_base64 is not valid base64") from exc


class ConsentIn(BaseModel):
    purpose: Text = Field(min_length=1, max_length=2000)
    expires_at: When
    given_at: Annotated[datetime | None, AfterValidator(_storable)] = None
    recorded_by: Text = Field(min_length=1, max_length=200)
    evidence_ref: Text | None = Field(None, max_length=2000)
    scope: list[Annotated[Text, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=50,
        description='Uses it covers: "door:<name>", "identify", "verify", or "*"',
    )

    def to_consent(self) -> Consent:
        return Consent(
            scope=tuple(self.scope),
            purpose=self.purpose,
            expires_at=self.expires_at,
            recorded_by=self.recorded_by,
            evidence_ref=self.evidence_ref,
            given_at=self.given_at or datetime.now(UTC),
        )


# Photos one enrolment request may carry (the API's JSON and the console's upload alike).
MAX_IMAGES = 20


class PersonUpdate(BaseModel):
    name: Text | None = Field(None, min_length=1, max_length=200)
    external_id: Text | None = Field(None, max_length=200)


class PersonIn(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    external_id: Text | None = Field(None, max_length=200)
    consent: ConsentIn
    images_base64: list[str] = Field(min_length=1, max_length=MAX_IMAGES)
    liveness: bool = Field(False, description="Refuse photos judged presentation attacks (422)")


class ImageIn(BaseModel):
    image_base64: str


class VerifyIn(BaseModel):
    image_base64: str
    other_base64: str | None = None
    person_id: Text | None = Field(None, max_length=64)
    liveness: bool = Field(
        False, description="Refuse an image_base64 (the selfie) judged a presentation attack (422)"
    )


DeviceKind = Literal[
    "doorbell", "motion", "tamper", "door_opened", "door_closed", "door_held_open", "door_forced", "note"
]


class EventIn(BaseModel):
    """An event a device reports. Decisions (granted, denied, unknown) come only from
    facegate's own pipeline, so an event names no person."""

    model_config = ConfigDict(extra="forbid")

    camera: Text = Field(min_length=1, max_length=100)
    kind: DeviceKind
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="At most 4 KB of JSON, 4 levels, finite numbers, no control characters",
    )


assert get_args(DeviceKind) == DEVICE_KINDS  # the schema lists what the domain accepts
