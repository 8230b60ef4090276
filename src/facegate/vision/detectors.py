"""Every face detector facegate runs is built here, from the settings.

Which detector runs where is configuration: the engine's (`detector.backend`), its CNN fallback
(`detector.cnn_fallback`), a camera's (`cameras[].detector`), and redaction's second pass.
"""

from __future__ import annotations

from typing import Literal

from facegate.settings import CameraSettings, Settings
from facegate.vision.protocols import Detector

DetectorKind = Literal["yunet", "hog", "cnn"]


def build_detector(
    settings: Settings, kind: DetectorKind, upsample: int, max_side: int, threads: int = 0
) -> Detector:
    """YuNet, HOG, or the MMOD CNN on the configured runtime (`detector.cnn_runtime`).

    `upsample` is for HOG and the CNN, which miss faces under ~80 px without it; YuNet finds
    faces from ~12 px and is not upsampled. `threads`: ONNX Runtime's (0: `embedder.threads`).
    """
    d = settings.detector
    e = settings.embedder
    threads = threads or e.threads
    if kind == "yunet":
        from facegate.vision.detect_yunet import YuNetDetector

        return YuNetDetector(
            max_side=max_side,
            min_score=d.yunet_min_score,
            tiles=d.tiles,
            provider=e.provider,
            threads=threads,
        )
    if kind == "hog":
        from facegate.vision.detect_dlib import HogDetector

        return HogDetector(upsample=upsample, max_side=max_side, min_score=d.min_score)
    if d.cnn_runtime == "dlib":
        from facegate.vision.detect_dlib import MmodDetector

        return MmodDetector(upsample=upsample, max_side=max_side, min_score=d.min_score)
    from facegate.vision.detect_onnx import OnnxMmodDetector

    return OnnxMmodDetector(
        settings.models_dir, upsample, max_side, d.min_score, provider=e.provider, threads=threads
    )


def default_detector(settings: Settings) -> Detector:
    """The detector of photos (enrolment, identification, verification)."""
    d = settings.detector
    return build_detector(settings, d.backend, d.upsample, d.max_side)


def fallback_detector(settings: Settings) -> Detector | None:
    """The CNN tried after the detector finds no face where one is expected; None if there is none."""
    d = settings.detector
    if d.backend == "cnn" or d.cnn_fallback == "never":
        return None
    return build_detector(settings, "cnn", 0, d.cnn_fallback_max_side)


def camera_detector(settings: Settings, camera: CameraSettings, threads: int = 0) -> Detector:
    """A camera's detector, tuned for its frames (size, upsampling)."""
    return build_detector(settings, camera.detector, camera.upsample, camera.detect_max_side, threads)


def sensitive_detector(settings: Settings) -> Detector:
    """The second pass redaction runs, to find small and turned faces: YuNet at double resolution
    with a lower score and full-resolution tiles (the default), or the CNN at double resolution
    where HOG or the CNN is the configured detector."""
    if settings.detector.backend == "yunet":
        from facegate.vision.detect_yunet import YuNetDetector

        e = settings.embedder
        return YuNetDetector(
            max_side=1280, min_score=0.5, upsample=1, tiles=True, provider=e.provider, threads=e.threads
        )
    return build_detector(settings, "cnn", 1, 1280)
