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


def upgrade_v02(data: dict[str, Any], plugins: Plugins) -> dict[str, Any]:
    """A 0.2 config dict in today's shape (any other dict is returned as it is): the task renamed
    (esrgan -> superres), the method's own section kept, and the task's settings gathered from
    `synth` and `inpaint` into the task's section; other methods' and tasks' settings dropped."""
    if not is_v02(data):
        return data
    out = {key: value for key, value in data.items() if key not in _V02_SECTIONS}
    task_name = data.get("task", "custom")
    out["task"] = task_name = plugins.renamed_tasks.get(task_name, task_name)
    method = plugins.method(data.get("method", "pix2pix")).settings
    if method is not None and method.SECTION in data:
        out[method.SECTION] = data[method.SECTION]
    task = plugins.task(task_name).settings
    if task is not None and task.SECTION:
        fields = {f.name for f in dataclasses.fields(task)}
        flat = {**(data.get("synth") or {}), **(data.get("inpaint") or {})}
        out[task.SECTION] = {key: value for key, value in flat.items() if key in fields}
    return out
