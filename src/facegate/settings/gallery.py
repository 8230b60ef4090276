"""Settings of matching, the vector index and the gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class MatchSettings(BaseModel):
    target_fmr: float = Field(
        1e-3, gt=0, lt=1, description="Accepted false-match rate per comparison (see docs/accuracy.md)"
    )
    ambiguity_margin: float | None = Field(
        None,
        ge=0,
        description="Best and second-best people closer than this: unknown (default: 1.5x the score "
        "distance between the calibration table's 1e-3 and 1e-4 thresholds, 0.02 for dlib's ResNet)",
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
    verify_thresholds: Literal["person", "table"] = Field(
        "person",
        description="1:1 against an enrolled person: at the higher of the table's threshold and the "
        "person's own for target_fmr (from their scores against the others enrolled and the cohort: "
        "people who look like others enrolled are held higher), or at the table's alone",
    )
    gallery_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of strangers assumed to look like the people enrolled (their own impostor "
        "scores set each person's threshold; the rest: the shipped cohort's). Default: the weight "
        "measured for the model, kept with its cohort statistics (dlib 0.2, SFace 1.0)",
    )
    top_k: int = Field(3, ge=1, le=100)
    calibration_file: Path | None = Field(
        None, description="Calibration table to use instead of the one shipped with the model"
    )
    cohort_file: Path | None = Field(
        None,
        description="Cohort statistics to use instead of the ones shipped with the model "
        "(`facegate eval cohort`; needed for per-person thresholds of your own model)",
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
