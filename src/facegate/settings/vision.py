"""Settings of the vision layer: image limits, detector, embedder, workers, quality, liveness."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from facegate.settings.live import PlanaritySettings


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


Point = tuple[float, float]

# The ArcFace 112x112 template (right eye, left eye, nose tip, right and left mouth corner).
ARCFACE_TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


class OnnxEmbedderSettings(BaseModel):
    """An operator's own ONNX face embedder, aligned by five landmarks (`embedder.model: onnx`).

    Make its calibration table with `facegate eval calibrate` and its cohort statistics with
    `facegate eval cohort` on your own photos (docs/accuracy.md).
    """

    model_config = {"protected_namespaces": ()}

    file: Path = Field(description="The .onnx file (NCHW float input, one face per batch row)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Checked before every load")
    space: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="Embedding space name: templates record it; change it with the model",
    )
    input_size: tuple[int, int] = Field((112, 112), description="Width, height of the input")
    template: tuple[
        tuple[float, float],
        tuple[float, float],
        tuple[float, float],
        tuple[float, float],
        tuple[float, float],
    ] = Field(
        ARCFACE_TEMPLATE,
        description="Where the five landmarks go in the input, in pixels (default: ArcFace 112x112)",
    )
    colour: Literal["rgb", "bgr"] = "rgb"
    mean: tuple[float, float, float] = Field((0.0, 0.0, 0.0), description="Subtracted from 0..255 pixels")
    scale: float = Field(1.0, gt=0, description="Multiplied after the mean is subtracted (e.g. 1/128)")
    output: str | None = Field(None, description="Output to read (default: the first)")

    @field_validator("input_size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not (16 <= v[0] <= 1024 and 16 <= v[1] <= 1024):
            raise ValueError("input_size must be between 16 and 1024 pixels a side")
        return v


class EmbedderSettings(BaseModel):
    model_config = {"protected_namespaces": ()}

    model: Literal["sface", "dlib", "reid0095", "sface+reid0095", "onnx"] = Field(
        "sface",
        description="SFace (OpenCV Zoo, the default: far fewer false matches, East Asian faces "
        "included), dlib's ResNet (the default before), Intel's face-reidentification-retail-0095 "
        "alone or score-fused with SFace (options: measure them on your population first, "
        "docs/accuracy.md), or your own ONNX model (`embedder.onnx`). Each is its own embedding "
        "space: `facegate people reembed` converts a gallery",
    )
    backend: Literal["onnx", "onnx-int8", "dlib"] = Field(
        "onnx",
        description="How dlib's ResNet runs (model: dlib): converted to ONNX Runtime (same embeddings, "
        "faster), its int8 quantization (close, not equal), or dlib itself",
    )
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, description="ONNX Runtime threads; 0 = the cores available")
    batch_size: int = Field(32, ge=1)
    flip: bool | None = Field(
        None,
        description="Flip fusion: embed each face and its mirror image and average them (two network "
        "passes per face; its own embedding space). Default: where it measured better (dlib, reid0095: "
        "on; SFace and the fusion: off, docs/accuracy.md)",
    )
    onnx: OnnxEmbedderSettings | None = None

    @model_validator(mode="after")
    def _onnx_given(self) -> EmbedderSettings:
        if self.model == "onnx" and self.onnx is None:
            raise ValueError("embedder.model: onnx needs an embedder.onnx section (file, sha256, space, ...)")
        return self

    @property
    def fused(self) -> bool:
        """Whether flip fusion runs: as set, else the model's measured default."""
        return self.flip if self.flip is not None else self.model in ("dlib", "reid0095")


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
    planarity: PlanaritySettings = Field(
        default_factory=PlanaritySettings,
        description="The motion cue: a face moving as a flat sheet is an attack (docs/liveness.md)",
    )
    provider: Literal["auto", "cpu", "cuda"] = "cpu"
    threads: int = Field(1, ge=0, description="ONNX Runtime threads; 0 = the cores available")
