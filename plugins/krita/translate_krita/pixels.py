"""Pixels between Krita's layout and PNG files, with the standard library and PyQt5 only.

Krita's pixel data (little-endian machines): RGBA documents hold B, G, R, A per pixel and
GRAYA documents gray, A; U8 as bytes, U16 as native uint16. Inside the plug-in an image is an
`Rgba`: R, G, B, A interleaved, as bytes (8 bits) or an array('H') (16 bits). PNG goes through
QImage (RGBA8888 / RGBA64), which keeps 8 and 16 bits and straight alpha exact.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Union

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice
from PyQt5.QtGui import QImage

Samples = Union[bytearray, array]  # 8-bit bytes or 16-bit array('H')
SUPPORTED_MODELS = ("RGBA", "GRAYA")
SUPPORTED_DEPTHS = ("U8", "U16")
# Qt's PNG quality: 90 and above store the pixels uncompressed (a 2048x2048 photo in 0.3 s; a
# service on this machine reads 13 MB as fast as 4), 80 is zlib level 2 (0.7 s) for uploads that
# would not fit the service's limit uncompressed.
STORED, COMPRESSED = 100, 80
_PNG_OVERHEAD = 1 << 16  # chunk headers, per-row filter bytes and the multipart envelope, with room


class UnsupportedImage(Exception):
    """A document this plug-in cannot send exactly; str(e) says what to convert it to."""


@dataclass
class Rgba:
    """width x height pixels, R G B A interleaved: `samples` bytes (bits 8) or array('H') (bits 16)."""

    width: int
    height: int
    bits: int
    samples: Samples

    @property
    def alpha(self) -> Samples:
        return self.samples[3::4]


def check_layout(color_model: str, depth: str) -> None:
    """Raise UnsupportedImage unless Krita's colour model and depth round-trip exactly."""
    if color_model not in SUPPORTED_MODELS or depth not in SUPPORTED_DEPTHS:
        raise UnsupportedImage(
            f"this document is {color_model} {depth}; translate works on RGB/Alpha or Grayscale/Alpha at 8 or "
            f"16 bits integer per channel: convert it with Image > Convert Image Color Space (e.g. RGB/Alpha, "
            f"16-bit integer/channel)")


def _samples(data: bytes, depth: str) -> Samples:
    return bytearray(data) if depth == "U8" else array("H", bytes(data))


def from_krita(data: bytes, width: int, height: int, color_model: str, depth: str) -> Rgba:
    """Krita pixel data of an RGBA or GRAYA layer region -> Rgba of the same depth."""
    check_layout(color_model, depth)
    src = _samples(data, depth)
    out = bytearray(4 * width * height) if depth == "U8" else array("H", bytes(8 * width * height))
    if color_model == "RGBA":  # B G R A -> R G B A
        out[0::4], out[1::4], out[2::4], out[3::4] = src[2::4], src[1::4], src[0::4], src[3::4]
    else:  # gray, A -> gray gray gray A
        out[0::4] = out[1::4] = out[2::4] = src[0::2]
        out[3::4] = src[1::2]
    return Rgba(width, height, 8 if depth == "U8" else 16, out)


def to_krita(image: Rgba, color_model: str) -> bytes:
    """Rgba -> Krita pixel data for an RGBA or GRAYA layer of the image's depth (gray: Qt's luma)."""
    src = image.samples
    if color_model == "RGBA":
        out = bytearray(len(src)) if image.bits == 8 else array("H", bytes(2 * len(src)))
        out[0::4], out[1::4], out[2::4], out[3::4] = src[2::4], src[1::4], src[0::4], src[3::4]
        return bytes(out)
    gray = _gray(image)
    out = bytearray(2 * image.width * image.height) if image.bits == 8 else array("H", bytes(4 * image.width * image.height))
    out[0::2], out[1::2] = gray, src[3::4]
    return bytes(out)


def _gray(image: Rgba) -> Samples:
    """The luma of an Rgba's colour (alpha left out), by Qt's conversion."""
    opaque = bytearray(image.samples) if image.bits == 8 else array("H", image.samples)
    opaque[3::4] = (b"\xff" if image.bits == 8 else array("H", [65535])) * (image.width * image.height)
    fmt, gray_fmt = ((QImage.Format_RGBX8888, QImage.Format_Grayscale8) if image.bits == 8
                     else (QImage.Format_RGBX64, QImage.Format_Grayscale16))
    qimage = _qimage(Rgba(image.width, image.height, image.bits, opaque), fmt).convertToFormat(gray_fmt)
    return _samples(_rows(qimage, image.width * image.bits // 8), "U8" if image.bits == 8 else "U16")


def _qimage(image: Rgba, fmt: "QImage.Format") -> QImage:
    data = bytes(image.samples)
    row = 4 * image.width * image.bits // 8
    return QImage(data, image.width, image.height, row, fmt).copy()  # copy: own its pixels


def _rows(qimage: QImage, row_bytes: int) -> bytes:
    """A QImage's pixel rows without the padding Qt may add to each line."""
    data = qimage.constBits().asstring(qimage.sizeInBytes())
    stride = qimage.bytesPerLine()
    if stride == row_bytes:
        return data
    return b"".join(data[y * stride: y * stride + row_bytes] for y in range(qimage.height()))


def is_opaque(image: Rgba) -> bool:
    """Whether every alpha sample is the depth's maximum (then RGB goes out: a quarter smaller)."""
    full = b"\xff" if image.bits == 8 else array("H", [65535])
    return image.alpha == full * (image.width * image.height)


def encode_png(image: Rgba, max_bytes: int | None = None) -> bytes:
    """Rgba -> PNG file bytes of the same depth: RGB when opaque, else with alpha; stored
    uncompressed (fastest) unless that would exceed `max_bytes`."""
    opaque = is_opaque(image)
    if image.bits == 8:
        fmt = QImage.Format_RGBX8888 if opaque else QImage.Format_RGBA8888
    else:
        fmt = QImage.Format_RGBX64 if opaque else QImage.Format_RGBA64
    stored = image.width * image.height * (3 if opaque else 4) * image.bits // 8 + image.height + _PNG_OVERHEAD
    quality = STORED if max_bytes is None or stored <= max_bytes else COMPRESSED
    return _save_png(_qimage(image, fmt), quality)


def encode_mask_png(mask: bytes, width: int, height: int) -> bytes:
    """One byte per pixel (Krita's selection: 255 selected) -> 8-bit grey PNG bytes."""
    return _save_png(QImage(bytes(mask), width, height, width, QImage.Format_Grayscale8).copy(), COMPRESSED)


def _save_png(qimage: QImage, quality: int) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    if not qimage.save(buffer, "PNG", quality):
        raise UnsupportedImage("could not encode the image as PNG")
    buffer.close()
    return bytes(data)


def decode_png(data: bytes, bits: int, alpha: Samples) -> Rgba:
    """PNG bytes -> Rgba at `bits`; a result without alpha takes `alpha` (the source's) when of its
    size, else stays opaque."""
    qimage = QImage.fromData(data, "PNG")
    if qimage.isNull():
        raise UnsupportedImage("the service answered something that is not a PNG image")
    has_alpha = qimage.hasAlphaChannel()
    qimage = qimage.convertToFormat(QImage.Format_RGBA8888 if bits == 8 else QImage.Format_RGBA64)
    width, height = qimage.width(), qimage.height()
    samples = _samples(_rows(qimage, 4 * width * bits // 8), "U8" if bits == 8 else "U16")
    if not has_alpha and len(alpha) == width * height:
        samples[3::4] = alpha  # inpainting answers RGB: the source's alpha goes back on
    # Otherwise Qt made it opaque: an enlarged result without alpha came from an opaque (RGB) upload.
    return Rgba(width, height, bits, samples)
