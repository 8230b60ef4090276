"""One typed settings object, read once.

Sources, highest priority first: keyword arguments, `FACEGATE_*` environment variables
(nested with `__`, e.g. `FACEGATE_MATCH__TARGET_FMR=1e-5`), the YAML file named by
`FACEGATE_CONFIG` (or `config.yaml` in the data directory), then defaults.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "facegate"


class ImageLimits(BaseModel):
    max_bytes: int = Field(25 * 1024 * 1024, gt=0, description="Largest encoded image accepted")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest width*height decoded")
    max_side: int = Field(8192, gt=0, description="Longest side decoded, in pixels")
    max_aspect: float = Field(8.0, ge=1.0, description="Longest side over shortest, at most")
    max_pixels_per_byte: int = Field(
        256,
        gt=0,
        description="Above 4 MP, pixels a file may declare per byte of it (refuses small files "
        "that decode to huge images: bombs, truncated files)",
    )


class DetectorSettings(BaseModel):
    backend: Literal["yunet", "hog", "cnn"] = Field(
        "yunet",
        description="YuNet (fast CNN, faces from ~12 px, the default), dlib's HOG, or dlib's MMOD CNN",
    )
    cnn_runtime: Literal["onnx", "dlib"] = Field(
        "onnx", description="Run the CNN detector converted to ONNX (fast) or in dlib (reference)"
    )
    upsample: int = Field(
        1, ge=0, le=3, description="Times the image is doubled before HOG/CNN detection (YuNet: not needed)"
    )
    # Detection runs on a copy no larger than this (long side); landmarks and embeddings use
    # the full-resolution image, so large photos stay fast without losing chip quality.
    max_side: int = Field(1600, ge=160)
    min_score: float = Field(0.0, description="HOG/CNN confidence below which a box is dropped")
    yunet_min_score: float = Field(0.6, gt=0, lt=1, description="YuNet score below which a box is dropped")
    tiles: bool = Field(
        False,
        description="YuNet: also detect on full-resolution tiles of images larger than max_side "
        "(finds faces too small for the downscaled copy, at a cost per tile)",
    )
    # HOG misses turned, dark or partly covered faces that the CNN finds. The CNN costs about a
    # second per photo on a CPU, so by default it only runs where a face is known to be there
    # (enrolment and 1:1 verification photos) and HOG found none.
    cnn_fallback: Literal["never", "when_expected", "always"] = Field(
        "when_expected", description="When to try the CNN detector after HOG finds no face"
    )
    cnn_fallback_max_side: int = Field(640, ge=160, description="Image size for the fallback (speed)")


class EmbedderSettings(BaseModel):
    backend: Literal["onnx", "onnx-int8", "dlib"] = Field(
        "onnx",
        description="dlib's ResNet converted to ONNX Runtime (same embeddings, faster), its int8 "
        "quantization (close, not equal), or dlib itself",
    )
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, description="ONNX Runtime threads; 0 = the cores available")
    batch_size: int = Field(32, ge=1)
    flip: bool = Field(
        True,
        description="Flip fusion: embed each face and its mirror image and average them (more accurate, "
        "two network passes per face). A different embedding space: templates made the other way are "
        "converted by `facegate people reembed`",
    )


class WorkerSettings(BaseModel):
    """Vision worker processes for `serve` and bulk commands (enroll-dir, identify of many photos)."""

    processes: int = Field(
        0, ge=0, le=256, description="Worker processes; 0 = one per core, 1 = no pool (in-process)"
    )


class QualitySettings(BaseModel):
    """Minimums a face must meet to be enrolled (identification only reports quality)."""

    min_face_px: int = Field(80, ge=0, description="Minimum face box side in pixels")
    min_sharpness: float = Field(0.15, ge=0, le=1)
    min_frontal: float = Field(0.5, ge=0, le=1, description="1 = frontal, 0 = profile")
    min_brightness: float = Field(0.12, ge=0, le=1)
    max_brightness: float = Field(0.92, ge=0, le=1)


class MatchSettings(BaseModel):
    target_fmr: float = Field(
        1e-3, gt=0, lt=1, description="Accepted false-match rate per comparison (see docs/accuracy.md)"
    )
    ambiguity_margin: float = Field(
        0.02, ge=0, description="Best and second-best people closer than this: unknown"
    )
    target_fpir: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Open-set: accepted share of strangers identified as anyone enrolled (the door's rate; "
        "per-person thresholds from the gallery's size and impostor scores, see docs/accuracy.md)",
    )
    open_set_thresholds: Literal["fpir", "fmr"] = Field(
        "fpir",
        description="fpir: per-person thresholds for target_fpir; fmr: one threshold at target_fmr "
        "(the per-comparison rate, which multiplies with the gallery's size)",
    )
    gallery_weight: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Share of strangers assumed to look like the people enrolled (their own impostor "
        "scores set each person's threshold; the rest: the shipped cohort's)",
    )
    top_k: int = Field(3, ge=1, le=100)
    calibration_file: Path | None = Field(
        None, description="Calibration table to use instead of the one shipped with the model"
    )


class IndexSettings(BaseModel):
    backend: Literal["auto", "exact", "faiss"] = "auto"
    # Below this many templates an exact scan is both fastest and exact.
    approximate_above: int = Field(50_000, ge=1)


class GallerySettings(BaseModel):
    keep_face_chips: bool = Field(
        True, description="Keep an encrypted 150x150 face chip per template (for review and export)"
    )
    max_faces_per_image: int = Field(20, ge=1)


class ApiSettings(BaseModel):
    rate_limit: str = Field("120/minute", description="Requests per API key (limits syntax, e.g. 10/second)")
    request_timeout: float = Field(60.0, gt=0, description="Seconds before a request answers 504")
    max_request_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Largest request body")
    anonymous_rate_limit: str = Field(
        "60/minute",
        description="Per client address: requests without a valid key (bad keys, public pages); "
        "over it, the address gets 429 before any key is looked at",
    )
    max_pending: int = Field(
        8,
        ge=1,
        description="Identify, verify and detect requests admitted at once, uploads included; "
        "more get 503 with Retry-After before their body is read",
    )
    public_docs: bool = Field(
        True, description="Serve /docs and /openapi.json without a key (false: not served at all)"
    )


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
        "is 20 px there, which YuNet finds)",
    )
    upsample: int = Field(
        0, ge=0, le=2, description="Doublings before detection (HOG/CNN with 1: faces down to ~40 px)"
    )
    roi: tuple[float, float, float, float] | None = Field(
        None, description="Region of interest: left, top, right, bottom as fractions of the frame"
    )
    min_face_px: int = Field(40, ge=0, description="Faces smaller than this (frame pixels) are ignored")
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
    quality_gain: float = Field(
        0.15, ge=0, description="Re-embed at once when quality improves by this share"
    )
    evidence: int = Field(8, ge=1, description="Best embeddings kept per track for the fused identity")
    unknown_after: int = Field(3, ge=1, description="Embeddings needed before a track is called unknown")
    unknown_min_s: float = Field(
        1.0, ge=0, description="A track is called unknown only after being seen this long (residents turning)"
    )


class LivenessSettings(BaseModel):
    """Presentation-attack detection (docs/liveness.md): which faces are scored, and the threshold."""

    # Fitted on half the subjects of the NUAA frames (0.2668, rounded) and scored on the other
    # half: docs/liveness.md. Re-measure with `facegate eval pad` after changing the detector.
    threshold: float = Field(
        0.27, ge=0, le=1, description="MiniFASNet live score at or above which a face counts as live"
    )
    min_face_px: int = Field(60, ge=1, description="Smaller faces are refused, not scored")
    min_detection_score: float | None = Field(
        None, description="Detector score below which a face is refused (None: the detector's own)"
    )
    min_frontal: float = Field(0.3, ge=0, le=1, description="More turned faces are refused")
    border_margin: float = Field(
        0.05, ge=0, le=1, description="A face closer to the frame edge than this share of its size is refused"
    )
    min_context: float = Field(
        1.5, ge=1, description="Refused where less than this multiple of the face box fits in the frame"
    )
    frames: int = Field(3, ge=1, description="Scored frames a track needs before a door decision")
    challenge_window_s: float = Field(
        4.0, gt=0, description="Head-turn challenge: seconds from first sight in which the head must turn"
    )
    challenge_min_turn: float = Field(
        0.5, gt=0, le=2, description="Head-turn challenge: yaw swing needed (0 frontal, 1 profile)"
    )
    provider: Literal["auto", "cpu", "cuda"] = "cpu"
    threads: int = Field(1, ge=0, description="ONNX Runtime threads; 0 = the cores available")


class MqttSettings(BaseModel):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    client_id: str = "facegate"
    topic_prefix: str = Field("facegate", pattern=r"^[A-Za-z0-9_/-]+$")
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery")
    discovery_prefix: str = "homeassistant"
    allow_remote_unlock: bool = Field(
        False,
        description="Obey UNLOCK commands on facegate/door/<door>/set (anyone on the broker could open)",
    )


class WebhookSettings(BaseModel):
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr = Field(description="HMAC-SHA256 key; receivers check X-Facegate-Signature")
    kinds: list[str] = Field(default_factory=lambda: ["granted", "denied", "unknown"])
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(4, ge=0, le=10)


class EventSettings(BaseModel):
    queue_size: int = Field(
        256, ge=1, description="Events waiting per sink; beyond it they are dropped and counted"
    )
    snapshots: bool = Field(True, description="Keep an encrypted snapshot of each decision moment")
    snapshot_max_side: int = Field(960, ge=160)
    redact: Literal["others", "all", "none"] = Field(
        "others", description="Blur faces in snapshots: all but the decided one, all, or none"
    )


class PrivacySettings(BaseModel):
    """Retention: how long each kind of data is kept (see `facegate privacy policy`)."""

    consent_grace_days: float = Field(
        30,
        ge=0,
        le=1095,
        description="Templates are destroyed this long after consent expires or is withdrawn",
    )
    max_inactive_days: float = Field(
        1095,
        gt=0,
        le=1095,
        description="...or this long after the person was last recognised (BIPA: 3 years)",
    )
    event_days: float = Field(30, gt=0, description="Door decision and camera events")
    snapshot_days: float = Field(7, gt=0, description="Snapshots of decisions about enrolled people")
    unknown_snapshot_days: float = Field(1, gt=0, description="Snapshots of unknown visitors")
    audit_days: float = Field(730, gt=0, description="Audit trail entries and erasure receipts")
    purge_interval_s: float = Field(3600, gt=0, description="How often `serve` enforces the policy")


class WebSettings(BaseModel):
    """The web console served at / by `facegate serve`."""

    enabled: bool = Field(True, description="Serve the web console at /")
    session_hours: float = Field(
        12, gt=0, le=720, description="A console session ends this long after sign-in"
    )
    session_idle_minutes: float = Field(
        30, gt=0, le=1440, description="A console session ends after this long without a request"
    )
    secure_cookies: bool = Field(
        True, description="Mark the session cookie Secure (sent over HTTPS and to localhost only)"
    )
    sign_in_rate_limit: str = Field(
        "5/minute",
        description="Failed sign-ins per name from one client address (an IPv6 client by its /64)",
    )
    sign_in_name_rate_limit: str = Field(
        "100/hour", description="Failed sign-ins per name from anywhere (a distributed guesser)"
    )
    consent_soon_days: float = Field(
        30, ge=0, description="Consent shown as 'expiring soon' this long before"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    secret_key: SecretStr | None = None
    config: Path | None = None

    images: ImageLimits = ImageLimits()
    detector: DetectorSettings = DetectorSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    workers: WorkerSettings = WorkerSettings()
    quality: QualitySettings = QualitySettings()
    match: MatchSettings = MatchSettings()
    index: IndexSettings = IndexSettings()
    gallery: GallerySettings = GallerySettings()
    api: ApiSettings = ApiSettings()
    cameras: list[CameraSettings] = Field(default_factory=list)
    doors: list[DoorSettings] = Field(default_factory=list)
    tracking: TrackingSettings = TrackingSettings()
    mqtt: MqttSettings = MqttSettings()
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    events: EventSettings = EventSettings()
    privacy: PrivacySettings = PrivacySettings()
    web: WebSettings = WebSettings()
    liveness: LivenessSettings = LivenessSettings()

    @model_validator(mode="after")
    def _names(self) -> Settings:
        cameras = [c.name for c in self.cameras]
        if len(set(cameras)) != len(cameras):
            raise ValueError("camera names must be unique")
        doors = [d.name for d in self.doors]
        if len(set(doors)) != len(doors):
            raise ValueError("door names must be unique")
        for d in self.doors:
            unknown = set(d.cameras) - set(cameras)
            if unknown and self.cameras:
                raise ValueError(f"door {d.name} names cameras that are not configured: {sorted(unknown)}")
        return self

    def door_for(self, camera: str) -> DoorSettings | None:
        return next((d for d in self.doors if camera in d.cameras), None)

    def door(self, name: str) -> DoorSettings:
        from facegate.errors import ConfigError

        for d in self.doors:
            if d.name == name:
                return d
        raise ConfigError(f"no door named {name!r} in the configuration")

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'facegate.db'}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "keys" / "secret.key"

    @property
    def audit_head_file(self) -> Path:
        return self.data_dir / "keys" / "audit-head.json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def _config_file() -> Path | None:
    explicit = os.environ.get("FACEGATE_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            from facegate.errors import ConfigError

            raise ConfigError(f"config file {path} (FACEGATE_CONFIG) does not exist")
        return path
    data_dir = Path(os.environ.get("FACEGATE_DATA_DIR") or default_data_dir()).expanduser()
    candidate = data_dir / "config.yaml"
    return candidate if candidate.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and config file; `overrides` win over both."""
    from pydantic import ValidationError

    from facegate.errors import ConfigError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
