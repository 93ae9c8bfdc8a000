"""Tasks: one module per task (recipe YAML beside it), registered once here.

A task owns everything task-specific: its recipe, how it synthesises training pairs from photos,
its inference adapter and mask rule, what `prepare` writes, and its evaluation baseline, region and
displayed input (see `translate.tasks.base.Task`). Nothing outside this package switches on a
task's name. Adding a task: one module, one entry below, one `<name>.yaml`.
"""
from __future__ import annotations

from translate.errors import ConfigError
from translate.tasks.base import Prepared, Task, TaskAdapter
from translate.tasks.colorize import Colorize
from translate.tasks.custom import Custom
from translate.tasks.esrgan import Esrgan
from translate.tasks.inpaint import Inpaint
from translate.tasks.realesrgan import Realesrgan
from translate.tasks.restore import Restore
from translate.tasks.sketch import Sketch
from translate.tasks.srgan import Srgan
from translate.tasks.superres import Superres

__all__ = ["TASKS", "Prepared", "Task", "TaskAdapter", "get_task", "recipe_tasks"]

TASKS: dict[str, Task] = {
    "custom": Custom(),
    "colorize": Colorize(),
    "sketch": Sketch(),
    "inpaint": Inpaint(),
    "superres": Superres(),
    "restore": Restore(),
    # The perceptual/GAN stage of the super-resolution papers, each started from a fidelity run.
    "srgan": Srgan(),
    "esrgan": Esrgan(),
    "realesrgan": Realesrgan(),
}


def get_task(name: str, *, from_photos: bool = False) -> Task:
    """The registered task called `name`; ConfigError naming the choices otherwise. With
    `from_photos`, only a task whose pairs are synthesised from photos (a recipe task) will do."""
    task = TASKS.get(name) if isinstance(name, str) else None
    if task is None:
        raise ConfigError(f"task: unknown {name!r}; choose one of {', '.join(TASKS)}")
    if from_photos and not task.from_photos:
        raise ConfigError(f"task: {name!r} cannot be prepared from photos; choose one of {', '.join(recipe_tasks())}")
    return task


def recipe_tasks() -> list[str]:
    """Names of the tasks that synthesise their pairs from plain photos (all but custom)."""
    return [name for name, task in TASKS.items() if task.from_photos]
