"""A run's own files read as far as they can be: a log line that is not UTF-8 or a config.yaml that
no longer parses (a crash, a hand edit) is skipped with a warning naming it, never a traceback, so
`translate report` still writes the page from everything else."""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of CSV file `path` (header first); undecodable or malformed lines are skipped and named."""
    lines = path.read_bytes().splitlines(keepends=True)
    kept, skipped = [], []
    for number, raw in enumerate(lines, start=1):
        try:
            kept.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            skipped.append(number)
    if skipped:
        log.warning("%s: skipped %d line%s that %s not UTF-8 text (line %s)", path, len(skipped),
                    "s" * (len(skipped) > 1), "are" if len(skipped) > 1 else "is", ", ".join(map(str, skipped[:5])))
    try:
        return list(csv.DictReader(io.StringIO("".join(kept), newline="")))
    except csv.Error as e:
        log.warning("%s: skipped: not readable as CSV (%s)", path, e)
        return []


def config_yaml(path: Path) -> tuple[str, dict[str, Any]]:
    """(text, parsed mapping) of a run's config.yaml; ("", {}) when absent, and the text with {} when
    it is not UTF-8 or not a YAML mapping (named in a warning)."""
    import yaml

    if not path.is_file():
        return "", {}
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        parsed = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        log.warning("%s: skipped: not valid YAML (%s)", path, str(e).splitlines()[0])
        return text, {}
    if not isinstance(parsed, dict):
        log.warning("%s: skipped: not a mapping of settings", path)
        return text, {}
    return text, parsed


def write_run_config(run_dir: Path, text: str, settings: dict[str, Any]) -> Path | None:
    """Write the config a run uses (`text`, the YAML of `settings`) as RUN/config.yaml, atomically.

    A config.yaml the user edited (other than in its runtime section, which flags change on resume)
    is not overwritten silently: it is kept as config.edited.yaml (config.edited-2.yaml, ...) and a
    warning says which config the run uses. Returns where the edited copy went, or None."""
    from translate.files import atomic_write

    path = run_dir / "config.yaml"
    kept = None
    old_text, old = config_yaml(path)
    strip = lambda d: {k: v for k, v in d.items() if k != "runtime"}  # noqa: E731
    if old_text and strip(old) != strip(settings):
        kept = next(p for n in range(1, 1000) if not (p := run_dir / f"config.edited{'' if n == 1 else f'-{n}'}.yaml").exists())
        path.replace(kept)
        log.warning("%s: edited since the run started; it continues with the config saved in its checkpoint "
                    "(architecture, data and schedule are fixed; runtime settings change with flags on resume); "
                    "your version is kept as %s", path, kept.name)
    atomic_write(path, text.encode("utf-8"))
    return kept
