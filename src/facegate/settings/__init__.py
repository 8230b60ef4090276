"""One typed settings object, read once.

Sources, highest priority first: keyword arguments, `FACEGATE_*` environment variables
(nested with `__`, e.g. `FACEGATE_MATCH__TARGET_FMR=1e-5`), the YAML file named by
`FACEGATE_CONFIG` (or `config.yaml` in the data directory), then defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from facegate.settings.events import EventSettings, MqttSettings, WebhookSettings
from facegate.settings.gallery import GallerySettings, IndexSettings, MatchSettings
from facegate.settings.live import (
    NAME,
    WEEKDAYS,
    AccessRule,
    CameraSettings,
    DoorSettings,
    PlanaritySettings,
    TrackingSettings,
    UnlockSettings,
)
from facegate.settings.service import ApiSettings, PrivacySettings, ReplicaSettings, WebSettings
from facegate.settings.vision import (
    ARCFACE_TEMPLATE,
    DetectorSettings,
    EmbedderSettings,
    ImageLimits,
    LivenessSettings,
    OnnxEmbedderSettings,
    QualitySettings,
    WorkerSettings,
)

__all__ = [
    "ARCFACE_TEMPLATE",
    "NAME",
    "WEEKDAYS",
    "AccessRule",
    "ApiSettings",
    "CameraSettings",
    "DetectorSettings",
    "DoorSettings",
    "EmbedderSettings",
    "EventSettings",
    "GallerySettings",
    "ImageLimits",
    "IndexSettings",
    "LivenessSettings",
    "MatchSettings",
    "MqttSettings",
    "OnnxEmbedderSettings",
    "PlanaritySettings",
    "PrivacySettings",
    "QualitySettings",
    "ReplicaSettings",
    "Settings",
    "TrackingSettings",
    "UnlockSettings",
    "WebSettings",
    "WebhookSettings",
    "WorkerSettings",
    "default_data_dir",
    "load_settings",
]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "facegate"


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
    # With two cameras or more, "auto": as many worker processes as cores, the cameras dealt
    # over them; N: N processes (N at least the cameras: one each). Each process runs its cameras
    # on threads with one copy of the models; a camera that fails restarts alone, a process that
    # dies restarts with its cameras. "off": every camera in the server's process (threads), as
    # `facegate watch` does.
    camera_workers: Literal["auto", "off"] | Annotated[int, Field(ge=1)] = "off"
    doors: list[DoorSettings] = Field(default_factory=list)
    tracking: TrackingSettings = TrackingSettings()
    mqtt: MqttSettings = MqttSettings()
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    events: EventSettings = EventSettings()
    privacy: PrivacySettings = PrivacySettings()
    web: WebSettings = WebSettings()
    liveness: LivenessSettings = LivenessSettings()
    replica: ReplicaSettings = Field(default_factory=ReplicaSettings)

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

    @field_validator("camera_workers", mode="before")
    @classmethod
    def _yaml_off(cls, v: object) -> object:
        # YAML reads a bare `off` as false (and `on`/`yes` as true, which is no number of processes).
        if v is False:
            return "off"
        if v is True:
            raise ValueError("'auto', 'off' or a number of worker processes")
        return v

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
