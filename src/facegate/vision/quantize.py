"""Static int8 quantization of the ONNX face embedder, calibrated on real face chips.

    facegate models quantize --faces DIR    # DIR: photos of faces (e.g. a few hundred LFW images)

The int8 model is an option, not the default: it is faster on CPUs with int8 dot-product
instructions and its embeddings are close to, but not the same as, dlib's (see
docs/benchmarks.md for the measured difference and its effect on LFW accuracy).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facegate.vision.models import ONNX_RESNET, converted_path

INT8_NAME = "dlib_face_recognition_resnet_model_v1.int8.onnx"


def int8_path(models_dir: Path) -> Path:
    return models_dir / INT8_NAME


def quantize_embedder(models_dir: Path, chips: list[np.ndarray], batch: int = 16) -> Path:
    """Write the int8 embedder next to the fp32 one, calibrated on `chips`; return its path."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if len(chips) < 16:
        from facegate.errors import ConfigError

        raise ConfigError(f"calibrating int8 needs at least 16 faces, found {len(chips)}")
    fp32 = converted_path(ONNX_RESNET, models_dir)

    class Chips(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            # Equal batches only: the percentile calibrator stacks them.
            usable = len(chips) - len(chips) % batch
            self._it: Iterator[dict[str, np.ndarray]] = (
                {"chips": np.stack(chips[i : i + batch]).astype(np.float32)} for i in range(0, usable, batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    out = int8_path(models_dir)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    # ONNX Runtime's quantizer prints progress on stdout, which belongs to --json output.
    with contextlib.redirect_stdout(sys.stderr):
        quantize_static(
            str(fp32),
            str(tmp),
            Chips(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": 99.99},
        )
    os.replace(tmp, out)
    return out
