"""Task recipes: every packaged YAML loads, validates as a TrainConfig, and its pairs fit its generator."""
from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest

from translate.config import ConfigError, resolve_config
import torch

from translate.data.images import image_to_tensor
from translate.data.synth import PAIR_MAKERS, pair_maker
from translate.nets import build_net
from translate.recipes import RECIPES, load_recipe

CHANNELS = {"colorize": (1, 2), "sketch": (1, 3), "inpaint": (4, 3), "superres": (3, 3)}


def test_every_recipe_file_is_registered():
    files = {p.name.removesuffix(".yaml") for p in resources.files("translate.recipes").iterdir()
             if p.name.endswith(".yaml")}
    assert files == set(RECIPES) == set(PAIR_MAKERS) == set(CHANNELS)


@pytest.mark.parametrize("task", list(RECIPES))
def test_recipe_loads_with_a_header_and_its_task(task):
    text = resources.files("translate.recipes").joinpath(f"{task}.yaml").read_text()
    assert text.startswith("# ") and len([line for line in text.splitlines() if line.startswith("#")]) >= 4
    recipe = load_recipe(task)
    assert recipe["task"] == task
    assert {"generator", "discriminator", "pix2pix", "data"} <= set(recipe)


@pytest.mark.parametrize("task", list(RECIPES))
def test_recipes_are_for_pix2pix(task):
    with pytest.raises(ConfigError, match="trains pix2pix a_to_b"):
        resolve_config("cyclegan", task=task)


@pytest.mark.parametrize("method", ["pix2pix"])
@pytest.mark.parametrize("task", list(RECIPES))
def test_recipe_validates_as_a_train_config(task, method):
    config = resolve_config(method, task=task)
    assert config.task == task
    assert (config.generator.in_channels, config.generator.out_channels) == CHANNELS[task]
    assert config.data.crop_size % (config.generator.size_multiple * config.generator.scale) == 0
    assert config.to_dict() == type(config).from_dict(config.to_dict()).to_dict()
    if task == "superres":
        assert config.generator.kind == "resnet" and config.generator.scale == config.synth.scale == 4
        assert config.data.preprocess == "crop"  # native-scale crops: resizing would blur the detail away
    else:
        # Only the channels change: the architecture is still the method's default.
        assert config.generator.kind == ("unet" if method == "pix2pix" else "resnet")


def test_later_layers_override_the_recipe():
    config = resolve_config("pix2pix", task="inpaint", assignments=["synth.hole_area_max=0.2", "data.load_size=300"])
    assert config.synth.hole_area_max == 0.2 and config.data.load_size == 300
    assert config.generator.in_channels == 4  # the recipe's channels survive a preset choice too
    assert resolve_config("pix2pix", task="inpaint", overrides={"generator": "unet_128"}).generator.in_channels == 4


@pytest.mark.parametrize("task", list(RECIPES))
def test_recipe_pairs_fit_its_generator(photo, task):
    """The synthesised input runs through the recipe's generator (made tiny) and gives the target's shape."""
    config = resolve_config("pix2pix", task=task)
    size = config.data.crop_size
    net_input, target = pair_maker(config)(photo("astronaut", size), np.random.default_rng(0))
    spec = dataclasses.replace(config.generator, base_channels=4)
    net = build_net(spec).eval()
    with torch.no_grad():
        out = net(image_to_tensor(net_input)[None])
    assert out.shape[1:] == image_to_tensor(target).shape
    assert torch.isfinite(out).all()


def test_unknown_recipe_lists_the_tasks():
    with pytest.raises(ValueError, match="unknown recipe 'deblur'; choose one of colorize, sketch, inpaint, superres"):
        load_recipe("deblur")
