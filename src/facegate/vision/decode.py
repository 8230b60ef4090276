"""Safe image decoding: bytes in, an RGB uint8 array out, or a clear `BadImage`.

Untrusted uploads reach this function, so it refuses from the header alone, before a pixel
is decoded, anything too large in bytes, in pixels or along its long side, anything shaped
like no photo (a 1x40,000,000 strip) and a small file that declares far more pixels than its
bytes can hold (decompression bombs); a PNG whose data ends before its last row is refused
too (Pillow fills the rest with zeros). It accepts only a short list of formats, applies EXIF
orientation and normalises every pixel mode to 8-bit RGB.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegate.errors import BadImage, ImageTooLarge

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "PPM")

ImageInput = str | Path | bytes | bytearray | memoryview | np.ndarray | Image.Image


# Below this many pixels any file may be as small as it likes (a blank 640x480 PNG is a few
# hundred bytes); above it, `max_pixels_per_byte` applies: decoding costs by the pixel, and a
# photo of a face is never as flat as a bomb.
FREE_PIXELS = 4_000_000


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 8192
    max_aspect: float = 8.0
    max_pixels_per_byte: int = 256


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
    _check_density(img.size, len(data), limits, name)
    if img.format == "PNG":
        _check_png_complete(data, name)
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
    if max(width, height) > limits.max_side:
        raise ImageTooLarge(
            f"{name}: {width}x{height} is over the limit of {limits.max_side} pixels on its long side",
            source=name,
        )
    if max(width, height) > limits.max_aspect * min(width, height):
        raise BadImage(
            f"{name}: {width}x{height} is no photo's shape (sides more than {limits.max_aspect:g} to 1)",
            source=name,
        )


def _check_density(size: tuple[int, int], n_bytes: int, limits: DecodeLimits, name: str) -> None:
    """Refuse a large image whose file is too small to hold it: a bomb, or truncated."""
    pixels = size[0] * size[1]
    if pixels > max(FREE_PIXELS, n_bytes * limits.max_pixels_per_byte):
        raise ImageTooLarge(
            f"{name}: {size[0]}x{size[1]} pixels from {n_bytes} bytes is more than "
            f"{limits.max_pixels_per_byte} pixels a byte (a decompression bomb or a truncated file)",
            source=name,
        )


# Adam7's passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type


def _png_data_size(width: int, height: int, depth: int, colour: int, interlaced: bool) -> int:
    """The bytes a PNG's image data inflates to: each row (of each pass) with its filter byte."""
    bits = depth * _PNG_CHANNELS.get(colour, 4)
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        w, h = math.ceil(max(width - x0, 0) / dx), math.ceil(max(height - y0, 0) / dy)
        if w and h:
            total += h * (1 + math.ceil(w * bits / 8))
    return total


def _check_png_complete(data: bytes, name: str) -> None:
    """Refuse a PNG whose image data inflates to fewer bytes than its rows need. Pillow loads
    such a file without an error, the missing rows zeros. Inflated in bounded pieces, counted,
    never kept."""
    try:
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    except struct.error as exc:
        raise BadImage(f"{name}: the PNG header is truncated", source=name) from exc
    need = _png_data_size(width, height, depth, colour, interlace == 1)
    inflate, got, pos = zlib.decompressobj(), 0, 8
    try:
        while pos + 8 <= len(data) and got < need and not inflate.eof:
            length, kind = struct.unpack(">I4s", data[pos : pos + 8])
            chunk, pos = data[pos + 8 : pos + 8 + length], pos + 12 + length
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                continue
            while chunk and got < need and not inflate.eof:
                got += len(inflate.decompress(chunk, 1 << 20))
                chunk = inflate.unconsumed_tail
    except zlib.error as exc:
        raise BadImage(f"{name}: the image data is corrupt ({exc})", source=name) from exc
    if got < need:
        raise BadImage(f"{name}: the image data is truncated ({got} of {need} bytes of rows)", source=name)


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
