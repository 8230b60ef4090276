"""Settings of cameras, doors and their access rules, and tracking."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CameraSettings(BaseModel):
    """One camera: where its frames come from and how they are processed."""

    name: str = Field(pattern=NAME, description="Used in topics, events and metrics")
    source: str = Field(
        min_length=1, description="rtsp://, http(s):// (MJPEG or HLS), a video or GIF file, or a webcam index"
    )
    enabled: bool = True
    fps: float = Field(
        5.0, gt=0, le=60, description="Frames processed per second (the newest frame each time)"
    )
    detector: Literal["yunet", "hog", "cnn"] = Field(
        "yunet", description="YuNet finds faces from ~12 px at 30+ frames/s; HOG and the MMOD CNN are slower"
    )
    detect_max_side: int = Field(
        960,
        ge=160,
        description="Detection runs on a copy no larger than this (960: a 40 px face of a 1080p frame "
        "is 20 px there, which YuNet finds; with min_face_px 60, 640 suffices at half the cost)",
    )
    upsample: int = Field(
        0, ge=0, le=2, description="Doublings before detection (HOG/CNN with 1: faces down to ~40 px)"
    )
    roi: tuple[float, float, float, float] | None = Field(
        None, description="Region of interest: left, top, right, bottom as fractions of the frame"
    )
    min_face_px: int = Field(40, ge=0, description="Faces smaller than this (frame pixels) are ignored")
    full_detect_every: int = Field(
        1,
        ge=1,
        le=10,
        description="Live cameras: detect on the whole frame every N frames, and in the frames between "
        "only around the faces being tracked (each tracked face is still found every frame; a new "
        "face up to N-1 frames later). 1: the whole frame every frame. Files: always 1",
    )
    max_lag_s: float = Field(
        0.0,
        ge=0,
        le=5,
        description="Live cameras: frames may wait this long while the camera is busy (a burst of new "
        "faces) instead of being dropped for the newest, so a burst costs latency, not frames. "
        "0: only the newest frame waits (the lowest latency)",
    )
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest wait between reconnection attempts")

    @field_validator("roi")
    @classmethod
    def _roi(cls, v: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if v is not None and not (0 <= v[0] < v[2] <= 1 and 0 <= v[1] < v[3] <= 1):
            raise ValueError(
                "roi must be left, top, right, bottom fractions with left < right and top < bottom"
            )
        return v


class AccessRule(BaseModel):
    """Who may open a door, on which days and hours (door time zone), between which dates."""

    people: list[str] = Field(
        min_length=1, description="Person ids or exact names; '*' = every enrolled person"
    )
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    hours: str = Field("00:00-24:00", description="HH:MM-HH:MM; a range past midnight wraps (22:00-06:00)")
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", v.strip())
        if not m:
            raise ValueError("hours must look like 07:00-19:30")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
            raise ValueError(f"hours {v!r} is not a valid time range")
        return v.strip()


class UnlockSettings(BaseModel):
    """How a granted decision opens the door: a signed webhook, an MQTT command, or both."""

    webhook_url: str | None = Field(None, pattern=r"^https?://")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key (16+ characters) the door controller checks; required"
    )
    allow_http: bool = Field(
        False, description="Allow an http:// unlock URL: the signed command then travels in clear"
    )
    mqtt_topic: str | None = Field(None, description="e.g. zigbee2mqtt/front_lock/set")
    mqtt_payload: str = '{"state": "UNLOCK"}'
    open_seconds: float = Field(5.0, gt=0, description="How long the door counts as unlocked")

    @model_validator(mode="after")
    def _webhook_is_safe(self) -> UnlockSettings:
        # An unsigned or eavesdroppable unlock command is a door anyone on the network can open.
        if self.webhook_url is None:
            return self
        if self.webhook_secret is None or len(self.webhook_secret.get_secret_value()) < 16:
            raise ValueError("an unlock webhook needs a webhook_secret of at least 16 characters")
        if self.webhook_url.lower().startswith("http://") and not self.allow_http:
            raise ValueError(
                "the unlock webhook is plain http://: use https://, or set allow_http: true "
                "for a controller on a trusted local network"
            )
        return self


class DoorSettings(BaseModel):
    name: str = Field(pattern=NAME)
    cameras: list[str] = Field(min_length=1)
    timezone: str = "UTC"
    target_fmr: float | None = Field(
        None, gt=0, lt=1, description="This door's false-match target (default: match.target_fmr)"
    )
    cooldown_s: float = Field(
        30.0, ge=0, description="Same person, same decision: at most one event per cooldown"
    )
    unknown_cooldown_s: float = Field(
        60.0, ge=0, description="At most one unknown-visitor event per cooldown"
    )
    rules: list[AccessRule] = Field(default_factory=list)
    unlock: UnlockSettings | None = None
    liveness: Literal["required", "off"] | None = Field(
        None, description="Grant only to a live face (default: required where the door has an unlock)"
    )
    challenge: Literal["none", "head_turn"] = Field(
        "none", description="Active challenge: a matched face must also turn its head (docs/liveness.md)"
    )

    @property
    def liveness_required(self) -> bool:
        return self.liveness == "required" or (self.liveness is None and self.unlock is not None)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class TrackingSettings(BaseModel):
    iou: float = Field(0.3, gt=0, lt=1, description="Box overlap that continues a track")
    max_age_s: float = Field(1.5, gt=0, description="A track unseen this long ends")
    reembed_s: float = Field(1.0, gt=0, description="Re-embed a track's face at least this often")
    hurry_s: float = Field(
        0.2, gt=0, description="Re-embed this soon when a single sighting matched only marginally"
    )
    decided_reembed_s: float = Field(
        2.0,
        gt=0,
        description="Once a track is decided, re-embed it only this often (to catch another face in its box)",
    )
    quality_gain: float = Field(
        0.15, ge=0, description="Re-embed at once when quality improves by this share"
    )
    evidence: int = Field(8, ge=1, description="Best embeddings kept per track for the fused identity")
    unknown_after: int = Field(3, ge=1, description="Embeddings needed before a track is called unknown")
    unknown_min_s: float = Field(
        1.0, ge=0, description="A track is called unknown only after being seen this long (residents turning)"
    )


class PlanaritySettings(BaseModel):
    """The motion cue of liveness (docs/liveness.md, "Does the face move as a sheet?"): whether a
    track's face moves as a flat surface (a homography of an earlier frame explains it) or as a
    head. Fitted on sheared, tilted, zoomed and rotated NUAA prints against the head-pose,
    Hamilton and NUAA real sequences (`bench/planarity.py`)."""

    enabled: bool = Field(
        True,
        description="At doors with liveness: required, deny a face that moves as a flat sheet; with "
        "challenge: head_turn, pass only a turn a flat sheet cannot make",
    )
    min_motion: float = Field(
        0.015,
        gt=0,
        description="Motion beyond a shift, scale and in-plane rotation (share of the face crop) a "
        "pair of frames needs to be judged: below it a print and a still head look alike",
    )
    max_planar_ratio: float = Field(
        0.1,
        ge=0,
        description="Median share of that motion a homography leaves unexplained at or below which the "
        "face is a flat surface (moved NUAA prints: 0.015-0.053; real heads: 0.35 and above)",
    )
    min_three_d_ratio: float = Field(
        0.25,
        ge=0,
        description="Median unexplained share at or above which the face is a three-dimensional head "
        "(turning heads: 0.45-0.59); between the two thresholds: undecided",
    )
    min_pairs: int = Field(3, ge=1, description="Judged pairs of frames a verdict needs")
    min_watch_s: float = Field(
        0.6,
        ge=0,
        description="At doors with liveness: required, a face whose motion is still undecided is let "
        "in no sooner than this after first sight (a print moved from the start shows it is flat)",
    )
    watch_s: float = Field(
        2.0,
        gt=0,
        description="A track's face is sampled during its first seconds only (at a door with the head-turn "
        "challenge, its whole window), and no longer once its motion is judged",
    )
    sample_gap_s: float = Field(
        0.1,
        ge=0,
        description="A track's face is sampled (a small grey crop, kept in memory) at most this often",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PlanaritySettings:
        if self.min_three_d_ratio < self.max_planar_ratio:
            raise ValueError("min_three_d_ratio must be at least max_planar_ratio")
        return self
