"""Safe image decoding: bytes in, an RGB uint8 array out, or a clear `BadImage`.

Untrusted uploads reach this function, so it refuses before decoding anything that is too
large in bytes or in pixels (decompression bombs), accepts only a short list of formats,
applies EXIF orientation and normalises every pixel mode to 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegate.errors import BadImage, ImageTooLarge

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "PPM")

ImageInput = str | Path | bytes | bytearray | memoryview | np.ndarray | Image.Image


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000


def load_image(source: ImageInput, limits: DecodeLimits | None = None) -> np.ndarray:
    """Return an HxWx3 uint8 RGB array from a path, bytes, a PIL image or an array."""
    limits = limits or DecodeLimits()
    if isinstance(source, np.ndarray):
        return _from_array(source, limits)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, limits, "image")
        return _to_rgb_array(source)
    if isinstance(source, (str, Path)):
        return decode_bytes(_read_file(Path(source), limits), limits, name=str(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_bytes(bytes(source), limits)
    raise BadImage(f"cannot read an image from a {type(source).__name__}")


def decode_bytes(data: bytes, limits: DecodeLimits | None = None, name: str = "image") -> np.ndarray:
    limits = limits or DecodeLimits()
    if len(data) == 0:
        raise BadImage(f"{name}: the file is empty", source=name)
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{name}: {len(data)} bytes is over the limit of {limits.max_bytes}", source=name)
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) between MAX_IMAGE_PIXELS and twice it; our own
            # pixel check below is the one that decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as exc:
        raise BadImage(
            f"{name}: not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)})", source=name
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name}: {exc}", source=name) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"{name}: cannot read the image header: {exc}", source=name) from exc
    # Only the header has been read so far: refuse bombs before a single pixel is decoded.
    _check_pixels(img.size, limits, name)
    try:
        img.seek(0)  # animated GIF/WebP: the first frame
        img.load()
        img = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name}: {exc}", source=name) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadImage(f"{name}: the image data is corrupt or truncated ({exc})", source=name) from exc
    return _to_rgb_array(img)


def _read_file(path: Path, limits: DecodeLimits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageTooLarge(f"{path}: {size} bytes is over the limit of {limits.max_bytes}")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise BadImage(f"{path}: no such file", source=str(path)) from exc
    except IsADirectoryError as exc:
        raise BadImage(f"{path}: is a directory, not an image", source=str(path)) from exc
    except PermissionError as exc:
        raise BadImage(f"{path}: permission denied", source=str(path)) from exc
    except (OSError, ValueError) as exc:  # not a directory, name too long, NUL in the path...
        raise BadImage(f"{path}: cannot read the file ({exc})", source=str(path)) from exc


def _check_pixels(size: tuple[int, int], limits: DecodeLimits, name: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise BadImage(f"{name}: the image has no pixels ({width}x{height})", source=name)
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"{name}: {width}x{height} is {width * height} pixels, over the limit of {limits.max_pixels}",
            source=name,
        )


def _from_array(arr: np.ndarray, limits: DecodeLimits) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise BadImage(f"expected an HxW, HxWx3 or HxWx4 array, got shape {arr.shape}")
    _check_pixels((arr.shape[1], arr.shape[0]), limits, "array")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = _rescale_to_uint8(arr)
    return np.ascontiguousarray(arr)


def _rescale_to_uint8(arr: np.ndarray) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        # Floats in [0, 1] are the common convention; anything else is scaled by its range.
        peak = float(np.nanmax(arr)) if arr.size else 1.0
        scale = 255.0 if peak <= 1.0 else 255.0 / max(peak, 1e-6)
        out: np.ndarray = np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8)
    elif arr.dtype == np.uint16 or (np.issubdtype(arr.dtype, np.integer) and arr.max(initial=0) > 255):
        out = (np.clip(arr, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    else:
        out = np.clip(arr, 0, 255).astype(np.uint8)
    return out


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow's convert("RGB") clips 16-bit samples at 255 (a white image); scale instead.
        gray = np.asarray(img)
        if mode == "F":
            gray = _rescale_to_uint8(gray.astype(np.float32))
        else:
            gray = (np.clip(gray.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray] * 3, axis=-1))
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become white, as a viewer shows them, not black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
