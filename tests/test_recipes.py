"""Recipes: every packaged YAML (a task and a method with settings) loads, validates as a TrainConfig,
keeps each value it sets, and its pairs fit its generator."""
from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest
import torch

from translate.data.images import image_to_tensor
from translate.nets import build_net
from translate.config import ConfigError
from translate.recipes import config_from_dict, load_recipe, recipe_names, resolve_config
from translate.tasks import get_task, recipe_tasks

CHANNELS = {"colorize": (1, 2), "sketch": (1, 3), "inpaint": (4, 3), "superres": (3, 3), "restore": (3, 3),
            "srgan": (3, 3), "esrgan": (3, 3), "realesrgan": (3, 3)}
SR_GAN_RECIPES = ("srgan", "esrgan", "realesrgan")  # superres recipes: the SR papers' perceptual/GAN stage
RECIPES = recipe_names()


def _leaves(tree: dict, prefix: tuple = ()) -> list[tuple[tuple, object]]:
    out = []
    for key, value in tree.items():
        out += _leaves(value, prefix + (key,)) if isinstance(value, dict) else [(prefix + (key,), value)]
    return out


def test_every_recipe_file_is_listed_and_every_photo_task_has_a_default_recipe():
    files = {p.name.removesuffix(".yaml") for p in resources.files("translate.recipes").iterdir()
             if p.name.endswith(".yaml")}
    assert files == set(RECIPES) == set(CHANNELS)
    assert set(recipe_tasks()) <= set(RECIPES)  # `--task NAME` alone picks recipe NAME
    assert {load_recipe(name)["task"] for name in SR_GAN_RECIPES} == {"superres"}


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_value_a_recipe_sets_reaches_the_config(recipe):
    """No recipe key is dropped or rewritten on the way: preset merging, spec parsing and the
    task's own checks all keep what the YAML says."""
    values = load_recipe(recipe)
    assert values["method"] == "pix2pix"
    resolved = resolve_config(recipe=recipe).to_dict()
    for path, value in _leaves(values):
        node = resolved
        for key in path:
            node = node[key]
        assert node == value, ".".join(path)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_are_for_pix2pix(recipe):
    with pytest.raises(ConfigError, match="recipe trains pix2pix, not cyclegan"):
        resolve_config("cyclegan", recipe=recipe)
    task = load_recipe(recipe)["task"]
    with pytest.raises(ConfigError, match="so it trains a paired method a_to_b"):  # the task's own rule, recipe or not
        resolve_config("pix2pix", recipe=recipe, overrides={"direction": "b_to_a"})
    with pytest.raises(ConfigError, match="so it trains a paired method a_to_b"):
        config_from_dict({**resolve_config("cyclegan").to_dict(), "task": task})


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_validates_as_a_train_config(recipe):
    config = resolve_config(recipe=recipe)
    task = recipe  # the checks below are per recipe
    assert config.task == load_recipe(recipe)["task"]
    assert (config.generator.in_channels, config.generator.out_channels) == CHANNELS[recipe]
    assert config.data.crop_size % (config.generator.size_multiple * config.generator.scale) == 0
    assert config.to_dict() == config_from_dict(config.to_dict()).to_dict()
    if task == "superres":
        assert config.generator.kind == "resnet" and config.generator.scale == config.task_settings.scale == 4
    if task in ("superres", "restore", *SR_GAN_RECIPES):
        assert config.data.preprocess == "crop"  # native-scale crops: resizing would blur the detail away
    if task in SR_GAN_RECIPES:
        assert config.generator.scale == config.task_settings.scale == 4 and not config.method_settings.conditional
        assert config.method_settings.lambda_perceptual > 0 and config.optim.ema_decay == 0.999
    elif task not in ("superres", "restore"):
        assert config.generator.kind == "unet"  # only the channels change: pix2pix's default architecture


def test_later_layers_override_the_recipe():
    config = resolve_config("pix2pix", task="inpaint", assignments=["inpaint.hole_area_max=0.2", "data.load_size=300"])
    assert config.task_settings.hole_area_max == 0.2 and config.data.load_size == 300
    assert config.generator.in_channels == 4  # the recipe's channels survive a preset choice too
    assert resolve_config("pix2pix", task="inpaint", overrides={"generator": "unet_128"}).generator.in_channels == 4


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_pairs_fit_its_generator(photo, recipe):
    """The synthesised input runs through the recipe's generator (made tiny) and gives the target's shape."""
    config = resolve_config(recipe=recipe)
    size = config.data.crop_size
    net_input, target = get_task(config.task).pair_maker(config.task_settings)(photo("astronaut", size), np.random.default_rng(0))
    spec = dataclasses.replace(config.generator, base_channels=4)
    net = build_net(spec).eval()
    with torch.no_grad():
        out = net(image_to_tensor(net_input)[None])
    assert out.shape[1:] == image_to_tensor(target).shape
    assert torch.isfinite(out).all()


def test_unknown_task_lists_the_tasks():
    message = "task: unknown 'deblur'; choose one of custom, colorize, sketch, inpaint, superres, restore$"
    with pytest.raises(ConfigError, match=message):
        resolve_config("pix2pix", task="deblur")
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"task": "deblur"})
    with pytest.raises(ConfigError, match="recipe: unknown 'deblur'; choose one of colorize, esrgan"):
        resolve_config(recipe="deblur")


def test_an_old_sr_task_name_points_at_its_recipe():
    with pytest.raises(ConfigError, match="'esrgan' is a recipe now; use --task superres --recipe esrgan"):
        resolve_config("pix2pix", task="esrgan")
    with pytest.raises(ConfigError, match="recipe: 'esrgan' is a superres recipe, not a colorize one"):
        resolve_config(task="colorize", recipe="esrgan")


def test_superres_recipe_is_fidelity_first_on_the_shrink_mixture_in_600_steps(photo):
    """The default x4 recipe whose margin over bicubic the README states: pixel MSE only, inputs made by
    the shrink mixture (one of the common ways small photos are made, drawn per pair), and the
    README's `--max-steps 600` is its whole schedule in six 100-step epochs (3 at the full rate, 3
    decaying), not a hundred 1-step ones."""
    from translate.tasks.superres import SHRINK_KERNELS, apply_shrink, draw_shrink
    from translate.training.sampler import batches_per_epoch
    from translate.training.loop import lr_factor

    config = resolve_config("pix2pix", task="superres", assignments=["runtime.max_steps=600"])
    p = config.method_settings
    assert p.lambda_gan == 0 and p.lambda_perceptual == 0 and p.lambda_mse > 0  # PSNR's own loss, nothing else
    target = photo("astronaut", 128)
    assert config.task_settings.degradation == "mixture"
    net_input, same_target = get_task("superres").pair_maker(config.task_settings)(target, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    assert np.array_equal(net_input, apply_shrink(target, 32, 32, SHRINK_KERNELS[draw_shrink(rng)], rng))
    assert np.array_equal(same_target, target)
    steps_per_epoch = batches_per_epoch(config.data.samples_per_epoch, batch_size=config.optim.batch_size)
    assert steps_per_epoch == 100 and config.total_epochs * steps_per_epoch == 600
    o = config.optim
    rates = [lr_factor(epoch, epochs=o.epochs, epochs_decay=o.epochs_decay) for epoch in range(config.total_epochs)]
    decaying = rates[o.epochs - 1 :]
    assert rates[: o.epochs] == [1.0] * o.epochs and all(a > b > 0 for a, b in zip(decaying, decaying[1:]))


# The recipes sized for a folder of a few dozen photos on a CPU (README: recipes against baselines).
SIZED_TASKS = ("colorize", "sketch", "inpaint", "restore")
RECIPE_STEPS, STEPS_PER_EPOCH = 800, 100


@pytest.mark.parametrize("task", SIZED_TASKS)
def test_a_small_folder_gets_long_epochs_and_the_recipes_step_budget(tmp_path, write_photos, task):
    """Seven photos still make 100-step epochs (validation and latest.pt every 100 steps, not every
    2), the run lasts the recipe's 800 steps, and every draw of a photo is a fresh crop and input."""
    from translate.training.loop import Trainer

    root = write_photos(7, size=160)
    config = resolve_config("pix2pix", task=task, overrides={"data.root": str(root)},
                            assignments=["generator.base_channels=4", "discriminator.base_channels=4"])
    trainer = Trainer(config, tmp_path / "run")
    assert len(trainer.train_set) == 7
    assert trainer.batches_per_epoch == STEPS_PER_EPOCH and trainer.total_steps == RECIPE_STEPS
    assert config.runtime.val_every_epochs * STEPS_PER_EPOCH >= 100  # steps go to learning
    first, again = trainer.train_set[0], trainer.train_set[7]  # one photo, first and second draw
    assert first["path"] == again["path"]
    assert not torch.equal(first["a"], again["a"]) and not torch.equal(first["b"], again["b"])


def test_colorize_exposure_darkens_training_draws_only(write_photos):
    """colorize.exposure_min darkens half the training draws (their chroma shrinks with them); the
    validation pairs stay the photos as they are, so validation figures compare across settings."""
    from translate.methods.pix2pix import Pix2Pix

    root = write_photos(6, size=96)

    def datasets(exposure_min):
        config = resolve_config("pix2pix", task="colorize", assignments=[
            f"data.root={root}", "data.val_fraction=0.34", f"colorize.exposure_min={exposure_min}",
            "generator.base_channels=4", "discriminator.base_channels=4"])
        return Pix2Pix(config).datasets()

    (train, val), (plain_train, plain_val) = datasets(0.1), datasets(1.0)
    assert len(val) == len(plain_val) > 0
    assert all(torch.equal(val[i]["a"], plain_val[i]["a"]) and torch.equal(val[i]["b"], plain_val[i]["b"])
               for i in range(len(val)))
    darkened = [i for i in range(40) if not torch.equal(train[i]["a"], plain_train[i]["a"])]
    assert 10 <= len(darkened) <= 30  # about half the draws
    for i in darkened:
        assert train[i]["a"].mean() < plain_train[i]["a"].mean()  # lightness in [-1, 1]: darker
        assert train[i]["b"].abs().mean() <= plain_train[i]["b"].abs().mean()  # ab around 0: less chroma
