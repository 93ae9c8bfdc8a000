"""Image files <-> HWC RGB(A) arrays <-> (C, H, W) tensors in [-1, 1]; imports numpy, cv2, torch
(and PIL, for headers, inside the one function that reads them)."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import torch

from translate.errors import ImageError, first_line
from translate.files import atomic_write

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})
SUFFIXES_16BIT = frozenset({".png", ".tif", ".tiff"})
_SUFFIXES_ALPHA = frozenset({".png", ".tif", ".tiff", ".webp", ".bmp"})
_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_BAND_PIXELS = 1 << 20  # tensor_to_image converts about this many pixels at a time


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to HWC (C in 1, 3, 4) uint8 or uint16 RGB(A), honouring JPEG EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    data = np.fromfile(path, dtype=np.uint8)  # cv2.imread cannot open non-ASCII paths on Windows
    if data.size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    return decode_image(data, name=str(path))


# PIL's names for the formats of IMAGE_SUFFIXES, for reading their headers, and their plugin modules.
_PIL_FORMATS = {"PNG": "PngImagePlugin", "JPEG": "JpegImagePlugin", "TIFF": "TiffImagePlugin",
                "WEBP": "WebPImagePlugin", "BMP": "BmpImagePlugin"}


def _pil_openers() -> dict:
    """PIL's opener registry holding (at least) the readers of `_PIL_FORMATS`. Only those plugins are
    imported: `Image.init()` imports all ~45, a noticeable part of a one-photo conversion's start-up."""
    import importlib

    from PIL import Image

    for plugin in _PIL_FORMATS.values():
        try:
            importlib.import_module(f"PIL.{plugin}")  # registers itself in Image.OPEN
        except ImportError:  # a Pillow built without that format: its files are left to the decoder
            continue
    return Image.OPEN


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from the file's header, without decoding a pixel; None when no header is
    recognised (decoding then says what is wrong).

    Pillow's format readers are called directly: `Image.open` refuses images above its global
    decompression-bomb limit (about 179 megapixels), and callers here apply their own limit.
    """
    openers = _pil_openers()
    with open(path, "rb") as f:
        prefix = f.read(16)
        for factory, accept in (openers[name] for name in _PIL_FORMATS if name in openers):
            accepted = accept is None or accept(prefix)
            if not accepted or isinstance(accepted, str):  # a str says why the format is unavailable
                continue
            f.seek(0)
            try:
                return factory(f, str(path)).size
            except (SyntaxError, IndexError, TypeError, ValueError, OSError, struct.error):
                return None
    return None


def read_header(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) from the file's header alone, without decoding any pixel (so a 389 KB PNG
    that claims 20000 x 20000 pixels costs nothing); ImageError naming `path` when it is unreadable."""
    try:
        size = image_size(path)
    except OSError as e:
        raise ImageError(f"{path}: cannot read it ({e.strerror or first_line(e)})") from None
    if size is None:
        raise ImageError(f"{path}: not a readable image (no PNG, JPEG, TIFF, WebP or BMP header)")
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{path}: the header gives no size ({width}x{height})")
    return height, width


def decode_image(data: bytes | np.ndarray, *, name: str) -> np.ndarray:
    """Decode encoded image bytes like read_image; errors are ImageError("<name>: <problem>")."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    path = name
    # IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF orientation. A JPEG has neither alpha
    # nor 16 bits, so decode JPEGs (found by magic bytes, not suffix) with flags that apply orientation.
    is_jpeg = data[:2].tobytes() == b"\xff\xd8"
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as e:  # OpenCV asserts, rather than returning None, on some files
        raise ImageError(f"{path}: cannot decode image: {_opencv_reason(e)}") from None
    if image is None:
        raise ImageError(f"{path}: cannot decode image (corrupt or not an image)")
    if image.dtype not in _MAX:
        raise ImageError(f"{path}: unsupported pixel type {image.dtype} (expected 8- or 16-bit integers)")
    if image.ndim == 2:
        return image[:, :, None]
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    raise ImageError(f"{path}: unsupported channel count {image.shape[2]} (expected 1, 3 or 4)")


def _opencv_reason(error: cv2.error) -> str:
    """Our words for an OpenCV assertion, whose text names C++ source lines rather than the problem."""
    condition = first_line(error) if not getattr(error, "err", "") else error.err.strip().splitlines()[0]
    if "MAX_IMAGE_PIXELS" in condition:
        return "more pixels than OpenCV decodes (2^30 unless OPENCV_IO_MAX_IMAGE_PIXELS says otherwise)"
    return f"OpenCV refused it ({condition})"


def encode_image(image: np.ndarray, suffix: str, *, name: str = "image", in_place: bool = False) -> bytes:
    """HWC (or HW) uint8/uint16 RGB(A) -> file bytes in the format of `suffix` (".png", ".jpg", ...).
    cv2's defaults: JPEG quality 95, lossless WebP. Errors are ImageError("<name>: <problem>").
    `in_place`: the caller gives `image` up, so its colour order is swapped in it, not in a copy."""
    return _encoded(image, suffix, name=name, in_place=in_place).tobytes()


def _encoded(image: np.ndarray, suffix: str, *, name: str, in_place: bool) -> np.ndarray:
    """`encode_image`'s bytes as the uint8 array OpenCV returns (no copy into a bytes object)."""
    suffix = suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        accepted = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ImageError(f"{name}: unsupported suffix {suffix or '(none)'!r} (use one of {accepted})")
    image = np.ascontiguousarray(image)  # cv2 rejects flipped (negative-stride) views
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an HxWxC array with C in 1, 3, 4, got shape {image.shape}")
    if image.dtype not in _MAX:
        raise ImageError(f"{name}: unsupported pixel type {image.dtype} (expected uint8 or uint16)")
    if image.dtype == np.uint16 and suffix not in SUFFIXES_16BIT:
        raise ImageError(f"{name}: cannot store 16-bit pixels as {suffix} (use .png or .tif)")
    if image.shape[2] == 4 and suffix not in _SUFFIXES_ALPHA:
        raise ImageError(f"{name}: cannot store an alpha channel as {suffix} (use .png, .webp or .tif)")
    if image.shape[2] in (3, 4):
        code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        image = cv2.cvtColor(image, code, dst=image if in_place and image.flags.writeable else None)
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise ImageError(f"{name}: cannot encode image as {suffix}")
    return encoded


def write_image(path: str | os.PathLike, image: np.ndarray, *, in_place: bool = False) -> None:
    """Atomically write HWC (or HW) uint8/uint16 RGB(A); the suffix picks the format; parents are
    created. `in_place` as in `encode_image` (a large output then needs no second full-size array)."""
    path = Path(path)
    encoded = _encoded(image, path.suffix, name=str(path), in_place=in_place)
    atomic_write(path, lambda f: f.write(encoded))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 unchanged; uint16 rounded to the nearest uint8 (full scale 65535 -> 255)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ImageError(f"image: expected uint8 or uint16 pixels, got {image.dtype}")


def fit_to_format(image: np.ndarray, suffix: str) -> np.ndarray:
    """16-bit pixels become 8-bit (rounded) when the format `suffix` cannot store 16 bits."""
    if image.dtype == np.uint16 and suffix.lower() not in SUFFIXES_16BIT:
        return to_uint8(image)
    return image


def to_channels(image: np.ndarray, channels: int, *, path: str | os.PathLike | None = None) -> np.ndarray:
    """Convert HWC to `channels`: 1->3 replicates; 3->1 and 4->1 take ITU-R 601 luma (as cv2);
    4->3 drops alpha without compositing (inference carries alpha separately); 3->4 adds opaque alpha.
    """
    if image.dtype not in _MAX:  # checked here: OpenCV's colour conversions assert on other types
        raise ImageError(f"{path or 'image'}: unsupported pixel type {image.dtype} (expected uint8 or uint16)")
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have == 3 and channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    if have == 4 and channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)[:, :, None]
    if have == 4 and channels == 3:
        return np.ascontiguousarray(image[:, :, :3])
    if have == 3 and channels == 4:
        alpha = np.full(image.shape[:2] + (1,), np.iinfo(image.dtype).max, dtype=image.dtype)
        return np.concatenate([image, alpha], axis=2)
    raise ImageError(f"{path or 'image'}: cannot convert {have} channel(s) to {channels}")


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC uint8/uint16 -> (C, H, W) float32 in [-1, 1] (full scale is 255 or 65535 by dtype)."""
    if image.ndim != 3 or image.dtype not in _MAX:
        raise ValueError(f"image_to_tensor: expected HxWxC uint8/uint16, got {image.shape} {image.dtype}")
    x = image.transpose(2, 0, 1).astype(np.float32)
    x *= 2.0 / _MAX[image.dtype]
    x -= 1.0
    return torch.from_numpy(x)


def tensor_to_image(t: torch.Tensor, dtype: type | np.dtype = np.uint8) -> np.ndarray:
    """(C, H, W) float in [-1, 1] -> HWC `dtype` (uint8 or uint16), clipped and rounded.

    Converted in bands of rows, so a large image needs its result plus one band of floats, not
    several full-size float copies.
    """
    dtype = np.dtype(dtype)
    if t.ndim != 3 or dtype not in _MAX:
        raise ValueError(f"tensor_to_image: expected (C, H, W) and uint8/uint16, got {tuple(t.shape)} {dtype}")
    channels, height, width = t.shape
    out = np.empty((height, width, channels), dtype=dtype)
    band = max(1, _BAND_PIXELS // max(width, 1))
    for top in range(0, height, band):
        x = t[:, top : top + band].detach().to("cpu", torch.float32).clamp(-1.0, 1.0)
        x = x.add_(1.0).mul_(_MAX[dtype] / 2.0).round_()
        out[top : top + band] = x.permute(1, 2, 0).numpy()
    return out
