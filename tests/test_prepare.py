"""prepare(): photo folder -> paired_folders dataset per task, split as training splits; and the
public-dataset helpers in datasets/ unpacking archives built here (tests never download)."""
from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from translate.errors import ConfigError, TranslateError
from translate.data.images import read_image, write_image
from translate.data.layouts import DatasetError, find_paired, find_photos_split
from translate.data import prepare as preparing
from translate.data.prepare import PrepareReport
from translate.tasks import get_task
from translate.tasks.colorize import ColorizeSettings, lab_split
from translate.tasks.inpaint import InpaintSettings, mask_from_alpha
from translate.tasks.restore import RestoreSettings
from translate.tasks.sketch import SketchSettings
from translate.tasks.superres import SuperresSettings

SETTINGS = {
    "superres": SuperresSettings(scale=4, blur_sigma_max=1.0, noise_std_max=2.0, jpeg_quality_min=70),
    "restore": RestoreSettings(blur_sigma_max=1.0, noise_std_max=2.0, jpeg_quality_min=70, shot_noise_max=0.5),
    "colorize": ColorizeSettings(exposure_min=0.1),  # training-only: prepared files must not be darkened
    "sketch": SketchSettings(), "inpaint": InpaintSettings(), "custom": None,
}


def prepare(task: str, src, out, *, settings=None, **options) -> PrepareReport:
    """`prepare` for the task called `task`, with SETTINGS' settings for it unless given."""
    return preparing.prepare(get_task(task), src, out, settings=settings or SETTINGS[task], **options)
INPUT_CHANNELS = {"colorize": 1, "sketch": 1, "inpaint": 4, "superres": 3, "restore": 3}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("task", list(INPUT_CHANNELS))
def test_prepare_writes_the_paired_layout(write_photos, tmp_path, task):
    src = write_photos(6, size=(48, 64))  # half of them in src/sub/
    out = tmp_path / "prepared"
    report = prepare(task, src, out, seed=1)
    assert isinstance(report, PrepareReport) and report.skipped == []
    assert report.written == {"train": 4, "val": 1, "test": 1} and report.total == 6
    names = set()
    for split, n in report.written.items():
        samples = find_paired(out, split)  # the trainer's own reader accepts it
        assert len(samples) == n
        for sample in samples:
            a, b = read_image(sample.a), read_image(sample.b)
            names.add(sample.a.stem)
            assert a.dtype == b.dtype == np.uint8 and b.shape[2] == 3
            assert a.shape[2] == INPUT_CHANNELS[task]
            if task == "superres":
                assert (a.shape[0] * 4, a.shape[1] * 4) == b.shape[:2] == (48, 64)
            else:
                assert a.shape[:2] == b.shape[:2] == (48, 64)
            if task == "colorize":  # training recomputes the target from B; A is B's lightness exactly
                assert np.array_equal(a, lab_split(b)[0])
            if task == "inpaint":  # A's transparent pixels are the holes; the rest is B
                known = mask_from_alpha(a) == 0
                assert 0.05 <= 1 - known.mean() <= 0.4
                assert np.array_equal(a[known][:, :3], b[known])
    assert sum(name.startswith("sub__") for name in names) == 3  # subfolders name the outputs
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_prepare_is_deterministic(write_photos, tmp_path):
    src = write_photos(4)
    prepare("inpaint", src, tmp_path / "one", seed=3)
    prepare("inpaint", src, tmp_path / "two", seed=3)
    prepare("inpaint", src, tmp_path / "three", seed=4)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")
    assert _tree(tmp_path / "one") != _tree(tmp_path / "three")


def test_prepare_skips_and_reports_bad_files(write_photos, tmp_path, photo):
    src = write_photos(5, nested=False)
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (src / "empty.png").write_bytes(b"")
    write_image(src / "grey.png", photo("camera", 32))
    write_image(src / "tiny.png", photo("coffee", 2))
    report = prepare("colorize", src, tmp_path / "out", val_fraction=0.0, test_fraction=0.0)
    reasons = {path.name: reason for path, reason in report.skipped}
    assert set(reasons) == {"corrupt.jpg", "empty.png", "grey.png"}
    assert "cannot decode" in reasons["corrupt.jpg"] and "empty" in reasons["empty.png"]
    assert "no colour" in reasons["grey.png"]
    assert report.written["train"] == 6  # the five photos and the tiny one
    report = prepare("superres", src, tmp_path / "sr", val_fraction=0.0, test_fraction=0.0)
    assert {path.name for path, _ in report.skipped} == {"corrupt.jpg", "empty.png", "tiny.png"}
    assert not (tmp_path / "sr" / "train" / "A" / "tiny.png").exists()  # no A without its B


def test_prepare_refuses_to_overwrite(write_photos, tmp_path):
    src, out = write_photos(4), tmp_path / "out"
    prepare("sketch", src, out, seed=0)
    before = _tree(out)
    with pytest.raises(DatasetError, match="already exists.*--overwrite"):
        prepare("sketch", src, out, settings=SketchSettings(line_thickness=3), seed=0)
    assert _tree(out) == before  # checked before writing anything
    prepare("sketch", src, out, settings=SketchSettings(line_thickness=3), seed=0, overwrite=True)
    assert _tree(out).keys() == before.keys() and _tree(out) != before


def test_prepare_into_the_photo_folder_ignores_its_own_outputs(write_photos):
    src = write_photos(4, nested=False)
    prepare("sketch", src, src / "prepared", val_fraction=0.0, test_fraction=0.0)
    report = prepare("sketch", src, src / "prepared", val_fraction=0.0, test_fraction=0.0,
                     overwrite=True)
    assert report.written["train"] == 4


def test_prepare_max_side_shrinks_never_enlarges(write_photos, tmp_path):
    src = write_photos(3, size=(60, 90), nested=False)
    prepare("sketch", src, tmp_path / "small", max_side=45, val_fraction=0.0, test_fraction=0.0)
    prepare("sketch", src, tmp_path / "same", max_side=400, val_fraction=0.0, test_fraction=0.0)
    assert {read_image(p).shape[:2] for p in (tmp_path / "small").rglob("*.png")} == {(30, 45)}
    assert {read_image(p).shape[:2] for p in (tmp_path / "same").rglob("*.png")} == {(60, 90)}


def test_prepare_rejects_bad_arguments(write_photos, tmp_path):
    src = write_photos(2)
    with pytest.raises(ConfigError, match="'custom' cannot be prepared"):
        prepare("custom", src, tmp_path / "out")
    with pytest.raises(TranslateError, match="2 file\\(s\\) cannot fill"):
        prepare("sketch", src, tmp_path / "out")  # val 1 + test 1 leaves no train
    with pytest.raises(DatasetError, match="not found"):
        prepare("sketch", tmp_path / "missing", tmp_path / "out")


def test_prepare_splits_like_training_from_the_photo_folder(write_photos, tmp_path):
    src = write_photos(8)
    report = prepare("sketch", src, tmp_path / "out", val_fraction=0.25, test_fraction=0.0, seed=2)
    assert report.written == {"train": 6, "val": 2, "test": 0}
    for split in ("train", "val"):
        photos = find_photos_split(src, split, val_fraction=0.25, seed=2)  # what on-the-fly training reads
        prepared = {p.stem for p in (tmp_path / "out" / split / "B").iterdir()}
        assert prepared == {"__".join(p.relative_to(src).with_suffix("").parts) for p in photos}


# --- datasets/ helpers (loaded from the scripts; nothing here touches the network) -------------

@pytest.fixture(scope="module")
def download():
    path = Path(__file__).resolve().parents[1] / "datasets" / "download.py"
    spec = importlib.util.spec_from_file_location("datasets_download", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_download_extracts_a_pix2pix_archive(download, tmp_path):
    archive = tmp_path / "facades.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "val"):
            _add(tar, f"facades/{split}/1.jpg", b"jpg")
    dest = download.download("pix2pix", "facades", root=tmp_path / "data", archive=archive)
    assert dest == tmp_path / "data" / "pix2pix" / "facades"
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.jpg")) == ["train/1.jpg", "val/1.jpg"]
    assert [p.name for p in dest.parent.iterdir()] == ["facades"]  # no temporary folder left
    with pytest.raises(download.DownloadError, match="already exists"):
        download.download("pix2pix", "facades", root=tmp_path / "data", archive=archive)


def test_download_extracts_a_cyclegan_zip_and_checks_layout(download, tmp_path):
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    with zipfile.ZipFile(good, "w") as z:
        for folder in ("trainA", "trainB", "testA", "testB"):
            z.writestr(f"horse2zebra/{folder}/x.jpg", b"jpg")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("horse2zebra/trainA/x.jpg", b"jpg")
        z.writestr("../evil.txt", b"x")
    dest = download.download("cyclegan", "horse2zebra", root=tmp_path / "data", archive=good)
    assert sorted(p.name for p in dest.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    with pytest.raises(download.DownloadError, match="outside the target folder"):
        download.download("cyclegan", "apple2orange", root=tmp_path / "other", archive=bad)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "other" / "cyclegan" / "apple2orange").exists()


def test_download_offline_is_one_clear_line(download, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(download.DownloadError) as excinfo:
        download.download("cyclegan", "horse2zebra", root=tmp_path)
    message = str(excinfo.value)
    assert "\n" not in message and "horse2zebra.zip: cannot download" in message and "--archive" in message
    assert list(tmp_path.rglob("*")) == [tmp_path / "cyclegan"]  # nothing half-written
    assert download.main(["cyclegan", "horse2zebra", "--root", str(tmp_path / "x")]) == 1
    with pytest.raises(download.DownloadError, match="licence"):
        download.url_for("pix2pix", "cityscapes")
    with pytest.raises(download.DownloadError, match="unknown 'zebras'"):
        download.url_for("cyclegan", "zebras")
