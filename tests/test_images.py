"""Image files: round trips per format, EXIF orientation, errors naming the file, atomic writes, conversions."""
from __future__ import annotations

import os
import re
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from translate.data import images
from translate.data.images import (
    IMAGE_SUFFIXES,
    ImageError,
    image_to_tensor,
    read_image,
    tensor_to_image,
    to_channels,
    write_image,
)


def _variant(photo, channels: int, dtype) -> np.ndarray:
    """A 48x64 photo with `channels` (alpha is a gradient, so a dropped alpha would show) in `dtype`."""
    rgb = photo("chelsea", (48, 64))
    if channels == 1:
        image = photo("camera", (48, 64))
    elif channels == 3:
        image = rgb
    else:
        alpha = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))[:, :, None]
        image = np.concatenate([rgb, alpha], axis=2)
    return image.astype(np.uint16) * 257 if dtype == np.uint16 else image.copy()


LOSSLESS = [
    (suffix, channels, dtype)
    for suffix in (".png", ".tif", ".tiff", ".bmp", ".webp")
    for channels in (1, 3, 4)
    for dtype in (np.uint8, np.uint16)
    if not (dtype == np.uint16 and suffix in (".bmp", ".webp")) and not (channels == 1 and suffix == ".webp")
]


@pytest.mark.parametrize("suffix, channels, dtype", LOSSLESS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_lossless_round_trip(tmp_path, photo, suffix, channels, dtype):
    image = _variant(photo, channels, dtype)
    write_image(tmp_path / f"x{suffix}", image)
    back = read_image(tmp_path / f"x{suffix}")
    assert back.dtype == dtype and back.shape == image.shape
    if suffix == ".webp" and channels == 4:
        image[image[:, :, 3] == 0, :3] = 0  # lossless WebP drops the colour of fully transparent pixels
    np.testing.assert_array_equal(back, image)


def test_webp_grey_reads_back_as_rgb(tmp_path, photo):
    grey = photo("camera", 48)
    write_image(tmp_path / "g.webp", grey)
    back = read_image(tmp_path / "g.webp")  # WebP has no grey mode: libwebp stores three equal channels
    assert back.shape == (48, 48, 3)
    np.testing.assert_array_equal(back, np.repeat(grey, 3, axis=2))


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(tmp_path, photo, suffix, channels):
    image = _variant(photo, channels, np.uint8)
    write_image(tmp_path / f"x{suffix}", image)
    back = read_image(tmp_path / f"x{suffix}")
    assert back.shape == image.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image).mean() < 4


def test_channel_order_is_rgb(tmp_path):
    bgr_red = np.zeros((8, 8, 3), np.uint8)
    bgr_red[..., 2] = 255
    cv2.imwrite(str(tmp_path / "red.png"), bgr_red)
    assert read_image(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]
    write_image(tmp_path / "red2.png", read_image(tmp_path / "red.png"))
    assert cv2.imread(str(tmp_path / "red2.png"))[0, 0].tolist() == [0, 0, 255]


def test_hw_array_is_written_as_grey(tmp_path, photo):
    grey = photo("coins", 32)
    write_image(tmp_path / "g.png", grey[:, :, 0])
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), grey)


def test_unicode_path_and_parent_folders(tmp_path, photo):
    path = tmp_path / "новая папка" / "写真" / "café.png"
    write_image(path, photo("astronaut", 32))
    np.testing.assert_array_equal(read_image(path), photo("astronaut", 32))


# EXIF orientation -> how the stored pixels must be turned to display upright.
ORIENTATIONS = {
    1: lambda x: x,
    2: np.fliplr,
    3: lambda x: np.rot90(x, 2),
    6: lambda x: np.rot90(x, -1),  # rotate 90 degrees clockwise
    8: lambda x: np.rot90(x, 1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_jpeg_exif_orientation_is_applied(tmp_path, photo, orientation):
    stored = photo("rocket", (48, 80))
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "o.jpg", quality=95, exif=exif)
    upright = ORIENTATIONS[orientation](stored)
    back = read_image(tmp_path / "o.jpg")
    assert back.shape == upright.shape
    assert np.abs(back.astype(int) - upright).mean() < 4  # far below the error of a wrong orientation


def test_grey_jpeg_exif_orientation_keeps_one_channel(tmp_path, photo):
    stored = photo("camera", (40, 64))[:, :, 0]
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "g.jpg", quality=95, exif=exif)
    back = read_image(tmp_path / "g.jpg")
    assert back.shape == (64, 40, 1)
    assert np.abs(back[:, :, 0].astype(int) - np.rot90(stored, -1)).mean() < 4


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: no such file"):
        read_image(tmp_path / "nope.png")


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(ImageError, match="not a file"):
        read_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").touch()
    with pytest.raises(ImageError) as info:
        read_image(tmp_path / "empty.jpg")
    assert str(info.value) == f"{tmp_path / 'empty.jpg'}: empty file (0 bytes)"


@pytest.mark.parametrize("content", [b"not an image at all\n" * 10, "truncated"])
def test_corrupt_file(tmp_path, photo, content):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        write_image(path, photo("coffee", 64))
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: cannot decode image (corrupt or not an image)"


def test_float_tiff_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "f.tif"), np.zeros((4, 4), np.float32))
    with pytest.raises(ImageError, match=r"f\.tif: unsupported pixel type float32"):
        read_image(tmp_path / "f.tif")


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp"])
def test_16bit_to_8bit_format_is_refused(tmp_path, photo, suffix):
    with pytest.raises(ImageError, match=rf"x\{suffix}: cannot store 16-bit pixels"):
        write_image(tmp_path / f"x{suffix}", _variant(photo, 3, np.uint16))
    assert list(tmp_path.iterdir()) == []


def test_alpha_to_jpeg_is_refused(tmp_path, photo):
    with pytest.raises(ImageError, match=r"x\.jpg: cannot store an alpha channel"):
        write_image(tmp_path / "x.jpg", _variant(photo, 4, np.uint8))


@pytest.mark.parametrize(
    "name, image, problem",
    [
        ("x.gif", np.zeros((4, 4, 3), np.uint8), "unsupported suffix '.gif'"),
        ("x", np.zeros((4, 4, 3), np.uint8), "unsupported suffix '(none)'"),
        ("x.png", np.zeros((4, 4, 2), np.uint8), "expected an HxWxC array"),
        ("x.png", np.zeros((4, 4, 3), np.float32), "unsupported pixel type float32"),
    ],
)
def test_write_refuses_bad_input(tmp_path, name, image, problem):
    with pytest.raises(ImageError, match=re.escape(f"{name}: {problem}")):
        write_image(tmp_path / name, image)


def test_write_replaces_atomically(tmp_path, photo, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, photo("coffee", 32))
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        # The new bytes must be complete in a sibling temp file before the swap.
        assert os.path.dirname(src) == str(tmp_path) and dst == path
        np.testing.assert_array_equal(read_image(path), photo("coffee", 32))
        assert cv2.imdecode(np.fromfile(src, np.uint8), cv2.IMREAD_UNCHANGED).shape == (32, 32, 3)
        calls.append(src)
        real_replace(src, dst)

    monkeypatch.setattr(images.os, "replace", spy)
    write_image(path, photo("astronaut", 32))
    assert len(calls) == 1
    np.testing.assert_array_equal(read_image(path), photo("astronaut", 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, photo, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, photo("coffee", 32))

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(images.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, photo("astronaut", 32))
    np.testing.assert_array_equal(read_image(path), photo("coffee", 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


# How each format's files begin: the suffix, in any case, must pick the encoder.
MAGIC = {".png": (b"\x89PNG",), ".jpg": (b"\xff\xd8",), ".jpeg": (b"\xff\xd8",), ".webp": (b"RIFF",),
         ".bmp": (b"BM",), ".tif": (b"II*\x00", b"MM\x00*"), ".tiff": (b"II*\x00", b"MM\x00*")}


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
def test_every_accepted_suffix_writes_its_own_format(tmp_path, photo, suffix):
    path = tmp_path / f"photo{suffix.upper()}"
    write_image(path, photo("coffee", (24, 40)))
    assert path.read_bytes().startswith(MAGIC[suffix])
    assert read_image(path).shape == (24, 40, 3)


def _png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height (a decompression bomb's header)."""
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR's CRC covers type + fields
    return bytes(data)


def test_opencv_refusal_is_our_own_one_line_sentence(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(60000, 60000))
    with pytest.raises(ImageError) as info:
        read_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot decode image: more pixels than OpenCV decodes")
    assert "\n" not in message and "OpenCV(" not in message and ".cpp" not in message


def test_to_channels_refuses_non_integer_pixels():
    with pytest.raises(ImageError, match="x.tif: unsupported pixel type float64"):
        to_channels(np.zeros((4, 4, 3)), 1, path="x.tif")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_to_channels(photo, dtype):
    rgb = _variant(photo, 3, dtype)
    rgba = _variant(photo, 4, dtype)
    grey = to_channels(rgb, 1)
    assert grey.shape == (48, 64, 1) and grey.dtype == dtype
    np.testing.assert_array_equal(grey[:, :, 0], cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(to_channels(grey, 3), np.repeat(grey, 3, axis=2))
    np.testing.assert_array_equal(to_channels(rgba, 3), rgba[:, :, :3])  # alpha dropped, not composited
    np.testing.assert_array_equal(to_channels(rgba, 1), grey)
    opaque = to_channels(rgb, 4)
    np.testing.assert_array_equal(opaque[:, :, :3], rgb)
    assert (opaque[:, :, 3] == np.iinfo(dtype).max).all()
    assert to_channels(rgb, 3) is rgb


def test_grey_luma_weights():
    pixel = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    assert to_channels(pixel, 1)[0, :, 0].tolist() == [76, 150, 29]  # ITU-R 601: 0.299, 0.587, 0.114


@pytest.mark.parametrize("have, want", [(1, 4), (4, 2), (2, 3)])
def test_to_channels_refuses_other_conversions(have, want):
    with pytest.raises(ImageError, match=rf"scan\.png: cannot convert {have} channel\(s\) to {want}"):
        to_channels(np.zeros((4, 4, have), np.uint8), want, path="scan.png")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tensor_round_trip(photo, dtype):
    image = _variant(photo, 4, dtype)
    t = image_to_tensor(image)
    assert t.shape == (4, 48, 64) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1 and t.min() < -0.9 and t.max() > 0.9
    np.testing.assert_array_equal(tensor_to_image(t, dtype), image)


def test_tensor_scale_is_full_range():
    image = np.array([[[0], [65535]]], np.uint16)
    assert image_to_tensor(image).flatten().tolist() == [-1.0, 1.0]
    assert image_to_tensor((image // 257).astype(np.uint8)).flatten().tolist() == [-1.0, 1.0]


def test_tensor_to_image_clips_and_rounds():
    t = torch.tensor([[[-3.0, -1.0, 0.0, 0.999, 7.0]]])
    assert tensor_to_image(t)[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    assert tensor_to_image(t, np.uint16)[0, :, 0].tolist() == [0, 0, 32768, 65502, 65535]


def test_tensor_conversions_check_shapes():
    with pytest.raises(ValueError, match="image_to_tensor"):
        image_to_tensor(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="tensor_to_image"):
        tensor_to_image(torch.zeros(1, 3, 4, 4))


def test_writing_in_place_gives_the_same_file_without_a_second_copy(tmp_path, photo):
    rgba = np.concatenate([photo("coffee", (20, 30)), photo("camera", (20, 30))], axis=2)
    for image in (np.array(photo("coffee", (20, 30))), rgba, (rgba.astype(np.uint16) * 257)):
        kept = image.copy()
        write_image(tmp_path / "copy.png", image)
        np.testing.assert_array_equal(image, kept)  # the caller's array is untouched by default
        write_image(tmp_path / "in_place.png", image, in_place=True)
        assert (tmp_path / "in_place.png").read_bytes() == (tmp_path / "copy.png").read_bytes()
        np.testing.assert_array_equal(read_image(tmp_path / "in_place.png"), kept)
