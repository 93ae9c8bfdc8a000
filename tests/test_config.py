"""Config: dict/YAML round trips, overrides, validation messages."""
from __future__ import annotations

import re

import pytest
import yaml

from translate.config import ConfigError, TrainConfig, merge, named_overrides, parse_set
from translate.recipes import config_from_dict, resolve_config, resume_config
from translate.nets import PRESETS


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan", "cut", "fastcut"])
def test_yaml_round_trip(method):
    config = resolve_config(method)
    again = config_from_dict(yaml.safe_load(config.to_yaml()))
    assert again == config


def test_method_defaults_follow_the_papers():
    p2p, cyc = resolve_config("pix2pix"), resolve_config("cyclegan")
    assert p2p.generator == PRESETS["unet_256"] and p2p.gan.loss == "vanilla" and p2p.method_settings.lambda_l1 == 100
    assert cyc.generator == PRESETS["resnet_9blocks"] and cyc.gan.loss == "lsgan"
    assert cyc.method_settings.lambda_a == 10 and cyc.method_settings.pool_size == 50 and cyc.method_settings.lambda_identity == 0.5


def test_unknown_key_names_its_dotted_path():
    with pytest.raises(ConfigError, match=r"optim\.learning_rate: unknown key"):
        config_from_dict({"optim": {"learning_rate": 1}})


def test_wrong_type_and_choice_are_named():
    with pytest.raises(ConfigError, match=r"optim\.batch_size: expected int"):
        config_from_dict({"optim": {"batch_size": "four"}})
    with pytest.raises(ConfigError, match=r"gan\.loss: 'wgan' is not one of"):
        config_from_dict({"gan": {"loss": "wgan"}})


def test_crop_size_must_fit_the_generator():
    with pytest.raises(ConfigError, match="data.crop_size: 200 is not a multiple of 256"):
        config_from_dict({"data": {"crop_size": 200, "load_size": 286}})


def test_set_values_are_parsed_and_typed():
    overrides = parse_set(["optim.lr_g=1e-4", "generator.n_blocks=6", "data.flip=false"])
    config = config_from_dict(merge(resolve_config("cyclegan").to_dict(), overrides))
    assert config.optim.lr_g == pytest.approx(1e-4)
    assert config.generator.n_blocks == 6 and config.data.flip is False
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["optim.lr_g"])


def test_precedence_recipe_file_flags_set(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("optim: {batch_size: 4, epochs: 7}\ndata: {crop_size: 128, load_size: 128}\n"
                    "generator: unet_128\n")
    config = resolve_config("pix2pix", config_file=file, overrides={"optim.epochs": 3},
                            assignments=["optim.epochs=5"])
    assert config.optim.batch_size == 4  # from the file
    assert config.optim.epochs == 5  # --set beats flags beats file
    assert config.generator == PRESETS["unet_128"]


def test_preset_keeps_channels_chosen_earlier():
    base = merge(resolve_config("pix2pix").to_dict(), {"generator": {"in_channels": 1, "out_channels": 2}})
    merged = merge(base, {"generator": "unet_128"})
    assert merged["generator"]["in_channels"] == 1 and merged["generator"]["num_downs"] == 7


def test_bad_yaml_file_is_named(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        resolve_config("pix2pix", config_file=file)


@pytest.mark.parametrize("values, message", [
    ({"optim": {"lr_g": -1.0}}, "optim.lr_g: must be a finite number > 0, got -1.0"),
    ({"optim": {"lr_d": float("nan")}}, "optim.lr_d: must be a finite number > 0, got nan"),
    ({"optim": {"lr_g": float("inf")}}, "optim.lr_g: must be a finite number > 0, got inf"),
    ({"optim": {"beta1": 1.0}}, "optim.beta1: must be in [0, 1), got 1.0"),
    ({"data": {"workers": -1}}, "data.workers: must be 0 or more"),
    ({"data": {"val_fraction": 2}}, "data.val_fraction: must be in [0, 1), got 2.0"),
    ({"data": {"crop_size": -64}}, "data.crop_size: must be at least 1 px, got -64"),
    ({"generator": {"in_channels": 7}}, "generator.in_channels: must be 1 to 4 (image channels), got 7"),
    ({"generator": {"out_channels": 5}}, "generator.out_channels: must be 1 to 4"),
    ({"pix2pix": {"lambda_l1": -100}}, "pix2pix.lambda_l1: must be a finite number >= 0, got -100.0"),
    ({"cyclegan": {"pool_size": -1}}, "cyclegan.pool_size: must be 0 or more"),
    ({"cut": {"lambda_nce": -1}}, "cut.lambda_nce: must be a finite number >= 0, got -1.0"),
    ({"cut": {"lambda_gan": float("nan")}}, "cut.lambda_gan: must be a finite number >= 0, got nan"),
    ({"cut": {"nce_t": 0}}, "cut.nce_t: must be a finite number > 0, got 0.0"),
    ({"cut": {"num_patches": 0}}, "cut.num_patches: must be at least 1, got 0"),
    ({"cut": {"mlp_channels": -8}}, "cut.mlp_channels: must be at least 1, got -8"),
    ({"runtime": {"seed": -1}}, "runtime.seed: must be 0 or more, got -1"),
    ({"runtime": {"log_every_steps": 0}}, "runtime.log_every_steps: must be at least 1, got 0"),
])
def test_out_of_range_values_are_named_by_dotted_path(values, message):
    with pytest.raises(ConfigError) as info:
        method = next((m for m in ("cyclegan", "cut") if m in values), "pix2pix")  # whose section it is
        config_from_dict(merge(resolve_config(method).to_dict(), values))
    assert str(info.value).startswith(message)


def test_every_value_at_its_boundary_is_accepted():
    edges = {"data": {"workers": 0, "val_fraction": 0.0}, "pix2pix": {"lambda_l1": 0},
             "generator": {"in_channels": 1, "out_channels": 4}, "optim": {"beta1": 0.0},
             }
    config = config_from_dict(merge(resolve_config("pix2pix").to_dict(), edges))
    assert config.generator.in_channels == 1 and config.data.workers == 0
    cut_edges = {"cut": {"lambda_nce": 0, "lambda_gan": 0, "num_patches": 1, "mlp_channels": 1}}
    assert config_from_dict(merge(resolve_config("cut").to_dict(), cut_edges)).method_settings.num_patches == 1


def test_a_section_of_another_method_is_an_unknown_key():
    with pytest.raises(ConfigError, match=r"^cyclegan: unknown key \(valid: .*pix2pix"):
        config_from_dict(merge(resolve_config("pix2pix").to_dict(), {"cyclegan": {"pool_size": 3}}))


@pytest.mark.parametrize("assignment, message", [
    ("optim.lr_g=[1,", "--set 'optim.lr_g=[1,': the value is not valid YAML"),
    ("optim.lr_g=!!python/object/apply:os.system ['true']", "could not determine a constructor for the tag"),
])
def test_set_values_that_are_not_safe_yaml_are_one_line(assignment, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_set([assignment])
    assert "\n" not in str(info.value)


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="generator: preset: unknown 'unet_32'"):
        merge(resolve_config("pix2pix").to_dict(), {"generator": "unet_32"})


def test_config_file_that_is_not_utf8_is_named(tmp_path):
    file = tmp_path / "latin1.yaml"
    file.write_bytes("optim: {lr_g: 0.0002}  # réglage\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.yaml: not a UTF-8 text file"):
        resolve_config("pix2pix", config_file=file)


def test_named_settings_set_their_fields():
    overrides = named_overrides(lr=1e-4, norm="instance", generator="unet_128", seed=None)
    assert overrides == {"optim.lr_g": 1e-4, "optim.lr_d": 1e-4, "generator.norm": "instance", "generator": "unet_128"}
    config = resolve_config("pix2pix", overrides=overrides)
    # the preset applies first, whatever the order given, so --norm refines it
    assert config.generator.num_downs == 7 and config.generator.norm == "instance"
    with pytest.raises(ConfigError, match="learning_rate: not a named setting"):
        named_overrides(learning_rate=1)


def test_set_assignments_apply_in_order():
    config = resolve_config("pix2pix", assignments=["generator=unet_128", "generator.num_downs=5"])
    assert config.generator.kind == "unet" and config.generator.num_downs == 5


@pytest.mark.parametrize("path,value", [("runtime.max_steps", -1), ("runtime.checkpoint_every_steps", -5),
                                        ("runtime.checkpoint_every_minutes", float("nan")),
                                        ("runtime.keep_checkpoints", -1), ("runtime.log_every_steps", 0),
                                        ("data.max_megapixels", 0)])
def test_negative_counts_are_refused(path, value):
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        resolve_config("pix2pix", overrides={path: value})


def test_epochs_zero_means_until_max_steps():
    config = resolve_config("pix2pix", overrides={"optim.epochs": 0, "optim.epochs_decay": 0, "runtime.max_steps": 9})
    assert config.until_max_steps
    with pytest.raises(ConfigError, match="until runtime.max_steps, which is not set"):
        resolve_config("pix2pix", overrides={"optim.epochs": 0, "optim.epochs_decay": 0})


def test_resume_changes_runtime_settings_only():
    saved = resolve_config("pix2pix").to_dict()
    config = resume_config(saved, overrides={"runtime.max_steps": 7, "runtime.device": "cpu", "data.workers": 2})
    assert (config.runtime.max_steps, config.runtime.device, config.data.workers) == (7, "cpu", 2)
    for overrides, assignments, path in [({"generator": "unet_128"}, (), "generator"),
                                         ({"generator.norm": "instance"}, (), r"generator\.norm"),
                                         ({}, ["data.load_size=300"], r"data\.load_size"),
                                         ({"runtime.seed": 3}, (), r"runtime\.seed")]:
        with pytest.raises(ConfigError, match=f"^{path}: cannot change on resume"):
            resume_config(saved, overrides=overrides, assignments=assignments)
