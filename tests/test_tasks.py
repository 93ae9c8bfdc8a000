"""The task registry and the task objects' inference side: names and errors, the one inpainting
mask rule, and every entry point (CLI, Python API, HTTP) agreeing on it byte for byte."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from translate.checkpoint import save_checkpoint
from translate.cli import main
from translate.data.images import read_image, write_image
from translate.errors import ConfigError, ImageError
from translate.inference.translator import Translator
from translate.nets import build_net, preset, spec_to_dict
from translate.tasks import TASKS, Task, get_task, recipe_tasks
from translate.tasks.inpaint import hole_mask, with_mask

INPAINT = preset("unet_128", num_downs=5, base_channels=8, in_channels=4, out_channels=3)


def test_registry_names_its_tasks_and_refuses_others():
    assert list(TASKS) == ["custom", "colorize", "sketch", "inpaint", "superres", "restore"]
    assert all(isinstance(task, Task) and task.name == name and task.description for name, task in TASKS.items())
    assert recipe_tasks() == ["colorize", "sketch", "inpaint", "superres", "restore"]
    with pytest.raises(ConfigError, match="^task: unknown .deblur.; choose one of custom, colorize, .*, restore$"):
        get_task("deblur")
    # 0.2's super-resolution tasks are superres recipes now; checkpoints naming them get superres
    assert all(get_task(old) is TASKS["superres"] for old in ("srgan", "esrgan", "realesrgan"))


@pytest.mark.parametrize("task, message", [
    ("deblur", "error: task: unknown 'deblur'; choose one of custom, colorize, sketch, inpaint, superres, restore"),
    ("custom", "error: task: 'custom' cannot be prepared from photos; choose one of colorize, sketch, inpaint, "
               "superres, restore"),
])
def test_prepare_names_the_tasks_it_can_prepare(tmp_path, capsys, task, message):
    assert main(["prepare", task, str(tmp_path), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == message


def test_mask_rule_is_max_over_colour_at_half_range():
    mask = np.zeros((2, 4, 3), np.uint8)
    mask[0] = [[127, 0, 0], [128, 0, 0], [0, 0, 200], [255, 255, 255]]
    mask[1] = [[1, 1, 1], [40, 60, 127], [0, 128, 0], [0, 0, 0]]
    expected = [[False, True, True, True], [False, False, True, False]]
    assert hole_mask(mask).tolist() == expected
    assert hole_mask(mask.astype(np.uint16) * 257).tolist() == expected  # 16-bit: the same half range
    rgba = np.concatenate([mask, np.full((2, 4, 1), 255, np.uint8)], axis=2)
    assert hole_mask(rgba).tolist() == expected  # an opaque alpha is not a colour
    assert hole_mask(mask[:, :, :1]).tolist() == [[False, True, False, True], [False, False, False, False]]


def test_with_mask_makes_holes_transparent_and_replaces_alpha(photo):
    image = np.ascontiguousarray(photo("coffee", 32))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 4:20] = 255
    rgba = with_mask(np.concatenate([image, np.zeros((32, 32, 1), np.uint8)], axis=2), mask)
    assert np.array_equal(rgba[:, :, :3], image)
    assert np.array_equal(rgba[:, :, 3] == 0, mask == 255)
    assert with_mask(image.astype(np.uint16) * 257, mask)[:, :, 3].max() == 65535  # the image's dtype
    with pytest.raises(ImageError, match="only inpainting models take a mask; this model's task is sketch"):
        get_task("sketch").with_mask(image, mask)


def _noisy_jpeg_mask(path, size):
    """A white box on black, saved as a colour JPEG: ringing puts faint non-zero pixels around it."""
    mask = np.zeros(size + (3,), np.uint8)
    mask[18:42, 20:52] = 255
    mask[5:12, 60:70] = (230, 40, 40)  # a red brush stroke: a hole by its brightest channel
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(mask, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    decoded = read_image(path)
    faint = (decoded.max(axis=2) > 0) & (decoded.max(axis=2) < 128)
    assert faint.sum() > 20  # "any non-zero is a hole" would grow the holes: the case this test is about
    return data.tobytes()


def test_cli_python_and_http_inpaint_the_same_holes(tmp_path, photo):
    """convert --mask-dir, Translator + the task's with_mask, and POST /translate with the same
    image and JPEG-noisy mask give byte-identical results."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from translate.serving.app import create_app

    torch.manual_seed(0)
    checkpoint = tmp_path / "inpaint.pt"
    config = {"method": "pix2pix", "task": "inpaint", "direction": "a_to_b"}
    save_checkpoint(checkpoint, {"config": config, "specs": {"g_ab": spec_to_dict(INPAINT)},
                                 "nets": {"g_ab": build_net(INPAINT).state_dict()}, "step": 0, "epoch": 0})
    image = np.ascontiguousarray(photo("astronaut", (64, 80)))
    write_image(tmp_path / "in" / "photo.png", image)
    mask_bytes = _noisy_jpeg_mask(tmp_path / "masks" / "photo.jpg", (64, 80))

    assert main(["convert", str(checkpoint), str(tmp_path / "in"), str(tmp_path / "out"),
                 "--mask-dir", str(tmp_path / "masks"), "--device", "cpu"]) == 0
    from_cli = read_image(tmp_path / "out" / "photo.png")

    translator = Translator.load(checkpoint, device="cpu")
    from_python = translator(get_task("inpaint").with_mask(image, read_image(tmp_path / "masks" / "photo.jpg")))

    with TestClient(create_app(translator), base_url="http://127.0.0.1:8000") as client:
        files = {"image": ("photo.png", (tmp_path / "in" / "photo.png").read_bytes(), "image/png"),
                 "mask": ("mask.jpg", mask_bytes, "image/jpeg")}
        response = client.post("/translate", files=files, data={"format": "png"})
    assert response.status_code == 200, response.text
    assert response.content == (tmp_path / "out" / "photo.png").read_bytes()
    assert np.array_equal(from_cli, from_python)
    changed = np.any(from_cli != image, axis=2)
    assert changed.any() and not changed[hole_mask(read_image(tmp_path / "masks" / "photo.jpg")) == 0].any()
