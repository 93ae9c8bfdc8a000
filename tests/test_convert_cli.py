"""`translate convert` end to end on real photos: folders, bad files, resume, overwrite, shards, formats."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import save_checkpoint
from translate.cli import main
from translate.data.images import read_image, write_image
from translate.errors import TranslatorError
from translate.inference.folder import convert_folder, parse_shard, plan_conversion, shard_from_env
from translate.inference.translator import Translator
from translate.nets import ResnetSpec, build_net, spec_to_dict

SPEC = ResnetSpec(base_channels=4, n_blocks=1)
FAST = ["--precision", "fp32", "--device", "cpu"]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A pix2pix checkpoint with a tiny ResNet generator."""
    torch.manual_seed(0)
    net = build_net(SPEC)
    path = tmp_path / "run" / "checkpoints" / "latest.pt"
    save_checkpoint(path, {"config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
                           "specs": {"g_ab": spec_to_dict(SPEC)}, "nets": {"g_ab": net.state_dict()},
                           "step": 0, "epoch": 0})
    return tmp_path / "run"


@pytest.fixture
def photo_folder(tmp_path: Path, photo) -> Path:
    """Good images of several formats and sizes, two of them in a subfolder."""
    root = tmp_path / "in"
    write_image(root / "coffee.jpg", photo("coffee", (61, 93)))
    write_image(root / "chelsea.png", photo("chelsea", (48, 64)))
    write_image(root / "sub" / "astronaut.png", photo("astronaut", (48, 64)))
    write_image(root / "sub" / "camera.tif", photo("camera", (33, 47)))
    return root


def outputs(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_folder_with_bad_files_converts_the_good_ones_and_fails(checkpoint, photo_folder, tmp_path, capsys):
    (photo_folder / "broken.jpg").write_bytes((photo_folder / "coffee.jpg").read_bytes()[:200])
    (photo_folder / "sub" / "empty.png").write_bytes(b"")
    (photo_folder / "notes.txt").write_text("not a picture")
    out = tmp_path / "out"
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST]) == 1
    assert outputs(out) == ["chelsea.png", "coffee.jpg", "sub/astronaut.png", "sub/camera.tif"]
    captured = capsys.readouterr()
    assert "converted 4, already done 0, failed 3" in captured.out
    assert f"{photo_folder / 'broken.jpg'}: cannot decode" in captured.err
    assert f"{photo_folder / 'sub' / 'empty.png'}: empty file" in captured.err
    assert f"{photo_folder / 'notes.txt'}: not an image" in captured.err
    for name in ("coffee.jpg", "sub/camera.tif"):
        assert read_image(out / name).shape[:2] == read_image(photo_folder / name).shape[:2]
    assert read_image(out / "sub" / "camera.tif").shape[2] == 3  # gray into an RGB net
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # no temp files left


def test_second_run_skips_finished_files_and_never_touches_them(checkpoint, photo_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST]) == 0
    capsys.readouterr()
    done = out / "chelsea.png"
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    (out / "sub" / "astronaut.png").unlink()  # as if the first run had been interrupted
    sentinel = b"user's own file"
    done.write_bytes(sentinel)
    os.utime(done, ns=(1, 1))
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST]) == 0
    assert "converted 1, already done 3, failed 0" in capsys.readouterr().out
    assert done.read_bytes() == sentinel and done.stat().st_mtime_ns == 1
    for path in (out / "coffee.jpg", out / "sub" / "camera.tif"):
        assert (path.stat().st_mtime_ns, path.read_bytes()) == before[path]
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST, "--overwrite"]) == 0
    assert "converted 4, already done 0" in capsys.readouterr().out
    assert done.read_bytes() == before[done][1]


def test_never_writes_into_the_input_tree(checkpoint, photo_folder, tmp_path):
    before = {p: p.read_bytes() for p in photo_folder.rglob("*") if p.is_file()}
    nested_out = photo_folder / "converted"  # output inside the input: fine, and not re-read
    assert main(["convert", str(checkpoint), str(photo_folder), str(nested_out), *FAST]) == 0
    assert main(["convert", str(checkpoint), str(photo_folder), str(nested_out), *FAST]) == 0
    assert outputs(nested_out) == ["chelsea.png", "coffee.jpg", "sub/astronaut.png", "sub/camera.tif"]
    assert {p: p.read_bytes() for p in photo_folder.rglob("*") if p.is_file() and nested_out not in p.parents} == before


def test_reference_state_dict_converts_without_architecture_flags(photo_folder, tmp_path, photo):
    torch.manual_seed(1)
    net = build_net(SPEC)
    weights = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), weights)
    out = tmp_path / "out"
    assert main(["convert", str(weights), str(photo_folder / "coffee.jpg"), str(out), *FAST]) == 0
    expected = Translator.from_net(net, SPEC, device="cpu", precision="fp32")(read_image(photo_folder / "coffee.jpg"))
    assert read_image(out / "coffee.jpg").shape == expected.shape


def test_rgba_and_16_bit_survive_conversion(checkpoint, tmp_path, photo):
    src = tmp_path / "in"
    rgba = np.concatenate([photo("coffee", (40, 52)), photo("camera", (40, 52))], axis=2)
    write_image(src / "rgba.png", rgba)
    write_image(src / "deep.png", photo("chelsea", (40, 52)).astype(np.uint16) * 257)
    assert main(["convert", str(checkpoint), str(src), str(tmp_path / "out"), *FAST]) == 0
    out_rgba = read_image(tmp_path / "out" / "rgba.png")
    np.testing.assert_array_equal(out_rgba[:, :, 3], rgba[:, :, 3])
    assert read_image(tmp_path / "out" / "deep.png").dtype == np.uint16
    # jpg cannot hold 16 bits (written 8-bit) nor alpha (that file fails, the run says so).
    assert main(["convert", str(checkpoint), str(src), str(tmp_path / "jpg"), *FAST, "--format", "jpg"]) == 1
    assert outputs(tmp_path / "jpg") == ["deep.jpg"]
    assert read_image(tmp_path / "jpg" / "deep.jpg").dtype == np.uint8


def test_single_file_to_named_output_and_tiles(checkpoint, photo_folder, tmp_path):
    target = tmp_path / "result.png"
    args = ["convert", str(checkpoint), str(photo_folder / "coffee.jpg"), str(target), *FAST]
    assert main([*args, "--tile-size", "32", "--overlap", "8"]) == 0
    assert read_image(target).shape == (61, 93, 3)


def test_shards_partition_the_inputs_exactly(checkpoint, photo_folder, tmp_path, monkeypatch):
    for i in range(5):
        (photo_folder / f"extra_{i}.txt").write_text("x")  # failures are sharded too
    jobs, failures = plan_conversion(photo_folder, tmp_path / "out")
    everything = sorted([j.src for j in jobs] + [p for p, _ in failures])
    parts = []
    for i in range(3):
        part_jobs, part_failures = plan_conversion(photo_folder, tmp_path / "out", shard=(i, 3))
        parts.append([j.src for j in part_jobs] + [p for p, _ in part_failures])
    assert sorted(p for part in parts for p in part) == everything
    assert sum(len(part) for part in parts) == len(everything)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1

    translator = Translator.load(photo_folder.parent / "run", device="cpu", precision="fp32")
    converted = []
    for i in range(2):
        report = convert_folder(translator, photo_folder, tmp_path / "sharded", shard=(i, 2))
        converted += report.converted
    assert sorted(converted) == sorted(j.src for j in jobs)

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert shard_from_env(os.environ) == (1, 2)
    assert main(["convert", str(checkpoint), str(photo_folder), str(tmp_path / "rank1"), *FAST]) == 1
    assert len(outputs(tmp_path / "rank1")) == 2
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(TranslatorError, match="--shard"):
            parse_shard(bad)


def test_clear_errors_exit_2(checkpoint, photo_folder, tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope"), str(photo_folder), str(tmp_path / "o")]) == 2
    assert "nope: no such run directory, checkpoint or weights file" in capsys.readouterr().err
    assert main(["convert", "horse2zebra", str(photo_folder), str(tmp_path / "o"),
                 "--weights-dir", str(tmp_path / "w")]) == 2
    assert "fetch it with `translate weights fetch horse2zebra`" in capsys.readouterr().err
    assert main(["convert", str(checkpoint), str(tmp_path / "missing"), str(tmp_path / "o"), *FAST]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    assert main(["convert", str(checkpoint), str(photo_folder), str(tmp_path / "o"), *FAST,
                 "--direction", "b_to_a"]) == 2
    assert "no b_to_a generator" in capsys.readouterr().err
    torch.save({"encoder.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "odd.pth")
    assert main(["convert", str(tmp_path / "odd.pth"), str(photo_folder), str(tmp_path / "o"), *FAST]) == 2
    assert "--arch PRESET" in capsys.readouterr().err
    assert main(["convert", str(checkpoint), str(photo_folder), str(tmp_path / "o"), *FAST, "--format", "gif"]) == 2
    assert "format" in capsys.readouterr().err


def test_output_that_is_the_input_is_refused_with_or_without_overwrite(checkpoint, photo_folder, tmp_path, capsys):
    before = {p: p.read_bytes() for p in photo_folder.rglob("*") if p.is_file()}
    (tmp_path / "link").symlink_to(photo_folder, target_is_directory=True)
    single = photo_folder / "chelsea.png"
    cases = [
        ([str(photo_folder), str(photo_folder)], "is the input folder itself"),
        ([str(photo_folder), str(tmp_path / "link")], "is the input folder itself"),  # a symlink to it
        ([str(single), str(single)], "is the input file"),  # a file onto itself
        ([str(single), str(tmp_path / "link" / "chelsea.png")], "is the input file"),
        ([str(single), str(photo_folder)], "is the input file"),  # into its own folder, same name
        ([str(photo_folder / "sub"), str(tmp_path / "link" / "sub")], "is the input folder itself"),
    ]
    for paths, message in cases:
        for extra in ([], ["--overwrite"]):
            assert main(["convert", str(checkpoint), *paths, *FAST, *extra]) == 2, paths
            err = capsys.readouterr().err.strip()
            assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert {p: p.read_bytes() for p in photo_folder.rglob("*") if p.is_file()} == before
    # A different format is a different file: allowed beside the input.
    assert main(["convert", str(checkpoint), str(single), str(photo_folder), *FAST, "--format", "jpg"]) == 0
    assert (photo_folder / "chelsea.jpg").is_file()


def test_rerun_removes_temp_files_a_killed_run_left(checkpoint, photo_folder, tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = [out / ".coffee.jpg.0badc0de.tmp", out / "sub" / ".camera.tif.12345678.tmp"]
    foreign = out / ".someone_else.png.abcdef12.tmp"  # not an output of this run: left alone
    for path in [*stale, foreign]:
        path.write_bytes(b"half a file")
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST]) == 0
    assert not any(p.exists() for p in stale) and foreign.exists()
    assert outputs(out) == [foreign.name, "chelsea.png", "coffee.jpg", "sub/astronaut.png", "sub/camera.tif"]


def test_symlinked_folders_are_followed_once_without_looping(checkpoint, photo_folder, tmp_path, photo):
    elsewhere = tmp_path / "elsewhere"
    write_image(elsewhere / "rocket.png", photo("rocket", (40, 40)))
    (photo_folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (photo_folder / "sub" / "loop").symlink_to(photo_folder, target_is_directory=True)  # back up the tree
    out = tmp_path / "out"
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST]) == 0
    assert outputs(out) == ["chelsea.png", "coffee.jpg", "linked/rocket.png", "sub/astronaut.png", "sub/camera.tif"]


def test_outputs_get_normal_permissions(checkpoint, photo_folder, tmp_path):
    umask = os.umask(0o022)
    try:
        assert main(["convert", str(checkpoint), str(photo_folder), str(tmp_path / "out"), *FAST]) == 0
    finally:
        os.umask(umask)
    modes = {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert modes == {oct(0o644)}


def png_bomb_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height RGB but holds almost no data: decoding it would
    allocate the full image, reading its header costs nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(4096)))
                     + chunk(b"IEND", b""))
    return path


def test_images_over_the_pixel_limit_are_refused_by_header_and_the_rest_convert(
        checkpoint, photo_folder, tmp_path, capsys):
    bomb = png_bomb_header(photo_folder / "bomb.png", 20000, 20000)
    out = tmp_path / "out"
    assert main(["convert", str(checkpoint), str(photo_folder), str(out), *FAST]) == 1
    captured = capsys.readouterr()
    assert "converted 4, already done 0, failed 1" in captured.out
    assert (f"failed: {bomb}: 20000x20000 is 400 megapixels, over the limit of 200; raise it with "
            "--max-megapixels") in captured.err
    assert outputs(out) == ["chelsea.png", "coffee.jpg", "sub/astronaut.png", "sub/camera.tif"]
    # A low limit refuses real photos the same way: 93x61 = 5673 pixels > 0.005 MP; 64x48 passes.
    bomb.unlink()
    assert main(["convert", str(checkpoint), str(photo_folder), str(tmp_path / "low"), *FAST,
                 "--max-megapixels", "0.005"]) == 1
    err = capsys.readouterr().err
    assert f"{photo_folder / 'coffee.jpg'}: 93x61 is 0.005673 megapixels, over the limit of 0.005" in err
    assert outputs(tmp_path / "low") == ["chelsea.png", "sub/astronaut.png", "sub/camera.tif"]
