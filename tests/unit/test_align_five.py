"""Five-point alignment: the similarity fit and the warp, against landmarks computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facegate.vision.align_five import ARCFACE_112, similarity, warp
from facegate.vision.points import points_from_eyes

pytestmark = pytest.mark.unit


def test_similarity_recovers_a_known_rotation_scale_and_shift() -> None:
    # Landmarks placed by hand: the template turned by 30 degrees, doubled and moved by (40, 25).
    # The fit must map them back onto the template exactly.
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    rot = np.array([[c, -s], [s, c]])
    photo = ARCFACE_112 @ (2.0 * rot).T + np.array([40.0, 25.0])
    m = similarity(photo, ARCFACE_112)
    # The inverse of "turn 30 degrees, scale 2, shift": scale 0.5, turn -30 degrees.
    np.testing.assert_allclose(m[:, :2], 0.5 * rot.T, atol=1e-9)
    back = photo @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(back, ARCFACE_112, atol=1e-9)


def test_similarity_is_least_squares_for_noisy_points() -> None:
    # Two eyes only, 40 px apart on a horizontal line: the template's eyes (35.24 px apart, tilted
    # by -0.32 degrees) land on them exactly, whatever the other points do.
    eyes = np.array([[100.0, 200.0], [140.0, 200.0]])
    m = similarity(ARCFACE_112[:2], eyes)
    mapped = ARCFACE_112[:2] @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(mapped, eyes, atol=1e-9)
    scale = math.hypot(m[0, 0], m[1, 0])
    assert scale == pytest.approx(40.0 / float(np.linalg.norm(ARCFACE_112[1] - ARCFACE_112[0])), rel=1e-9)


def test_similarity_refuses_degenerate_points() -> None:
    with pytest.raises(ValueError):
        similarity(np.ones((5, 2)), ARCFACE_112)
    with pytest.raises(ValueError):
        similarity(np.ones((1, 2)), ARCFACE_112[:1])


def test_warp_moves_marked_landmarks_onto_the_template() -> None:
    # A black photo with a white 3x3 dot at each of five hand-placed landmarks (a face turned by
    # 20 degrees, 1.7 times the template's size): in the crop, each dot sits at its template point.
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    points = ARCFACE_112 @ (1.7 * np.array([[c, -s], [s, c]])).T + np.array([150.0, 60.0])
    image = np.zeros((400, 400, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    crop = warp(image, points, ARCFACE_112, (112, 112))
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    gray = crop[..., 0].astype(float)
    for tx, ty in ARCFACE_112:
        x, y = round(tx), round(ty)
        patch = gray[y - 3 : y + 4, x - 3 : x + 4]
        assert patch.max() > 100, f"no dot near template point ({tx:.1f}, {ty:.1f})"
        # The brightest pixel of the patch is within 1.5 px of the template point.
        py, px = np.unravel_index(int(np.argmax(patch)), patch.shape)
        assert math.hypot(px - 3 + x - tx, py - 3 + y - ty) <= 1.5
    assert gray[:20, :20].max() == 0  # outside the dots: black, not stretched


def test_points_from_eyes_puts_the_template_eyes_on_dlibs_eye_centres() -> None:
    # dlib's five points: two corners per eye (here the left eye in the image first), nose base.
    marks = np.array([[150, 100], [170, 100], [90, 100], [110, 100], [130, 130]], np.float32)
    pts = points_from_eyes(marks)
    np.testing.assert_allclose(pts[0], [100, 100], atol=1e-4)  # the person's right eye, image left
    np.testing.assert_allclose(pts[1], [160, 100], atol=1e-4)
    assert pts[3, 1] > pts[2, 1] > pts[0, 1]  # nose below the eyes, mouth below the nose
