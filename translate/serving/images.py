"""The service's images in and out: checks on uploads (type, size before decoding), the task's mask
rule, encoding results; and `RequestError`, the one-line refusal every route answers as JSON."""
from __future__ import annotations

import io

import numpy as np

from translate.data.images import ImageError, decode_image, encode_image, fit_to_format
from translate.tasks import Task

# PIL's name for the format found in the file header -> the content type we accept for it.
IMAGE_TYPES: dict[str, str] = {
    "PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp",
}
# Clients that do not know a file's type send these; the header then decides.
_UNTYPED = {"", "application/octet-stream"}
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
                 "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp"}
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {  # format field -> (content type, suffix for cv2)
    "png": ("image/png", ".png"), "jpeg": ("image/jpeg", ".jpg"), "webp": ("image/webp", ".webp"),
}


class RequestError(Exception):
    """A request the service refuses: HTTP `status` and a one-line message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _content_type(declared: str | None) -> str:
    value = (declared or "").split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(value, value)


def decode_upload(data: bytes, *, field: str, content_type: str | None, max_pixels: int,
                  scale: int = 1) -> np.ndarray:
    """Uploaded bytes -> HxWxC (C in 1, 3, 4) uint8/uint16 RGB(A), as `data.images.read_image`.

    Checks, in order: the declared type (415), the header's format (415), the header's size
    against `max_pixels` before any pixel is decoded (413; the output's size when the net
    enlarges `scale` times), then decodes (422 when corrupt or truncated). Raises RequestError.
    """
    from PIL import Image, UnidentifiedImageError

    declared = _content_type(content_type)
    supported = ", ".join(name.lower() for name in IMAGE_TYPES)
    if declared not in _UNTYPED and declared not in IMAGE_TYPES.values():
        raise RequestError(415, f"{field}: content type {declared!r} is not a supported image ({supported})")
    if not data:
        raise RequestError(422, f"{field}: empty file")
    try:
        # Image.open reads only the header: format and size, no pixels.
        with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES)) as header:
            width, height, kind = header.width, header.height, header.format
    except Image.DecompressionBombError:
        raise RequestError(413, f"{field}: more than {max_pixels / 1e6:.4g} megapixels") from None
    except UnidentifiedImageError:
        if declared in _UNTYPED:
            raise RequestError(415, f"{field}: not a supported image ({supported})") from None
        raise RequestError(422, f"{field}: cannot decode as {declared} (corrupt or not an image)") from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for broken headers
        raise RequestError(422, f"{field}: cannot decode (truncated or corrupt): {e}") from None
    if width * height * scale**2 > max_pixels:
        enlarged = f" (x{scale}: {width * scale}x{height * scale} out)" if scale > 1 else ""
        raise RequestError(413, f"{field}: {width}x{height}{enlarged} is {width * height * scale**2 / 1e6:.4g} "
                                f"megapixels, more than the limit of {max_pixels / 1e6:.4g}")
    # Decoded exactly as files are: 16 bits and alpha kept, JPEG EXIF orientation applied. This cv2
    # returns nothing for truncated PNG, JPEG and WebP files rather than part of an image.
    try:
        return decode_image(data, name=field)
    except ImageError as e:
        raise RequestError(422, f"{e} (this {kind.lower()} may be truncated)") from None


def apply_mask(task: Task, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The model input for `image` plus an uploaded `mask`, by the task's one mask rule (the same
    as `convert --mask-dir` and the Python API: see translate/tasks/inpaint.py)."""
    try:
        return task.with_mask(image, mask)
    except ImageError as e:
        raise RequestError(422, str(e)) from None


def encode_result(image: np.ndarray, format: str) -> bytes:
    """HxW or HxWxC uint8/uint16 RGB(A) -> file bytes (png keeps 16 bits; jpeg and webp get 8)."""
    content_type, suffix = OUTPUT_FORMATS[format]
    image = fit_to_format(np.ascontiguousarray(image), suffix)
    if image.ndim == 3 and image.shape[2] == 2:  # gray + alpha: no file layout for it everywhere
        image = np.concatenate([np.repeat(image[:, :, :1], 3, axis=2), image[:, :, 1:]], axis=2)
    if image.ndim == 3 and image.shape[2] == 4 and format == "jpeg":
        raise RequestError(422, "format: jpeg cannot store this result's alpha channel; ask for png or webp")
    return encode_image(image, suffix, name="result")



def output_format(value: str) -> str:
    """The `format` field as a key of OUTPUT_FORMATS ("jpg" means jpeg); 422 otherwise."""
    value = value.lower().strip()
    value = "jpeg" if value == "jpg" else value
    if value not in OUTPUT_FORMATS:
        raise RequestError(422, f"format: {value!r} must be one of {', '.join(OUTPUT_FORMATS)}")
    return value
