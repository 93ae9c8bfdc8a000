"""Reading configs written by translate 0.2: every method's section (`pix2pix`, `cyclegan`, `cut`)
on every config, one flat `synth` bag of every task's knobs, `inpaint` loss settings, and the
super-resolution recipes registered as tasks (`task: esrgan`)."""
from __future__ import annotations

import dataclasses
from typing import Any

from translate.config.plugins import Plugins

# Sections 0.2 wrote on every config, whatever its method and task.
_V02_SECTIONS = ("pix2pix", "cyclegan", "cut", "inpaint", "synth")


def is_v02(data: dict[str, Any]) -> bool:
    """Whether `data` is a 0.2 config dict: only 0.2 wrote (or read) the flat `synth` section."""
    return isinstance(data, dict) and "synth" in data


def upgrade_v02(data: dict[str, Any], plugins: Plugins, *, method: str = "pix2pix",
                task: str = "custom") -> dict[str, Any]:
    """A 0.2 config dict in today's shape (any other dict is returned as it is): the task renamed
    (esrgan -> superres), the method's own section kept, and the task's settings gathered from
    `synth` and `inpaint` into the task's section; other methods' and tasks' settings dropped.
    `method` and `task` stand for the ones a partial dict (a config file's layer) leaves out."""
    if not is_v02(data):
        return data
    out = {key: value for key, value in data.items() if key not in _V02_SECTIONS}
    task_name = data.get("task", task)
    out["task"] = task_name = plugins.renamed_tasks.get(task_name, task_name)
    method_settings = plugins.method(data.get("method", method)).settings
    if method_settings is not None and method_settings.SECTION in data:
        out[method_settings.SECTION] = data[method_settings.SECTION]
    task_settings = plugins.task(task_name).settings
    if task_settings is not None and task_settings.SECTION:
        fields = {f.name for f in dataclasses.fields(task_settings)}
        flat = {**(data.get("synth") or {}), **(data.get("inpaint") or {})}
        out[task_settings.SECTION] = {key: value for key, value in flat.items() if key in fields}
    return out
