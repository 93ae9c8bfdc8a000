"""`translate eval` on an unpaired layout: tiny CycleGAN and CUT runs trained through the CLI, scored by
FID / KID per direction against the real target domain, with the untranslated inputs as the baseline.

The shared Inception stand-in (conftest's metric_weights) has batch-norm statistics calibrated on real
photos, so its pool3 features vary between images and a wrong image set would change the scores."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import _photos, negative
from translate.cli import main
from translate.data.images import read_image, write_image
from translate.data.layouts import is_unpaired_split
from translate.metrics import PROTOCOLS, MetricWeights
from translate.metrics.distribution import InceptionNet, fid_kid

TINY = {"generator.n_blocks": 1, "generator.base_channels": 4, "discriminator.base_channels": 4,
        "data.crop_size": 32, "data.load_size": 32}
TINY_CUT = {**TINY, "cut.nce_layers": "input,down1,down2,block1", "cut.num_patches": 16}
N_TEST = 3


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> Path:
    """trainA/testA photos, trainB/testB negatives of other photos, all different, 32 px."""
    root = tmp_path_factory.mktemp("domains")
    images = _photos(6 + 2 * N_TEST, 32)
    for folder, count in (("trainA", 3), ("trainB", 3), ("testA", N_TEST), ("testB", N_TEST)):
        for i in range(count):
            image = images.pop(0)
            write_image(root / folder / f"{folder}_{i}.png", negative(image) if folder.endswith("B") else image)
    return root


def _train(method: str, data: Path, run: Path, settings: dict) -> Path:
    args = ["train", method, "--data", str(data), "--out", str(run), "--max-steps", "1"]
    assert main([*args, *[a for k, v in settings.items() for a in ("--set", f"{k}={v}")]]) == 0
    return run


@pytest.fixture(scope="module")
def cyclegan_run(domains, tmp_path_factory) -> Path:
    return _train("cyclegan", domains, tmp_path_factory.mktemp("cyclegan") / "run", TINY)


@pytest.fixture(scope="module")
def cut_run(domains, tmp_path_factory) -> Path:
    return _train("cut", domains, tmp_path_factory.mktemp("cut") / "run", TINY_CUT)


@pytest.fixture
def few_images_count(monkeypatch):
    """The default protocol, asking for 3 images instead of 50 (FID) and 10 (KID), as our test sets are small."""
    monkeypatch.setitem(PROTOCOLS, "torch-fidelity",
                        replace(PROTOCOLS["torch-fidelity"], min_images_fid=3, min_images_kid=3))
    return PROTOCOLS["torch-fidelity"]


def _eval(run: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["eval", str(run), str(data), "--out", str(out), *extra])


def _images(paths) -> list[np.ndarray]:
    return [read_image(path) for path in paths]


def _outputs(out: Path, direction: str) -> list[np.ndarray]:
    """The translations the eval wrote for the page, in input order (NNN_direction_stem_output.png)."""
    return _images(sorted((out / "images").glob(f"*_{direction}_*_output.png")))


def test_cut_scores_a_to_b_and_its_inputs_against_domain_b(cut_run, domains, metric_weights, few_images_count, tmp_path):
    out = tmp_path / "eval"
    assert _eval(cut_run, domains, out, "--weights-dir", str(metric_weights), "--metrics", "fid,kid") == 0
    summary = json.loads((out / "eval.json").read_text())
    distribution = summary["learned"]["distribution"]
    assert set(distribution) == {"a_to_b model", "a_to_b baseline"}  # CUT is one-way
    assert [row["direction"] for row in summary["per_image"]] == ["a_to_b"] * N_TEST
    assert summary["baseline"].startswith("identity")
    # The numbers are the distribution module's own on the same files: the written translations and
    # the untranslated testA photos, each against the real testB photos.
    net = InceptionNet.load(MetricWeights(weights_dir=str(metric_weights)))
    real_b = _images(sorted((domains / "testB").iterdir()))
    for kind, generated in (("model", _outputs(out, "a_to_b")),
                            ("baseline", _images(sorted((domains / "testA").iterdir())))):
        expected = fid_kid(generated, real_b, protocol=few_images_count, net=net)
        assert distribution[f"a_to_b {kind}"]["fid"] == pytest.approx(expected["fid"], rel=1e-6)
        assert distribution[f"a_to_b {kind}"]["kid"] == pytest.approx(expected["kid"], rel=1e-6, abs=1e-9)
        assert distribution[f"a_to_b {kind}"]["kid_std"] == pytest.approx(expected["kid_std"], rel=1e-6, abs=1e-9)
    assert distribution["a_to_b baseline"]["fid"] > 1  # photos vs their negatives: far apart
    page = (out / "index.html").read_text()
    assert "A→B" in page and "B→A" not in page and "Unpaired" in page
    assert page.count("_input.png") >= N_TEST and page.count("_output.png") >= N_TEST


def test_cyclegan_scores_both_directions_with_each_generator(cyclegan_run, tmp_path, metric_weights, few_images_count):
    from translate.inference.translator import Translator

    # testB holds the very photos of testA: the identity baseline must then be at distance zero.
    data = tmp_path / "mirror"
    for i, image in enumerate(_photos(N_TEST, 32)):
        write_image(data / "testA" / f"m{i}.png", image)
        write_image(data / "testB" / f"m{i}.png", image)
    out = tmp_path / "eval"
    assert _eval(cyclegan_run, data, out, "--weights-dir", str(metric_weights)) == 0
    summary = json.loads((out / "eval.json").read_text())
    distribution = summary["learned"]["distribution"]
    assert set(distribution) == {f"{d} {k}" for d in ("a_to_b", "b_to_a") for k in ("model", "baseline")}
    for direction in ("a_to_b", "b_to_a"):
        assert distribution[f"{direction} baseline"]["fid"] == pytest.approx(0, abs=1e-6)
        # (KID's unbiased estimate of identical sets is not 0 at 4 images: it leaves out only k(x_i, x_i) within a set)
        assert distribution[f"{direction} baseline"]["kid"] < distribution[f"{direction} model"]["kid"]
        assert distribution[f"{direction} model"]["fid"] > 1  # a one-step generator moves its inputs
    assert summary["learned"]["skipped"]["lpips"].startswith("needs a target image per input")
    # B→A rows are g_ba's translations of testB (not g_ab's), and scored against testA.
    b_to_a = Translator.load(cyclegan_run, direction="b_to_a", device="cpu")
    inputs = _images(sorted((data / "testB").iterdir()))
    outputs = _outputs(out, "b_to_a")
    assert len(outputs) == N_TEST and all(np.array_equal(o, b_to_a(i)) for o, i in zip(outputs, inputs))
    net = InceptionNet.load(MetricWeights(weights_dir=str(metric_weights)))
    expected = fid_kid(outputs, _images(sorted((data / "testA").iterdir())), protocol=few_images_count, net=net)
    assert distribution["b_to_a model"]["fid"] == pytest.approx(expected["fid"], rel=1e-6)
    assert distribution["a_to_b model"]["fid"] != pytest.approx(expected["fid"], rel=1e-3)
    directions = summary["learned"]["directions"]
    assert {d: (v["generator"], v["translated"], v["target_images"]) for d, v in directions.items()} == \
        {"a_to_b": ("g_ab", N_TEST, N_TEST), "b_to_a": ("g_ba", N_TEST, N_TEST)}
    page = (out / "index.html").read_text()
    assert "A→B" in page and "B→A" in page and "g_ba" in page
    # The counts are each direction's (its table row), not one direction's presented as the protocol's.
    assert summary["learned"]["protocol"]["images_generated"] is None and "Image counts per direction" in page


def test_too_few_images_are_said_on_the_page_not_raised(cut_run, domains, tmp_path, capsys):
    out = tmp_path / "eval"
    assert _eval(cut_run, domains, out, "--weights-dir", str(tmp_path / "no_weights_needed")) == 0
    summary = json.loads((out / "eval.json").read_text())
    skipped = summary["learned"]["skipped"]
    assert skipped["fid"] == (f"A→B: FID needs at least 50 generated and 50 real images under this protocol; "
                              f"there are {N_TEST} and {N_TEST}")
    assert "KID needs at least 10" in skipped["kid"] and summary["learned"]["distribution"] == {}
    assert len(summary["per_image"]) == N_TEST  # the translations are still shown
    page = (out / "index.html").read_text()
    assert "Metrics not computed" in page and "FID needs at least 50" in page
    # Asked for by name, a metric that cannot run is one line, exit 2, before anything is written.
    capsys.readouterr()
    assert _eval(cut_run, domains, tmp_path / "e2", "--metrics", "kid") == 2
    assert "--metrics kid: cannot be computed: A→B: KID needs at least 10" in capsys.readouterr().err
    assert _eval(cut_run, domains, tmp_path / "e3", "--metrics", "lpips") == 2
    assert "--metrics lpips: needs a target image per input" in capsys.readouterr().err
    assert not (tmp_path / "e2").exists() and not (tmp_path / "e3").exists()


def test_only_split_domain_folders_make_a_layout_unpaired(domains, write_paired, write_unpaired):
    assert is_unpaired_split(domains, "test") and not is_unpaired_split(domains, "val")
    assert not is_unpaired_split(write_paired("paired_folders", splits={"test": 1}), "test")
    assert not is_unpaired_split(write_unpaired("flat", n_a=1, n_b=1), "train")  # A/B reads as paired


def test_an_unreadable_input_is_listed_and_the_rest_are_scored(cut_run, domains, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    for folder in ("testA", "testB"):
        shutil.copytree(domains / folder, data / folder)
    (data / "testA" / "broken.png").write_bytes(b"not a png")
    assert _eval(cut_run, data, tmp_path / "eval", "--metrics", "none") == 1  # exit 1: something was skipped
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert [Path(path).name for path, _ in summary["skipped"]] == ["broken.png"]
    assert len(summary["per_image"]) == N_TEST and "skipped" in capsys.readouterr().out
    assert summary["learned"]["directions"]["a_to_b"]["translated"] == N_TEST
