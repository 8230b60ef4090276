"""Embed every photo of LFW or of the East Asian development set once, with its mirror image.

    nice -n 5 python bench/face_embeddings.py --set lfw [--model sface|dlib]
    nice -n 5 python bench/face_embeddings.py --set east_asian [--model sface|dlib]

Writes bench/.cache/faces_<set>[_<model>].npz (no suffix for dlib, the model of the first
caches): paths (relative), identity (the folder holding the photo), embeddings and flipped (raw
descriptors of the aligned input and of its mirror image), found.
The face nearest the image centre is used (both sets are centred on their subject). The East
Asian set is read from ../shared only, and only its embeddings are cached (never copied into the
project; bench/.cache is gitignored).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from facegate.vision.engine import FaceEngine
from facegate.vision.types import Face

from common import CACHE, SHARED, machine

_state: dict[str, object] = {}

SETS = {"lfw": SHARED / "faces" / "lfw" / "images", "east_asian": SHARED / "faces" / "east_asian_dev"}


def cache_path(name: str, model: str = "dlib") -> Path:
    """The cache of one set embedded by one model."""
    return CACHE / (f"faces_{name}.npz" if model == "dlib" else f"faces_{name}_{model}.npz")


def _init(model: str) -> None:
    from facegate.settings import load_settings

    s = load_settings()
    s.embedder.model = model  # type: ignore[assignment]
    s.embedder.threads = 1  # one core per worker: the machine is shared
    s.embedder.flip = False  # raw descriptors of the chip and of its mirror are cached separately
    _state["fe"] = FaceEngine(s)


def central_face(fe: FaceEngine, path: str) -> Face | None:
    """The detected face nearest the photo's centre (both sets are centred on their subject)."""
    try:
        res = fe.detect(path, expect_face=True)
    except Exception:  # an unreadable photo counts as no face
        return None
    if not res.faces:
        return None
    d = [
        ((f.box.left + f.box.right) / 2 - res.width / 2) ** 2
        + ((f.box.top + f.box.bottom) / 2 - res.height / 2) ** 2
        for f in res.faces
    ]
    return res.faces[int(np.argmin(d))]


def _embed(path: str) -> tuple[str, np.ndarray, np.ndarray, bool]:
    fe = _state["fe"]
    assert isinstance(fe, FaceEngine)
    zero = np.zeros(fe.embedder.dim, np.float32)
    face = central_face(fe, path)
    if face is None:
        return path, zero, zero, False
    chip = face.chip if face.crop is None else face.crop
    raw = fe.embedder.raw([chip, np.ascontiguousarray(chip[:, ::-1])])  # type: ignore[attr-defined]
    return path, raw[0], raw[1], True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=sorted(SETS), default="lfw")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", choices=["dlib", "sface", "reid0095"], default="dlib")
    args = ap.parse_args()
    root = SETS[args.set]
    if not root.is_dir():
        print(f"SKIP: {root} not found")
        return
    rel = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    out = cache_path(args.set, args.model)
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    with mp.Pool(args.workers, initializer=_init, initargs=(args.model,)) as pool, Progress() as bar:
        task = bar.add_task(f"embedding {args.set}", total=len(rel))
        for path, emb, flip, found in pool.imap_unordered(_embed, [str(root / r) for r in rel], chunksize=8):
            results[str(Path(path).relative_to(root))] = (emb, flip, found)
            bar.advance(task)
    elapsed = time.perf_counter() - started
    np.savez_compressed(
        out,
        paths=np.array(rel),
        identity=np.array([str(Path(r).parent) for r in rel]),
        embeddings=np.stack([results[r][0] for r in rel]),
        flipped=np.stack([results[r][1] for r in rel]),
        found=np.array([results[r][2] for r in rel]),
        seconds=elapsed,
        machine=machine(),
        model=args.model,
    )
    print(f"{len(rel)} images in {elapsed:.0f} s ({len(rel) / elapsed:.1f}/s) -> {out}")


if __name__ == "__main__":
    main()
