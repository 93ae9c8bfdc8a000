"""torchrun with 2 CPU processes (gloo): replicas stay identical, rank 0 alone writes, resume works,
and 2 ranks x batch 1 equals one process with batch 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import load_checkpoint
from translate.config import NAMED_SETTINGS, named_overrides
from translate.recipes import resolve_config
from translate.training.loop import train

TINY_P2P = ["--generator", "unet_128", "--set", "generator.num_downs=5", "--base-channels", "8",
            "--set", "discriminator.base_channels=8", "--crop-size", "64", "--load-size", "64",
            "--set", "runtime.log_every_steps=1", "--set", "runtime.sample_every_steps=1"]
TINY_CYC = ["--set", "generator.n_blocks=1", "--base-channels", "8", "--set", "discriminator.base_channels=8",
            "--crop-size", "64", "--load-size", "64", "--pool-size", "2", "--set", "runtime.log_every_steps=1"]


def torchrun(*args: str, nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
           "--standalone", "-m", "translate", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _log_steps(run: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_two_ranks_stay_in_sync_and_resume(tmp_path, write_paired, write_unpaired, method):
    if method == "pix2pix":
        data, tiny = write_paired("aligned", splits={"train": 4}), TINY_P2P
    else:
        data, tiny = write_unpaired("split", n_a=4, n_b=3, n_test=0), TINY_CYC
    run = tmp_path / "run"
    torchrun("train", method, "--data", str(data), "--out", str(run), *tiny, "--max-steps", "3")
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 3
    sums = ckpt["replica_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]
    # Only rank 0 writes: each step is logged once and one sample grid per step exists.
    assert _log_steps(run) == [1, 2, 3]
    torchrun("train", "--resume", str(run), "--max-steps", "5")
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 5 and ckpt["replica_checksums"][0] == ckpt["replica_checksums"][1]
    assert _log_steps(run) == [1, 2, 3, 4, 5]


def test_batch_norm_with_validation_finishes_in_sync(tmp_path, write_paired):
    """The reported hang: validation ran on rank 0 alone through the DDP replicas, whose forward
    broadcasts batch-norm buffers, a collective that rank 1 (already training) never joined."""
    data = write_paired("aligned", splits={"train": 4, "val": 2})
    run = tmp_path / "run"
    torchrun("train", "pix2pix", "--data", str(data), "--out", str(run), "--generator", "unet_128",
             "--norm", "batch", "--crop-size", "64", "--load-size", "64", "--epochs", "2", "--epochs-decay", "0",
             "--set", "generator.num_downs=5", "--base-channels", "4", "--set", "discriminator.base_channels=4",
             "--val-metric", "psnr", timeout=240)
    ckpt = load_checkpoint(run)
    assert ckpt["epoch"] == 2 and [row["epoch"] for row in ckpt["val_history"]] == [1, 2]
    sums = ckpt["replica_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]
    # Rank 0 alone evaluated and kept best.pt by PSNR (the rule itself: test_validation), and wrote the page.
    best = load_checkpoint(run / "checkpoints" / "best.pt")["best"]
    chosen = ckpt["val_history"][best["epoch"] - 1]
    assert (best["column"], best["value"]) == ("psnr", chosen["psnr"]) and best == ckpt["best"]
    assert (run / "index.html").is_file()


def test_two_ranks_batch_1_equal_one_process_batch_2(tmp_path, write_paired, photo):
    data = write_paired("aligned", splits={"train": 4})
    common = [*TINY_P2P, "--norm", "instance", "--set", "generator.dropout=0", "--set", "discriminator.norm=instance",
              "--gan-loss", "lsgan", "--set", "data.flip=false", "--max-steps", "3"]
    torchrun("train", "pix2pix", "--data", str(data), "--out", str(tmp_path / "ddp"), *common, "--batch-size", "1")
    from translate.cli import build_parser

    args = build_parser().parse_args(["train", "pix2pix", "--data", str(data), "--out", "x", *common,
                                      "--batch-size", "2"])
    named = named_overrides(**{name: getattr(args, name) for name in NAMED_SETTINGS})
    train(config=resolve_config("pix2pix", overrides=named, assignments=args.set), run_dir=tmp_path / "single")
    ddp, single = load_checkpoint(tmp_path / "ddp"), load_checkpoint(tmp_path / "single")
    # Compare what the nets compute, not raw weights: a conv bias right before instance norm gets
    # a structurally-zero gradient, which Adam turns into arbitrary (and harmless) rounding noise.
    from translate.data.images import image_to_tensor
    from translate.nets import build_net, spec_from_dict

    x = image_to_tensor(np.ascontiguousarray(photo("astronaut", 64)))[None]
    for name in ("g_ab", "d"):
        outputs = []
        for ckpt in (ddp, single):
            net = build_net(spec_from_dict(ckpt["specs"][name])).eval()
            net.load_state_dict(ckpt["nets"][name])
            with torch.no_grad():
                y = net(x if name == "g_ab" else torch.cat([x, x], 1))
            outputs.append(y if name == "g_ab" else y[0])
        torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-4, msg=name)


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_ranks_with_different_data_fail_clearly(tmp_path, write_paired, write_unpaired, method):
    """Each rank reads its own folder (as on two machines): the listing differs, so both stop. For
    CycleGAN the folders hold as many files, one under another name: the names are compared."""
    if method == "pix2pix":
        first = write_paired("aligned", root=tmp_path / "d0", splits={"train": 4})
        write_paired("aligned", root=tmp_path / "d1", splits={"train": 3})
    else:
        first = write_unpaired("split", root=tmp_path / "d0", n_a=3, n_b=3, n_test=0)
        other = write_unpaired("split", root=tmp_path / "d1", n_a=3, n_b=3, n_test=0)
        (other / "trainB" / "trainB_002.png").rename(other / "trainB" / "trainB_other.png")
    script = tmp_path / "launch.py"
    tiny = TINY_P2P if method == "pix2pix" else TINY_CYC
    script.write_text(
        "import os, sys\n"
        "from translate.cli import main\n"
        f"data = {str(tmp_path)!r} + '/d' + os.environ['RANK']\n"
        f"args = ['train', {method!r}, '--data', data, '--out', {str(tmp_path / 'run')!r}, *{tiny!r}]\n"
        "sys.exit(main([*args, '--max-steps', '2']))\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "ranks disagree on the training data" in proc.stderr
    assert first.exists() and not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_distributed_conversion_matches_one_process(tmp_path, write_photos):
    from translate.checkpoint import save_checkpoint
    from translate.data.images import read_image
    from translate.nets import build_net, preset, spec_to_dict

    photos = write_photos(5, size=48)
    spec = preset("resnet_6blocks", n_blocks=1, base_channels=4)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "model.pt", {"config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
                                            "specs": {"g_ab": spec_to_dict(spec)},
                                            "nets": {"g_ab": build_net(spec).state_dict()}, "step": 0, "epoch": 0})
    single, split = tmp_path / "single", tmp_path / "split"
    from translate.cli import main

    assert main(["convert", str(tmp_path / "model.pt"), str(photos), str(single), "--precision", "fp32"]) == 0
    proc = torchrun("convert", str(tmp_path / "model.pt"), str(photos), str(split), "--precision", "fp32")
    assert proc.stdout.count("converted 5,") == 1 and "2 ranks" in proc.stdout  # one summary for all ranks
    outputs = sorted(p.relative_to(single) for p in single.rglob("*") if p.is_file())
    assert outputs == sorted(p.relative_to(split) for p in split.rglob("*") if p.is_file()) and len(outputs) == 5
    for rel in outputs:
        assert np.array_equal(read_image(single / rel), read_image(split / rel)), rel


def test_shutdown_frees_unreachable_replicas_while_the_group_is_alive(tmp_path):
    """A finished trainer sits in reference cycles; its DDP replicas must go before the group does,
    not at interpreter exit (where a rank could abort: "terminate called without an active exception")."""
    import gc
    import weakref

    import torch.distributed as dist

    from translate import distributed

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    freed_with_group_alive = []

    class Holder:  # a cycle, like the trainer and its method
        def __init__(self) -> None:
            self.replica = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
            self.me = self

    holder = Holder()
    weakref.finalize(holder, lambda: freed_with_group_alive.append(dist.is_initialized()))
    gc.disable()  # so that only shutdown's own collection can free the cycle
    try:
        del holder
        distributed.shutdown()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
    assert freed_with_group_alive == [True]
