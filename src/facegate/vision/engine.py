"""FaceEngine: pixels in, faces (boxes, landmarks, chips, quality, embeddings) out."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from facegate.errors import LivenessNotAssessed, NoFaceFound, PresentationAttack, TooManyFaces
from facegate.settings import Settings, load_settings
from facegate.vision.decode import DecodeLimits, ImageInput, load_image
from facegate.vision.detectors import default_detector, fallback_detector, sensitive_detector
from facegate.vision.embed_flip import FlipFused, fused_space
from facegate.vision.geometry import clip
from facegate.vision.liveness import LivenessCheck, LivenessResult
from facegate.vision.models import DLIB_RESNET_SPACE, FIVE_POINT_SPACES
from facegate.vision.points import points_from_eyes, points_near
from facegate.vision.protocols import Aligner, Detector, Embedder, five_point_cropper
from facegate.vision.quality import assess, require_quality
from facegate.vision.types import Box, Detection, Face, Quality


@dataclass
class AnalysedImage:
    """An image and the faces found in it, largest first."""

    image: np.ndarray
    faces: list[Face]

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _five_point(model: str) -> bool:
    return all(name in FIVE_POINT_SPACES for name in model.split("+"))


def default_embedder(settings: Settings) -> Embedder:
    """The configured embedding model (`embedder.model`), flip-fused where `embedder.fused`."""
    e = settings.embedder
    inner: Embedder
    if _five_point(e.model):
        from facegate.vision.embed_five import SHIPPED

        parts = [
            SHIPPED[name](settings.models_dir, e.provider, e.threads, e.batch_size)
            for name in e.model.split("+")
        ]
        if len(parts) == 1:
            inner = parts[0]
        else:
            from facegate.vision.embed_fused import ScoreFused

            inner = ScoreFused(parts)
    elif e.model == "onnx":
        from facegate.vision.embed_five import operator_model

        assert e.onnx is not None  # the settings refuse model: onnx without its section
        inner = operator_model(e.onnx, e.provider, e.threads, e.batch_size)
    elif e.backend == "dlib":
        from facegate.vision.embed_dlib import DlibResNetEmbedder

        inner = DlibResNetEmbedder()
    else:
        from facegate.vision.embed_onnx import OnnxResNetEmbedder

        inner = OnnxResNetEmbedder(
            settings.models_dir, e.provider, e.threads, e.batch_size, int8=e.backend == "onnx-int8"
        )
    return FlipFused(inner) if e.fused else inner


def default_space(settings: Settings) -> str:
    """The embedding space `default_embedder` gives, without loading a model."""
    e = settings.embedder
    if _five_point(e.model):
        base = "+".join(FIVE_POINT_SPACES[name] for name in e.model.split("+"))
    elif e.model == "onnx":
        assert e.onnx is not None
        base = e.onnx.space
    else:  # every dlib backend is dlib's ResNet or an exact port of it
        base = DLIB_RESNET_SPACE
    return fused_space(base) if e.fused else base


# A face this many times smaller than an enrolment photo's main face is a bystander.
BYSTANDER = 3


def _sized(det: Detection) -> Box:
    """The box quality rules measure. They were set on dlib's HOG boxes (square, ear to ear);
    YuNet's are narrower and taller, so its faces are measured on the HOG-like box placed from
    its landmarks: `quality.min_face_px` keeps its meaning whichever detector runs."""
    if det.points is None:
        return det.box
    from facegate.vision.align_dlib import predictor_box

    try:
        return predictor_box(det.points)
    except ValueError:
        return det.box


class FaceEngine:
    """Detect, align, assess and embed faces.

    >>> engine = FaceEngine()
    >>> faces = engine.analyse("photo.jpg").faces
    >>> faces[0].embedding.shape
    (128,)
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        detector: Detector | None = None,
        aligner: Aligner | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        started = time.perf_counter()
        self.detector = detector or default_detector(self.settings)
        self._fallback: Detector | None = None
        self._fallback_wanted = detector is None
        if aligner is None:
            from facegate.vision.align_dlib import DlibAligner

            aligner = DlibAligner()
        self.aligner = aligner
        self.embedder = embedder or default_embedder(self.settings)
        self._cropper = five_point_cropper(self.embedder)
        self._point_finder: Detector | None = None  # YuNet, for boxes of detectors without landmarks
        self.load_seconds = time.perf_counter() - started
        self.limits = DecodeLimits(**self.settings.images.model_dump())
        self._liveness: LivenessCheck | None = None  # built on first use
        self._redaction: Detector | None = None
        self._redaction_lock = threading.Lock()

    def redaction_detector(self) -> Detector:
        """The thorough detector that finds the faces to blur in snapshots, built on first use
        and shared by every camera using this engine's models."""
        with self._redaction_lock:
            if self._redaction is None:
                self._redaction = sensitive_detector(self.settings)
            return self._redaction

    @property
    def space(self) -> str:
        return self.embedder.space

    def load(self, source: ImageInput) -> np.ndarray:
        return load_image(source, self.limits)

    def detect(self, source: ImageInput | np.ndarray, *, expect_face: bool = False) -> AnalysedImage:
        """Faces with boxes, landmarks, chips and quality, but no embeddings yet.

        `expect_face`: the photo should show a face (enrolment, 1:1), so a miss of the fast
        detector is worth a try with the CNN (setting `detector.cnn_fallback`).
        """
        image = self.load(source)
        detections = self.detector.detect(image)
        fallback = self.settings.detector.cnn_fallback
        if not detections and self._fallback_wanted and (expect_face or fallback == "always"):
            if self._fallback is None:
                self._fallback = fallback_detector(self.settings)
                self._fallback_wanted = self._fallback is not None
            if self._fallback is not None:
                detections = self._fallback.detect(image)
        faces = [self.face(image, det) for det in detections]
        faces.sort(key=lambda f: -f.box.width * f.box.height)
        return AnalysedImage(image, faces)

    def face(self, image: np.ndarray, det: Detection) -> Face:
        """A detected face with its landmarks, chip, quality and (for a five-point embedder) the
        embedder's own aligned crop; not embedded yet."""
        h, w = image.shape[:2]
        marks = self.aligner.landmarks(image, det)
        chip = self.aligner.chip(image, marks)
        sized = _sized(det)
        square = clip(sized, w, h) if det.points is not None else None
        crop = None
        if self._cropper is not None:
            crop = self._cropper.crop(image, self._five_points(image, det, marks))
        return Face(
            clip(det.box, w, h),
            det.score,
            marks,
            chip,
            assess(sized, marks, chip),
            square_box=square,
            crop=crop,
        )

    def follow(self, image: np.ndarray, det: Detection, previous: Face) -> Face:
        """A detected face of a track that needs no new work on it (decided, not due to be
        embedded): its box, with the previous sighting's landmarks moved along and its chip and
        quality carried over, without running the landmark predictor or cutting a chip."""
        h, w = image.shape[:2]
        box = clip(det.box, w, h)
        sized = _sized(det)
        before = previous.rules_box
        scale = sized.width / max(before.width, 1)
        old_centre = np.array(
            [(before.left + before.right) / 2, (before.top + before.bottom) / 2], np.float32
        )
        new_centre = np.array([(sized.left + sized.right) / 2, (sized.top + sized.bottom) / 2], np.float32)
        marks = (previous.landmarks - old_centre) * np.float32(scale) + new_centre
        q = previous.quality
        return Face(
            box,
            det.score,
            marks.astype(np.float32),
            previous.chip,
            Quality(sized.size, q.sharpness, q.frontal, q.brightness),
            square_box=clip(sized, w, h) if det.points is not None else None,
        )

    def _five_points(self, image: np.ndarray, det: Detection, marks: np.ndarray) -> np.ndarray:
        if det.points is not None:
            return det.points
        if self._point_finder is None:
            from facegate.vision.detectors import build_detector

            self._point_finder = build_detector(self.settings, "yunet", 0, self.settings.detector.max_side)
        found = points_near(self._point_finder, image, det)
        return found if found is not None else points_from_eyes(marks)

    def embed(self, faces: list[Face]) -> None:
        """Fill in `face.embedding` for every face, in one batch."""
        if not faces:
            return
        vectors = self.embedder.embed([f.chip if f.crop is None else f.crop for f in faces])
        for face, vec in zip(faces, vectors, strict=True):
            face.embedding = vec

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """Embeddings of kept face chips (dlib-aligned, 150x150): for a five-point embedder its
        crop is cut from each chip at the landmarks YuNet finds in it (`gallery reembed`)."""
        if self._cropper is None or not chips:
            return self.embedder.embed(chips)
        return self.embedder.embed([self._cropper.crop(c, self._chip_points(c)) for c in chips])

    def _chip_points(self, chip: np.ndarray) -> np.ndarray:
        # dlib's chips frame the face with a quarter of padding on every side: YuNet is given a
        # black margin around it (a face filling the whole input is found less reliably).
        pad = chip.shape[0] // 4
        framed = np.pad(chip, ((pad, pad), (pad, pad), (0, 0)))
        side = chip.shape[0]
        lo, hi = pad + side // 6, pad + side - side // 6  # where dlib's box lies in its chip
        face = Detection(Box(lo, lo, hi, hi), 1.0)
        marks = self.aligner.landmarks(framed, face)
        return self._five_points(framed, face, marks) - np.float32(pad)

    def analyse(self, source: ImageInput, max_faces: int | None = None) -> AnalysedImage:
        """Detect and embed every face (the `max_faces` largest, if given)."""
        result = self.detect(source)
        if max_faces is not None:
            result.faces = result.faces[:max_faces]
        self.embed(result.faces)
        return result

    def require_live(self, result: AnalysedImage, face: Face, name: str = "image") -> LivenessResult:
        """Raise unless `face` is judged live in its photo (`PresentationAttack`, or
        `LivenessNotAssessed` for a face that cannot be judged: it is never taken as live)."""
        if self._liveness is None:
            self._liveness = LivenessCheck(self.settings.liveness)
        r = self._liveness.assess(result.image, [face])[0]
        if r.verdict == "attack":
            raise PresentationAttack(
                f"{name}: judged a presentation attack (a photo or screen), not a live face",
                source=name,
                liveness=r.to_dict(),
            )
        if r.verdict != "live":
            raise LivenessNotAssessed(
                f"{name}: liveness cannot be judged ({r.reason.replace('_', ' ')})",
                source=name,
                liveness=r.to_dict(),
            )
        return r

    def enrolment_face(self, source: ImageInput, name: str = "image", *, liveness: bool = False) -> Face:
        """The single, good-enough face of an enrolment photo, embedded; else a typed error.
        `liveness`: refuse a photo judged a presentation attack (remote onboarding)."""
        result = self.detect(source, expect_face=True)
        if not result.faces:
            raise NoFaceFound(f"{name}: no face found", source=name)
        # Faces under a third of the main face's size are bystanders far behind (YuNet sees them,
        # HOG did not): they do not make the photo a group photo.
        main = result.faces[0].quality.size_px
        result.faces = [f for f in result.faces if f.quality.size_px * BYSTANDER >= main]
        if len(result.faces) > 1:
            raise TooManyFaces(
                f"{name}: {len(result.faces)} faces found; an enrolment photo must show one person",
                source=name,
                faces=len(result.faces),
            )
        face = result.faces[0]
        q = self.settings.quality
        require_quality(
            face.quality,
            name,
            min_face_px=q.min_face_px,
            min_sharpness=q.min_sharpness,
            min_frontal=q.min_frontal,
            min_brightness=q.min_brightness,
            max_brightness=q.max_brightness,
        )
        if liveness:
            self.require_live(result, face, name)
        self.embed([face])
        return face

    def largest_face(self, source: ImageInput, name: str = "image", *, liveness: bool = False) -> Face:
        """The largest face, embedded (for 1:1 verification of a selfie or ID photo).
        `liveness`: refuse a photo judged a presentation attack (the selfie, not the ID photo)."""
        result = self.detect(source, expect_face=True)
        if not result.faces:
            raise NoFaceFound(f"{name}: no face found", source=name)
        face = result.faces[0]
        if liveness:
            self.require_live(result, face, name)
        self.embed([face])
        return face
