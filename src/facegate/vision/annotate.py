"""Draw boxes, landmarks and names on a photo: what a person looks at to check a result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facegate.vision.types import Face

MATCH = (46, 204, 113)
UNKNOWN = (231, 76, 60)
NEUTRAL = (52, 152, 219)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for candidate in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def annotate(
    image: np.ndarray,
    faces: Sequence[Face],
    labels: Sequence[str | None] | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """A copy of `image` with each face's box, landmarks and label drawn on it."""
    out = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(out)
    scale = max(out.size) / 1000
    width = max(2, round(3 * scale))
    font = _font(max(12, round(22 * scale)))
    for i, face in enumerate(faces):
        colour = colours[i] if colours else NEUTRAL
        b = face.box
        draw.rectangle([b.left, b.top, b.right - 1, b.bottom - 1], outline=colour, width=width)
        r = max(2, width)
        for x, y in face.landmarks:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        label = labels[i] if labels else None
        if label:
            tb = draw.textbbox((0, 0), label, font=font)
            tw, th = tb[2] - tb[0], tb[3] - tb[1]
            pad = max(3, width)
            top = b.bottom if b.bottom + th + 2 * pad < out.height else max(b.top - th - 2 * pad, 0)
            draw.rectangle([b.left, top, b.left + tw + 2 * pad, top + th + 2 * pad], fill=colour)
            draw.text((b.left + pad, top + pad - tb[1]), label, fill=(255, 255, 255), font=font)
    return out


def save_annotated(img: Image.Image, path: Path) -> None:
    from facegate.errors import ConfigError

    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write the annotated image {path}: {exc}") from exc
