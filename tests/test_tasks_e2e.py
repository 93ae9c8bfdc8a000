"""Each task recipe end to end through the CLI on real photos: prepare -> train -> convert -> eval."""
from __future__ import annotations

import json

import numpy as np
import pytest

from translate.errors import TranslateError
from translate import metrics
from translate.cli import main
from translate.data.images import read_image, to_channels, to_uint8, write_image
from translate.inference.translator import Translator
from translate.tasks import get_task
from translate.tasks.colorize import lab_split
from translate.tasks.inpaint import with_mask

TINY = {
    "colorize": ["--generator", "unet_128", "--set", "generator.num_downs=5", "--base-channels", "8"],
    "sketch": ["--generator", "unet_128", "--set", "generator.num_downs=5", "--base-channels", "8"],
    "inpaint": ["--generator", "unet_128", "--set", "generator.num_downs=5", "--base-channels", "8"],
    "superres": ["--base-channels", "8", "--set", "generator.n_blocks=1"],
    "restore": ["--generator", "unet_128", "--set", "generator.num_downs=5", "--base-channels", "8"],
}


@pytest.mark.parametrize("task", list(TINY))
def test_prepare_train_convert_eval(tmp_path, write_photos, task, capsys):
    photos = write_photos(6, size=(96, 128))
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["prepare", task, str(photos), str(data), "--val-fraction", "0.2", "--test-fraction", "0.3"]) == 0
    assert main(["train", "pix2pix", "--task", task, "--data", str(data), "--out", str(run), *TINY[task],
                 "--set", "discriminator.base_channels=8", "--crop-size", "64", "--load-size", "64",
                 "--max-steps", "2"]) == 0
    converted = tmp_path / "converted"
    assert main(["convert", str(run), str(data / "test" / "A"), str(converted)]) == 0
    inputs = sorted((data / "test" / "A").glob("*.png"))
    for path in inputs:
        source, output = read_image(path), read_image(converted / path.name)
        scale = 4 if task == "superres" else 1  # restore, like the others, keeps the size
        assert output.shape[:2] == (source.shape[0] * scale, source.shape[1] * scale)
        if task == "inpaint":  # known pixels come back untouched
            known = source[:, :, 3] >= 128
            assert np.array_equal(output[:, :, :3][known], source[:, :, :3][known])
    capsys.readouterr()
    assert main(["eval", str(run), str(data), "--split", "test"]) == 0
    _check_eval_report(run / "eval_test", task, inputs, converted)


def _rgb8(path):
    return to_channels(to_uint8(read_image(path)), 3)


def _check_eval_report(folder, task, inputs, converted):
    """eval.json's scores are those of the images the page shows, the baseline is the task's, and
    the model output is what `convert` wrote (colorize aside: eval feeds it the colour photo)."""
    summary = json.loads((folder / "eval.json").read_text())
    definition = get_task(task)
    assert summary["images"] == len(inputs) and summary["baseline"] == definition.baseline_description
    for index, (row, path) in enumerate(zip(summary["per_image"], inputs)):
        assert row["name"] == path.stem
        shown = {kind: folder / "images" / f"{index:03d}_{path.stem}_{kind}.png"
                 for kind in ("output", "target", "baseline")}
        target = _rgb8(shown["target"])
        region = definition.eval_region(read_image(path))
        assert row["model_psnr"] == pytest.approx(
            metrics.psnr(_rgb8(shown["output"]), target, data_range=255, region=region), rel=1e-9)
        if definition.baseline_description is None:
            assert "baseline_psnr" not in row and not shown["baseline"].exists()
        else:
            assert row["baseline_psnr"] == pytest.approx(
                metrics.psnr(_rgb8(shown["baseline"]), target, data_range=255, region=region), rel=1e-9)
        if task != "colorize":
            height, width = target.shape[:2]
            assert np.array_equal(_rgb8(shown["output"]), _rgb8(converted / path.name)[:height, :width])
    assert (folder / "index.html").read_text().count("<img") >= 3 * len(inputs)


def _translator(tmp_path, write_photos, task: str) -> Translator:
    photos = write_photos(3, size=64)
    run = tmp_path / "run"
    assert main(["train", "pix2pix", "--task", task, "--data", str(photos), "--out", str(run), *TINY[task],
                 "--set", "discriminator.base_channels=8", "--crop-size", "64", "--load-size", "64",
                 "--max-steps", "1"]) == 0
    return Translator.load(run, device="cpu", precision="fp32")


def test_colorize_keeps_the_full_resolution_lightness(tmp_path, write_photos, photo):
    translator = _translator(tmp_path, write_photos, "colorize")
    grey = np.ascontiguousarray(photo("camera", (120, 200)))
    out = translator(grey)
    assert out.shape == (120, 200, 3)
    lightness = lab_split(np.repeat(grey, 3, axis=2))[0][:, :, 0].astype(int)
    # Chroma changes L only through 8-bit RGB rounding: the detail is the input's own.
    assert np.abs(lab_split(out)[0][:, :, 0].astype(int) - lightness).mean() < 2.0


def test_inpaint_takes_holes_from_alpha_or_a_mask(tmp_path, write_photos, photo):
    translator = _translator(tmp_path, write_photos, "inpaint")
    image = np.ascontiguousarray(photo("astronaut", 64))
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 10:50] = 255
    out = translator(with_mask(image, mask))
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out[mask == 0], image[mask == 0])
    with pytest.raises(TranslateError, match="inpaint: needs holes"):
        translator(image)
    with pytest.raises(TranslateError, match="mask: size 32x32 differs from the image's 64x64"):
        with_mask(image, mask[:32, :32])


def test_convert_takes_inpainting_masks_from_a_folder(tmp_path, write_photos, photo):
    _translator(tmp_path, write_photos, "inpaint")
    image = np.ascontiguousarray(photo("coffee", 64))
    write_image(tmp_path / "in" / "sub" / "cup.jpg", image)
    write_image(tmp_path / "in" / "lost.png", image)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:30] = 255
    write_image(tmp_path / "masks" / "sub" / "cup.png", mask)
    code = main(["convert", str(tmp_path / "run"), str(tmp_path / "in"), str(tmp_path / "out"),
                 "--mask-dir", str(tmp_path / "masks")])
    assert code == 1  # lost.png has no mask: reported, the rest converted
    out = read_image(tmp_path / "out" / "sub" / "cup.jpg")
    assert out.shape == (64, 64, 3) and not (tmp_path / "out" / "lost.png").exists()
