"""Decoding: awkward but valid images come out right; bad input fails clearly, before decoding."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.errors import BadImage, ImageTooLarge
from facegate.vision.decode import DecodeLimits, decode_bytes, load_image

from tests.conftest import OBAMA

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    img = Image.open(OBAMA).convert("RGB")
    img.thumbnail((320, 320))
    return img


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _close(a: np.ndarray, b: np.ndarray, tol: float = 6.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(int) - b.astype(int)).mean()) < tol


def test_jpeg_png_webp_bmp_decode_to_the_same_rgb(photo: Image.Image) -> None:
    ref = np.asarray(photo)
    for fmt in ("PNG", "BMP", "JPEG", "WEBP"):
        out = decode_bytes(_encode(photo, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {})))
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, fmt
        assert _close(out, ref), fmt


def test_cmyk_jpeg_is_converted_to_rgb(photo: Image.Image) -> None:
    data = _encode(photo.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert _close(decode_bytes(data), np.asarray(photo), tol=10)


def test_16bit_png_is_scaled_not_clipped(photo: Image.Image) -> None:
    gray8 = np.asarray(photo.convert("L"))
    gray16 = gray8.astype(np.uint16) * 257  # full 16-bit range
    data = _encode(Image.fromarray(gray16), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = decode_bytes(data)
    assert np.array_equal(out[..., 0], gray8)  # convert("RGB") would have made it all white


def test_rgba_png_composites_on_white(photo: Image.Image) -> None:
    rgba = photo.convert("RGBA")
    alpha = np.full(rgba.size[::-1], 255, np.uint8)
    alpha[:10, :10] = 0
    rgba.putalpha(Image.fromarray(alpha))
    out = decode_bytes(_encode(rgba, "PNG"))
    assert out.shape[2] == 3
    assert (out[:10, :10] == 255).all()
    assert _close(out[20:, 20:], np.asarray(photo)[20:, 20:], tol=1)


def test_grayscale_pgm(photo: Image.Image) -> None:
    gray = photo.convert("L")
    out = decode_bytes(_encode(gray, "PPM"))
    assert out.shape == (*gray.size[::-1], 3)
    assert np.array_equal(out[..., 1], np.asarray(gray))


def test_animated_gif_gives_first_frame(photo: Image.Image) -> None:
    first = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    second = Image.new("RGB", photo.size, (255, 0, 0)).convert("P", palette=Image.Palette.ADAPTIVE)
    buf = io.BytesIO()
    first.save(buf, format="GIF", save_all=True, append_images=[second], duration=100, loop=0)
    out = decode_bytes(buf.getvalue())
    assert _close(out, np.asarray(first.convert("RGB")), tol=2)


def test_exif_orientation_is_applied(photo: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    rotated_storage = photo.transpose(Image.Transpose.ROTATE_90)
    out = decode_bytes(_encode(rotated_storage, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape[:2] == (photo.height, photo.width)
    assert _close(out, np.asarray(photo), tol=8)


def test_arrays_and_pil_images_are_accepted(photo: Image.Image) -> None:
    arr = np.asarray(photo)
    assert np.array_equal(load_image(arr), arr)
    assert np.array_equal(load_image(photo), arr)
    assert load_image(arr[..., 0]).shape == arr.shape
    assert load_image(arr.astype(np.float32) / 255.0).dtype == np.uint8


# --- bad input ---------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(BadImage, match="empty"):
        load_image(p)


def test_text_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a photo\n")
    with pytest.raises(BadImage, match="not an image"):
        load_image(p)


def test_truncated_jpeg(photo: Image.Image) -> None:
    data = _encode(photo, "JPEG", quality=95)
    with pytest.raises(BadImage, match="corrupt or truncated"):
        decode_bytes(data[: len(data) // 2])


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(BadImage, match="directory"):
        load_image(tmp_path)


def test_unsupported_format_is_refused(photo: Image.Image) -> None:
    with pytest.raises(BadImage, match="accepted format"):
        decode_bytes(_encode(photo, "TIFF"))


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid 1-bit PNG of width x height, all black: tiny on disk, huge when decoded; with
    `rows`, its (complete) zlib stream holds only that many rows."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height if rows is None else rows)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = png_bomb(30000, 30000)
    assert len(data) < 1_000_000  # a small file...
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_bytes(data)  # ...refused from its header alone


def test_pixel_limit_below_pillows_own(photo: Image.Image) -> None:
    data = _encode(photo, "PNG")
    with pytest.raises(ImageTooLarge, match="over the limit"):
        decode_bytes(data, DecodeLimits(max_pixels=1000))


def test_byte_limit(tmp_path: Path, photo: Image.Image) -> None:
    p = tmp_path / "big.png"
    p.write_bytes(_encode(photo, "PNG"))
    with pytest.raises(ImageTooLarge, match="bytes"):
        load_image(p, DecodeLimits(max_bytes=1000))


def test_wrong_type() -> None:
    with pytest.raises(BadImage, match="int"):
        load_image(42)  # type: ignore[arg-type]
    with pytest.raises(BadImage, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_unreadable_paths_are_bad_images(tmp_path: Path) -> None:
    f = tmp_path / "f.jpg"
    f.write_bytes(b"x")
    for path in (f / "inside.jpg", tmp_path / ("n" * 300 + ".jpg"), tmp_path / "nul\0.jpg"):
        with pytest.raises(BadImage):
            load_image(path)


# --- tiny files that would cost seconds (issue 21) ----------------------------------------------


def png_of(pixels: np.ndarray, *, rows: int | None = None, interlaced: bool = False) -> bytes:
    """An 8-bit greyscale PNG of `pixels` written by hand (Pillow writes no interlaced PNGs),
    its zlib stream complete but holding only the first `rows` rows (of the first pass)."""
    height, width = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    passes = (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    )
    raw = b""
    for x0, y0, dx, dy in passes if interlaced else ((0, 0, 1, 1),):
        part = pixels[y0::dy, x0::dx]
        if part.size:
            raw += b"".join(b"\x00" + r.tobytes() for r in part)
    if rows is not None:
        raw = raw[: rows * (width + 1)]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, int(interlaced))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_a_strip_declaring_40_megapixels_is_refused_from_its_header() -> None:
    # The 113-byte file: 1 x 40,000,000 pixels, one row of data. It was decoded (the
    # rest zeros) into a 120 MB array that cost a worker 9 s.
    data = png_bomb(1, 40_000_000, rows=1)
    assert len(data) < 120
    with pytest.raises(ImageTooLarge, match="long side"):
        decode_bytes(data)
    # Each check alone would refuse it: its shape, its density, its missing rows.
    loose = DecodeLimits(max_side=50_000_000)
    with pytest.raises(BadImage, match="shape"):
        decode_bytes(data, loose)
    loose = replace(loose, max_aspect=1e8)
    with pytest.raises(ImageTooLarge, match="pixels a byte"):
        decode_bytes(data, loose)
    with pytest.raises(BadImage, match="truncated"):
        decode_bytes(data, replace(loose, max_pixels_per_byte=10**9))
    with pytest.raises(BadImage, match="shape"):
        decode_bytes(png_bomb(40, 2000))  # 80 KP: cheap, but no photo is 1 to 50


def test_a_small_file_declaring_a_huge_image_is_refused(photo: Image.Image) -> None:
    bomb = png_bomb(6000, 6000)  # 36 MP, under max_pixels, in 4 KB
    with pytest.raises(ImageTooLarge, match="pixels a byte"):
        decode_bytes(bomb)
    # A real photo that large is far denser than that, PNG or JPEG.
    big = photo.resize((3000, 3000 * photo.height // photo.width))  # 17 MP
    for fmt in ("JPEG", "PNG"):
        assert decode_bytes(_encode(big, fmt)).shape[:2] == (big.height, big.width), fmt
    # So is a small photo that is flat, under 4 MP: no check applies there.
    assert decode_bytes(_encode(Image.new("RGB", (1600, 1200)), "PNG")).shape == (1200, 1600, 3)


def test_a_png_whose_data_ends_early_is_refused(photo: Image.Image) -> None:
    gray = np.asarray(photo.convert("L"))
    full = png_of(gray)
    assert np.array_equal(decode_bytes(full)[..., 0], gray)
    # A complete zlib stream holding only 3 rows: Pillow loads it without an error.
    short = png_of(gray, rows=3)
    assert Image.open(io.BytesIO(short)).load() is not None
    with pytest.raises(BadImage, match="truncated"):
        decode_bytes(short)
    # Interlaced (Adam7): counted pass by pass, complete ones decode.
    assert np.array_equal(decode_bytes(png_of(gray, interlaced=True))[..., 0], gray)
    odd = gray[:37, :29]  # sides that leave some passes short or empty
    assert np.array_equal(decode_bytes(png_of(odd, interlaced=True))[..., 0], odd)
    assert np.array_equal(decode_bytes(png_of(gray[:1, :1], interlaced=True))[..., 0], gray[:1, :1])
    with pytest.raises(BadImage, match="truncated"):
        decode_bytes(png_of(gray, rows=5, interlaced=True))
    # Pillow's own PNGs, every colour type and depth, still decode.
    for mode in ("1", "L", "P", "RGB", "RGBA", "LA", "I;16"):
        img = photo.convert(mode) if mode != "I;16" else Image.fromarray(gray.astype(np.uint16) * 257)
        assert decode_bytes(_encode(img, "PNG")).shape == (*gray.shape, 3), mode
