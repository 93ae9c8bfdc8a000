"""Tasks: one module per task, registered once here.

A task owns everything task-specific: its settings (`Task.settings`: how it synthesises training
pairs from photos, its own losses' knobs), its inference adapter and mask rule, what `prepare`
writes, its evaluation baseline and region, and how its input, output and target are shown
(`Task.display`: sample grids, the run page and the evaluation page) (see `translate.tasks.base.Task`).
Nothing outside this package switches on a task's name. Adding a task: one module, one entry
below (and, for a task trained from photos, a default recipe in translate/recipes/<name>.yaml).
"""
from __future__ import annotations

from translate.errors import ConfigError
from translate.tasks.base import Prepared, Task, TaskAdapter
from translate.tasks.colorize import Colorize
from translate.tasks.custom import Custom
from translate.tasks.inpaint import Inpaint
from translate.tasks.restore import Restore
from translate.tasks.sketch import Sketch
from translate.tasks.superres import Superres

__all__ = ["RENAMED_TASKS", "TASKS", "Prepared", "Task", "TaskAdapter", "get_task", "recipe_tasks"]

TASKS: dict[str, Task] = {
    "custom": Custom(),
    "colorize": Colorize(),
    "sketch": Sketch(),
    "inpaint": Inpaint(),
    "superres": Superres(),
    "restore": Restore(),
}

# Tasks of translate 0.2 that are super-resolution recipes now (translate/recipes/<name>.yaml):
# checkpoints and run configs that name them convert, evaluate and resume as superres.
RENAMED_TASKS: dict[str, str] = {"srgan": "superres", "esrgan": "superres", "realesrgan": "superres"}


def get_task(name: str, *, from_photos: bool = False) -> Task:
    """The registered task called `name` (a 0.2 name such as "esrgan" gives the task that replaced
    it); ConfigError naming the choices otherwise. With `from_photos`, only a task whose pairs are
    synthesised from photos will do."""
    name = RENAMED_TASKS.get(name, name) if isinstance(name, str) else name
    task = TASKS.get(name) if isinstance(name, str) else None
    if task is None:
        raise ConfigError(f"task: unknown {name!r}; choose one of {', '.join(TASKS)}")
    if from_photos and not task.from_photos:
        raise ConfigError(f"task: {name!r} cannot be prepared from photos; choose one of {', '.join(recipe_tasks())}")
    return task


def recipe_tasks() -> list[str]:
    """Names of the tasks that synthesise their pairs from plain photos (all but custom)."""
    return [name for name, task in TASKS.items() if task.from_photos]
