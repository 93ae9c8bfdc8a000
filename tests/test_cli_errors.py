"""Bad invocations of the real CLI: each exits 2 with one `error:` line naming the problem, no traceback."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import save_checkpoint
from translate import Translator
from translate.cli import main, run_command
from translate.errors import DatasetError
from translate.nets import ResnetSpec, build_net, spec_to_dict

# A tiny pix2pix run that fails (or, for a missed row, trains one step) in seconds.
TRAIN = ("train pix2pix --data {paired} --out {tmp}/out --generator resnet_6blocks --discriminator patchgan_34 "
         "--base-channels 4 --crop-size 64 --load-size 64 --max-steps 1 --device cpu")

# (id, arguments with {placeholders} for the fixture's paths, a word the error line must contain[,
# why it is expected to fail until another helper's work is merged])
ROWS = [
    ("unknown-task", TRAIN + " --task deblur", "deblur"),
    ("no-method", "train --data {paired} --out {tmp}/out", "method"),
    ("resume-missing-run", "train --resume {tmp}/nowhere", "nowhere"),
    ("set-unknown-key", TRAIN + " --set optim.learning_rate=1", "optim.learning_rate"),
    ("set-wrong-type", TRAIN + " --set optim.batch_size=four", "optim.batch_size"),
    ("set-bad-choice", TRAIN + " --set gan.loss=wgan", "gan.loss"),
    ("set-broken-yaml", TRAIN + " --set optim.lr_g=[1,", "optim.lr_g"),
    ("set-python-tag", TRAIN + " --set optim.lr_g=!!python/object/apply:os.system", "tag"),
    ("unknown-preset", TRAIN + " --generator unet_32", "unet_32"),
    ("crop-above-load", TRAIN + " --crop-size 128", "load_size"),
    ("batch-size-0", TRAIN + " --batch-size 0", "batch_size"),
    ("negative-crop", TRAIN + " --crop-size -64", "crop_size"),
    ("negative-load", TRAIN + " --load-size -1", "load_size"),
    ("lr-negative", TRAIN + " --lr -1", "lr_g"),
    ("lr-nan", TRAIN + " --lr nan", "lr_g"),
    ("lr-inf", TRAIN + " --lr inf", "lr_g"),
    ("workers-negative", TRAIN + " --workers -1", "workers"),
    ("val-fraction-2", TRAIN + " --set data.val_fraction=2", "val_fraction"),
    ("in-channels-7", TRAIN + " --in-channels 7", "in_channels"),
    ("seed-negative", TRAIN + " --seed -1", "seed"),
    ("config-missing", TRAIN + " --config {tmp}/missing.yaml", "missing.yaml"),
    ("config-folder", TRAIN + " --config {tmp}", "cannot read"),
    ("config-not-utf8", TRAIN + " --config {latin1}", "UTF-8"),
    ("config-python-tag", TRAIN + " --config {tagged}", "tag"),
    ("train-empty-folder", TRAIN.replace("{paired}", "{empty}"), "not found"),
    ("train-image-less", TRAIN.replace("{paired}", "{text_only}"), "no images"),
    ("out-is-a-file", TRAIN.replace("{tmp}/out", "{a_file}"), "a_file"),
    ("prepare-too-few-photos", "prepare superres {two_photos} {tmp}/prepared", "cannot fill"),
    ("prepare-max-side-0", "prepare superres {two_photos} {tmp}/prepared --max-side 0", "max_side"),
    ("prepare-test-fraction-1", "prepare superres {two_photos} {tmp}/prepared --test-fraction 1.0", "test_fraction"),
    ("prepare-empty-folder", "prepare sketch {empty} {tmp}/prepared", "no images"),
    ("prepare-src-is-a-file", "prepare sketch {a_file} {tmp}/prepared", "not a folder"),
    ("convert-missing-model", "convert {tmp}/nowhere {two_photos} {tmp}/o", "nowhere"),
    ("convert-corrupt-checkpoint", "convert {corrupt} {two_photos} {tmp}/o", "not a readable checkpoint"),
    ("convert-foreign-checkpoint", "convert {foreign} {two_photos} {tmp}/o", "neither a translate checkpoint"),
    ("convert-missing-input", "convert {run} {tmp}/nowhere {tmp}/o --device cpu", "nowhere"),
    ("convert-batch-size-0", "convert {run} {two_photos} {tmp}/o --batch-size 0", "--batch-size"),
    ("convert-format-gif", "convert {run} {two_photos} {tmp}/o --format gif --device cpu", "gif"),
    ("eval-missing-model", "eval {tmp}/nowhere {paired}", "nowhere"),
    ("eval-unknown-device", "eval {run} {paired} --device banana", "banana"),
    ("eval-missing-split", "eval {run} {paired} --split val", "val"),
    ("info-corrupt-checkpoint", "info {corrupt}", "not a readable checkpoint"),
    ("info-foreign-checkpoint", "info {foreign}", "not a translate checkpoint"),
    ("export-opset-99", "export {run} {tmp}/model.onnx --opset 99 --no-check", "opset"),
    ("export-unknown-suffix", "export {run} {tmp}/model.tflite", "format"),
    ("export-unwritable-path", "export {run} {a_file}/model.onnx --no-check", "cannot write"),
    ("serve-port-70000", "serve {run} --port 70000", "--port"),
    ("serve-no-slots", "serve {run} --max-concurrent 0", "--max-concurrent"),
    ("serve-timeout-nan", "serve {run} --request-timeout-s nan", "--request-timeout-s"),
    ("max-steps-negative", TRAIN + " --max-steps -1", "max_steps"),
    ("resume-architecture-flag", "train --resume {run} --generator unet_256", "cannot change on resume"),
    ("convert-onto-input-folder", "convert {run} {two_photos} {two_photos} --overwrite --device cpu", "input"),
    ("convert-file-onto-itself", "convert {run} {one_photo} {one_photo} --device cpu", "input"),
]
CASES = [pytest.param(*row[:3], id=row[0], marks=[pytest.mark.xfail(strict=True, reason=r) for r in row[3:]])
         for row in ROWS]


@pytest.fixture
def paths(tmp_path: Path, write_paired, write_photos) -> dict[str, str]:
    """Every file and folder the rows name, good and bad, under tmp_path."""
    torch.manual_seed(0)
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "latest.pt", {
        "config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
        "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": build_net(spec).state_dict()}, "step": 0, "epoch": 0})
    foreign, corrupt = tmp_path / "foreign.pt", tmp_path / "corrupt.pt"
    torch.save({"state_dict": {"w": "not a tensor"}}, foreign)
    corrupt.write_bytes(b"PK\x03\x04" + b"garbage" * 20)
    for folder in ("empty", "text_only/train/A", "text_only/train/B"):
        (tmp_path / folder).mkdir(parents=True)
    for folder in ("text_only/train/A", "text_only/train/B"):
        (tmp_path / folder / "notes.txt").write_text("not an image")
    (tmp_path / "a_file").write_text("a file where a folder belongs")
    (tmp_path / "latin1.yaml").write_bytes("optim: {lr_g: 0.0002}  # réglage\n".encode("latin-1"))
    (tmp_path / "tagged.yaml").write_text("optim: !!python/object/apply:os.system ['true']\n")
    two_photos = write_photos(2, nested=False)
    return {
        "tmp": str(tmp_path), "run": str(run), "foreign": str(foreign), "corrupt": str(corrupt),
        "paired": str(write_paired("paired_folders", splits={"train": 2, "test": 2})),
        "two_photos": str(two_photos), "one_photo": str(next(two_photos.iterdir())),
        "empty": str(tmp_path / "empty"), "text_only": str(tmp_path / "text_only"),
        "a_file": str(tmp_path / "a_file"), "latin1": str(tmp_path / "latin1.yaml"),
        "tagged": str(tmp_path / "tagged.yaml"),
    }


def _argv(template: str, paths: dict[str, str]) -> list[str]:
    return [part.format(**paths) for part in template.split()]


@pytest.mark.parametrize("name, template, keyword", CASES)
def test_bad_invocation_is_one_line_exit_2(paths, capsys, name, template, keyword):
    code = main(_argv(template, paths))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"{name}: exit {code}, stderr {err!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert keyword in lines[0]
    assert "Traceback" not in err


# A few rows again in a real process: no traceback from anywhere (logging, exit hooks), exit status 2.
PROCESS_ROWS = ["lr-nan", "config-not-utf8", "info-corrupt-checkpoint", "serve-port-70000"]


@pytest.mark.parametrize("name", PROCESS_ROWS)
def test_bad_invocation_in_a_real_process(paths, name):
    (_, template, keyword), = [row for row in ROWS if row[0] == name]
    proc = subprocess.run([sys.executable, "-m", "translate", *_argv(template, paths)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and keyword in errors[0] and proc.stderr.rstrip().endswith(errors[0])


def test_reader_that_left_is_a_quiet_exit(paths):
    """`translate info RUN | head`: the reader closes the pipe early; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first byte, so the write surely fails
    try:
        proc = subprocess.run([sys.executable, "-m", "translate", "info", paths["run"]], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports it
    assert proc.stderr == ""


def test_cancelled_work_is_one_line_and_exit_130_not_an_error(capsys):
    """A job stopped on request (a time limit, a shutdown) is nobody's error: `cancelled: ...`, exit 130."""
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    translator = Translator.from_net(build_net(spec), spec, device="cpu", precision="fp32")
    stop = threading.Event()
    stop.set()  # the caller asked before the first net pass

    def convert(_: argparse.Namespace) -> int:
        translator(np.zeros((32, 32, 3), np.uint8), cancel=stop)
        return 0

    assert run_command(convert, argparse.Namespace()) == 130
    err = capsys.readouterr().err
    assert err.startswith("cancelled: ") and "error" not in err and len(err.splitlines()) == 1

    def user_mistake(_: argparse.Namespace) -> int:
        raise DatasetError("data/: no images")

    assert run_command(user_mistake, argparse.Namespace()) == 2
    assert capsys.readouterr().err == "error: data/: no images\n"
