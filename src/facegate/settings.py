"""One typed settings object, read once.

Sources, highest priority first: keyword arguments, `FACEGATE_*` environment variables
(nested with `__`, e.g. `FACEGATE_MATCH__TARGET_FMR=1e-5`), the YAML file named by
`FACEGATE_CONFIG` (or `config.yaml` in the data directory), then defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
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


class DetectorSettings(BaseModel):
    backend: Literal["hog", "cnn"] = "hog"
    cnn_runtime: Literal["onnx", "dlib"] = Field(
        "onnx", description="Run the CNN detector converted to ONNX (fast) or in dlib (reference)"
    )
    upsample: int = Field(1, ge=0, le=3, description="Times the image is doubled before detection")
    # Detection runs on a copy no larger than this (long side); landmarks and embeddings use
    # the full-resolution image, so large photos stay fast without losing chip quality.
    max_side: int = Field(1600, ge=160)
    min_score: float = Field(0.0, description="Detector confidence below which a box is dropped")
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
    quality: QualitySettings = QualitySettings()
    match: MatchSettings = MatchSettings()
    index: IndexSettings = IndexSettings()
    gallery: GallerySettings = GallerySettings()
    api: ApiSettings = ApiSettings()

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
