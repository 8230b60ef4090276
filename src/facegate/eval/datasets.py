"""Evaluation datasets: pair protocols (LFW's pairs.csv, generic img1,img2,same CSV) and
identity folders (DIR/<identity>/<photo>), and the embedding of their photos, cached."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.errors import ConfigError, FacegateError
from facegate.vision.engine import FaceEngine

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".pgm", ".ppm"}


@dataclass(frozen=True)
class PairProtocol:
    root: Path  # image paths are relative to this
    pairs: list[tuple[str, str]]
    same: np.ndarray  # 1 genuine, 0 impostor
    folds: np.ndarray  # fold of each pair (all 0 when the file has none)

    @property
    def images(self) -> list[str]:
        return sorted({p for pair in self.pairs for p in pair})


def load_pairs(path: Path, images: Path | None = None) -> PairProtocol:
    """A CSV with columns img1,img2,same[,fold] (LFW's pairs.csv has all four).

    Image paths are relative to `images`, else to an `images/` folder beside the CSV, else
    to the CSV's folder.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: no such pairs file")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"img1", "img2", "same"}
        if not need <= set(reader.fieldnames or []):
            raise ConfigError(f"{path}: expected columns img1,img2,same[,fold], found {reader.fieldnames}")
        rows = list(reader)
    if not rows:
        raise ConfigError(f"{path}: no pairs")
    root = images or (path.parent / "images" if (path.parent / "images").is_dir() else path.parent)
    try:
        same = np.array([int(r["same"]) for r in rows])
        folds = np.array([int(r.get("fold") or 0) for r in rows])
    except ValueError as exc:
        raise ConfigError(f"{path}: 'same' and 'fold' must be integers ({exc})") from exc
    if not set(np.unique(same)) <= {0, 1}:
        raise ConfigError(f"{path}: 'same' must be 0 or 1")
    return PairProtocol(root, [(r["img1"], r["img2"]) for r in rows], same, folds)


def identity_folders(root: Path) -> dict[str, list[str]]:
    """{identity: [relative photo paths]}: every folder under `root` that holds photos is one
    identity, named by its path relative to `root` (DIR/<identity>/<photo>, or deeper trees
    such as DIR/<source>/<identity>/<photo>)."""
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    out: dict[str, list[str]] = {}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        photos = sorted(
            p.relative_to(root).as_posix() for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if photos:
            out[d.relative_to(root).as_posix()] = photos
    if not out:
        raise ConfigError(f"{root}: no identity folders with photos")
    return out


def identity_of(photo: str) -> str:
    """The identity of a photo path from `identity_folders`: its folder."""
    return photo.rpartition("/")[0]


@dataclass
class Embeddings:
    """Unit embeddings of a dataset's photos; `found[i]` is False where no face was found."""

    paths: list[str]
    vectors: np.ndarray
    found: np.ndarray

    def index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}

    @property
    def failure_to_enrol(self) -> float:
        return float((~self.found).mean()) if len(self.found) else 0.0


def _centre_face(engine: FaceEngine, path: Path) -> np.ndarray | None:
    res = engine.detect(path, expect_face=True)
    if not res.faces:
        return None
    # Benchmark photos are centred on their subject; other faces in them are bystanders.
    face = min(
        res.faces,
        key=lambda f: (
            ((f.box.left + f.box.right) / 2 - res.width / 2) ** 2
            + ((f.box.top + f.box.bottom) / 2 - res.height / 2) ** 2
        ),
    )
    engine.embed([face])
    return face.embedding


def model_signature(engine: FaceEngine) -> str:
    """What decides a photo's embedding: detector and its settings, embedder and its model file."""
    d = engine.settings.detector
    emb = engine.embedder
    # A wrapper (flip fusion) is named with what it wraps: fp32 and int8 must not share a cache.
    inner = getattr(emb, "inner", None)
    model = getattr(inner if inner is not None else emb, "path", None)
    return "|".join(
        [
            engine.space,
            type(engine.detector).__name__,
            f"{d.upsample}/{d.max_side}/{d.min_score}/{d.cnn_fallback}/{d.cnn_runtime}"
            f"/{d.yunet_min_score}/{d.tiles}",
            type(emb).__name__ + (f"({type(inner).__name__})" if inner is not None else ""),
            str(model.name) if model is not None else "",
        ]
    )


def embed_dataset(
    engine: FaceEngine,
    root: Path,
    paths: list[str],
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Embeddings:
    """Embed each photo's central face.

    Results are cached per dataset folder and model, photo by photo (keyed by name, size and
    modification time), so evaluations of the same photos share the work.
    """
    key = hashlib.sha256(f"{root.resolve()}\0{model_signature(engine)}".encode()).hexdigest()[:24]
    cache = cache_dir / f"{key}.npz" if cache_dir else None
    known: dict[str, tuple[tuple[int, int], np.ndarray, bool]] = {}
    if cache is not None and cache.exists():
        data = np.load(cache)
        for p, st, v, f in zip(
            data["paths"].tolist(), data["stats"], data["vectors"], data["found"], strict=True
        ):
            known[p] = ((int(st[0]), int(st[1])), v, bool(f))
    vectors = np.zeros((len(paths), engine.embedder.dim), np.float32)
    found = np.zeros(len(paths), bool)
    fresh = 0
    for i, p in enumerate(paths):
        try:
            st = (root / p).stat()
            stat = (st.st_size, st.st_mtime_ns)
        except OSError:
            stat = (-1, -1)
        hit = known.get(p)
        if hit is not None and hit[0] == stat:
            vectors[i], found[i] = hit[1], hit[2]
        else:
            try:
                emb = _centre_face(engine, root / p)
            except FacegateError:
                emb = None  # unreadable photos count as failures to enrol
            if emb is not None:
                vectors[i], found[i] = emb, True
            known[p] = (stat, vectors[i], bool(found[i]))
            fresh += 1
        if progress:
            progress(1)
    if cache is not None and fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        names = sorted(known)
        np.savez_compressed(
            cache,
            paths=np.array(names),
            stats=np.array([known[n][0] for n in names], np.int64),
            vectors=np.stack([known[n][1] for n in names]),
            found=np.array([known[n][2] for n in names]),
        )
    return Embeddings(list(paths), vectors, found)
