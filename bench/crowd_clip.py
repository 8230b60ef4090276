"""A 1080p crowd clip for the camera benchmark: eight LFW faces walking toward the camera.

Eight people drawn (seeded) from the LFW people with at least two photos; five are enrolled
from their first photo, three are strangers. Each is shown, from another of their photos,
growing from ~60 to ~150 px over 105 frames (3.5 s at 30 fps) on a smooth, textured background.
Written under bench/.cache (never committed): crowd_1080p.mp4 and crowd_1080p.json (who is
where in every frame, and who is enrolled with which photo).

    python bench/crowd_clip.py
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from common import CACHE, LFW, require_lfw

WIDTH, HEIGHT, FPS, FRAMES = 1920, 1080, 30, 105
PEOPLE, ENROLLED = 8, 5
SEED = 23
CLIP = CACHE / "crowd_1080p.mp4"
TRUTH = CACHE / "crowd_1080p.json"
# LFW deep-funneled photos are 250x250 with the face (brow to chin) about 110 px tall in the
# middle: this square around it is pasted, so the face is FACE_SHARE of the patch.
CROP = (45, 205)
FACE_SHARE = 110 / (CROP[1] - CROP[0])


def background(rng: np.random.Generator) -> np.ndarray:
    """Low-frequency colour noise: texture for the detector to reject, no faces in it."""
    small = rng.integers(40, 200, (9, 16, 3), dtype=np.uint8)
    bg = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    bg += rng.normal(0, 6, (HEIGHT, WIDTH, 3)).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def choose(rng: np.random.Generator) -> list[tuple[str, Path, Path]]:
    """(name, enrolment photo, shown photo) for PEOPLE people with two or more photos, whose
    enrolment photo's middle enrols (one face, good enough: many LFW photos hold a second face)."""
    from facegate import load_settings
    from facegate.errors import FacegateError
    from facegate.vision.engine import FaceEngine

    engine = FaceEngine(load_settings())
    root = LFW / "images"
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)
    out = []
    for i in rng.permutation(len(names)):
        photos = sorted((root / names[i]).glob("*.jpg"))
        try:
            engine.enrolment_face(middle(photos[0]))
        except FacegateError:
            continue
        out.append((names[i], photos[0], photos[1]))
        if len(out) == PEOPLE:
            return out
    raise SystemExit("not enough LFW people enrol")


def middle(photo: Path) -> np.ndarray:
    """The square around the face of an LFW photo, RGB: what the clip shows and what is enrolled."""
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb[CROP[0] : CROP[1], CROP[0] : CROP[1]])


def main() -> None:
    require_lfw()
    rng = np.random.default_rng(SEED)
    people = choose(rng)
    bg = background(rng)
    # A 4 x 2 grid of walkers, each with its own start and end size and a slow drift.
    walkers = []
    for k, (name, enrol, shown) in enumerate(people):
        rgb = middle(shown)
        cx = 240 + 480 * (k % 4) + rng.uniform(-60, 60)
        cy = 300 + 480 * (k // 4) + rng.uniform(-40, 40)
        walkers.append(
            {
                "name": name,
                "enrolled": k < ENROLLED,
                "enrol_photo": str(enrol.relative_to(LFW)),
                "shown_photo": str(shown.relative_to(LFW)),
                "rgb": rgb,
                "start": (cx, cy),
                "drift": (rng.uniform(-1.0, 1.0), rng.uniform(0.3, 1.2)),  # px per frame
                "face_px": (rng.uniform(60, 75), rng.uniform(130, 150)),
            }
        )
    # A soft oval mask: the photo's own background fades into the scene.
    yy, xx = np.mgrid[-1:1:256j, -1:1:256j]
    oval = np.clip((1.0 - np.hypot(xx / 0.95, yy)) * 6.0, 0, 1).astype(np.float32)
    boxes: list[list[dict[str, object]]] = []
    CLIP.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(CLIP), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for f in range(FRAMES):
            img = bg.astype(np.float32)
            frame_boxes = []
            for w in walkers:
                t = f / (FRAMES - 1)
                face = w["face_px"][0] + (w["face_px"][1] - w["face_px"][0]) * t
                side = round(face / FACE_SHARE)
                cx = w["start"][0] + w["drift"][0] * f
                cy = w["start"][1] + w["drift"][1] * f
                x0, y0 = round(cx - side / 2), round(cy - side / 2)
                patch = cv2.resize(w["rgb"], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
                mask = cv2.resize(oval, (side, side))[..., None]
                region = img[y0 : y0 + side, x0 : x0 + side]
                region[:] = region * (1 - mask) + patch * mask
                half = face / 2
                frame_boxes.append(
                    {
                        "name": w["name"],
                        "box": [round(cx - half), round(cy - half), round(cx + half), round(cy + half)],
                    }
                )
            boxes.append(frame_boxes)
            frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    truth = {
        "clip": CLIP.name,
        "size": [WIDTH, HEIGHT],
        "fps": FPS,
        "frames": FRAMES,
        "seed": SEED,
        "people": [{k: w[k] for k in ("name", "enrolled", "enrol_photo", "shown_photo")} for w in walkers],
        "boxes": boxes,  # per frame: each person's face box (left, top, right, bottom)
    }
    TRUTH.write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {CLIP} and {TRUTH}", file=sys.stderr)


if __name__ == "__main__":
    main()
