"""The moved-print edits: repeatable, the image's size kept, and each one a real change."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.eval.pad_variants import VARIANTS, variants_named

pytestmark = pytest.mark.unit


def _photo() -> np.ndarray:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    image[30:90, 50:110] = 200  # a bright square: moved by the geometric edits
    return image


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_edit_repeats_keeps_the_size_and_changes_the_image(name: str) -> None:
    v, image = VARIANTS[name], _photo()
    a, b = v.apply(image, "attack/0001_x.jpg"), v.apply(image, "attack/0001_x.jpg")
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)  # seeded by the photo's name: a rerun scores the same pixels
    changed = float(np.mean(a.astype(np.int16) != image.astype(np.int16)))
    assert (changed == 0.0) == (name == "captured")
    assert np.array_equal(image, _photo())  # the source is never edited in place


def test_shear_moves_the_middle_rows_little_and_the_top_rows_most() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, 45:55] = 255  # a vertical bar
    out = VARIANTS["shear"].apply(image, "k")
    cols = [float(np.argmax(out[y, :, 0] > 128)) for y in (5, 50, 95)]
    assert abs(cols[1] - 45) <= 1  # sheared about the centre
    assert abs(cols[0] - cols[2]) >= 0.2 * 90  # at least 0.2 of the height from top to bottom


def test_names_are_checked() -> None:
    assert [v.name for v in variants_named("shear, jpeg")] == ["shear", "jpeg"]
    assert len(variants_named("all")) == len(VARIANTS)
    with pytest.raises(ValueError, match="unknown variant"):
        variants_named("shear,wobble")
