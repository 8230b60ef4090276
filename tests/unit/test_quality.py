"""Quality measures on made-up landmarks and chips."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facegate.errors import FaceQualityTooLow
from facegate.vision.quality import brightness, frontal, require_quality, sharpness
from facegate.vision.types import Quality

from tests.conftest import OBAMA

pytestmark = pytest.mark.unit


def _marks(nose_x: float) -> np.ndarray:
    # dlib's 5 points: two corners of one eye, two of the other, the base of the nose
    return np.array([[140, 100], [120, 100], [60, 100], [80, 100], [nose_x, 140]], np.float32)


def test_frontal_falls_as_the_nose_moves_towards_an_eye() -> None:
    assert frontal(_marks(100)) == pytest.approx(1.0)
    assert frontal(_marks(115)) == pytest.approx(0.5)
    assert frontal(_marks(85)) == pytest.approx(0.5)
    assert frontal(_marks(150)) == 0.0


def test_sharpness_and_brightness() -> None:
    chip = np.asarray(Image.open(OBAMA).convert("RGB").resize((150, 150)))
    blurred = np.asarray(Image.fromarray(chip).filter(ImageFilter.GaussianBlur(3)))
    assert sharpness(chip) > 2 * sharpness(blurred)
    assert brightness(np.zeros_like(chip)) == 0.0
    assert brightness(np.full_like(chip, 255)) == pytest.approx(1.0)


def test_gate_names_every_problem() -> None:
    q = Quality(size_px=40, sharpness=0.05, frontal=0.2, brightness=0.05)
    with pytest.raises(FaceQualityTooLow) as info:
        require_quality(
            q,
            "x.jpg",
            min_face_px=80,
            min_sharpness=0.1,
            min_frontal=0.5,
            min_brightness=0.1,
            max_brightness=0.9,
        )
    reasons = info.value.details["reasons"]
    assert isinstance(reasons, list) and len(reasons) == 4
    assert "smaller than the minimum" in info.value.message and "turned away" in info.value.message
