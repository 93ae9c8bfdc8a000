"""RUN/index.html: one self-contained page per run (loss curves per term, validation curves, sample
grids over time, checkpoints with their figures, the resolved config). It opens from the file
system with no server and no internet: styles and charts (translate.training.charts) are inline, and the
only other things it shows are the run's own sample images, by relative path."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from translate.checkpoint import SE_SUFFIX, figures_text, plus_minus
from translate.training import readable
from translate.training.charts import Series, downsample, line_chart, moving_average
from translate.errors import CheckpointError
from translate.files import atomic_write

log = logging.getLogger(__name__)

PAGE = "index.html"
# log.csv columns that are bookkeeping, not loss terms.
LOG_FIELDS = ("step", "epoch", "lr_g", "seconds")
MAX_THUMBNAILS = 24  # sample grids shown over time, evenly spaced, always with the newest
REFRESH_S = 60  # a page of a run in progress reloads itself this often


@dataclass
class RunStatus:
    """What the page knows beyond the run's files: progress and the best-so-far record."""
    step: int = 0
    epoch: int = 0
    total_steps: int | None = None
    total_epochs: int | None = None
    best: dict[str, Any] | None = None  # translate.training.validation.BestRecord.to_dict()
    finished: bool | None = None  # None: unknown (a page made later by `translate report`)


def read_rows(path: Path) -> list[dict[str, float]]:
    """A run's CSV log as float rows, one per step (a resumed run's rewrite of a step wins), by step.
    Blank or non-numeric cells become NaN."""
    if not path.is_file():
        return []
    rows = readable.csv_rows(path)  # a line that is not UTF-8 is skipped and named, not a traceback
    by_step: dict[float, dict[str, float]] = {}
    for row in rows:
        parsed = {k: _number(v) for k, v in row.items() if k is not None}
        if math.isfinite(parsed.get("step", math.nan)):
            by_step[parsed["step"]] = parsed
    return [by_step[k] for k in sorted(by_step)]


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def loss_charts(rows: list[dict[str, float]]) -> list[str]:
    """One chart per loss term of log.csv: the logged means (faint) and their moving average."""
    terms = [k for k in (rows[0] if rows else {}) if k not in LOG_FIELDS]
    charts = []
    for term in terms:
        points = downsample([(r["step"], r[term]) for r in rows if math.isfinite(r.get(term, math.nan))])
        trend = moving_average(points, max(1, len(points) // 25))
        charts.append(line_chart([Series(term, points, "raw"), Series(f"{term} (moving average)", trend, "smooth")],
                                 title=term, x_label="step", kind="loss"))
    return charts


def val_charts(rows: list[dict[str, float]], best: dict[str, Any] | None) -> list[str]:
    """One chart per validation figure, ± its standard error where val.csv has one (the column
    + SE_SUFFIX; older runs' files have none); the selection figure first, its best point ringed."""
    column = (best or {}).get("column") or ""
    names = [k for k in (rows[0] if rows else {}) if k not in ("epoch", "step") and not _is_error(k, rows[0])]
    names.sort(key=lambda k: k != column)
    charts = []
    for name in names:
        points = [(r["step"], r[name]) for r in rows]
        errors = [r.get(name + SE_SUFFIX, math.nan) for r in rows] if name + SE_SUFFIX in rows[0] else []
        highlight, note = None, ""
        if name == column and best and best.get("value") is not None:
            highlight = (float(best["step"]), float(best["value"]))
            note = f"  picks best.pt ({'higher' if best['higher_is_better'] else 'lower'} is better)"
            note += " · bars: ± standard error" if errors else ""
        charts.append(line_chart([Series(name, points, "points", errors)], title=name, x_label="step", kind="val",
                                 highlight=highlight, note=note))
    return charts


def _is_error(name: str, row: dict[str, float]) -> bool:
    """Whether column `name` is another column's standard error ("psnr_se" beside "psnr")."""
    return name.endswith(SE_SUFFIX) and name[: -len(SE_SUFFIX)] in row


def _samples(run_dir: Path) -> str:
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if not grids:
        return "<p class='muted'>No sample grids yet.</p>"
    picks = sorted({round(i * (len(grids) - 1) / max(1, MAX_THUMBNAILS - 1)) for i in range(MAX_THUMBNAILS)})
    newest = grids[-1]
    thumbs = "".join(f"<figure><a href='{_href(run_dir, grid)}'><img loading='lazy' src='{_href(run_dir, grid)}' "
                     f"alt='{escape(grid.stem)}'></a><figcaption>{escape(_step_text(grid))}</figcaption></figure>"
                     for grid in (grids[i] for i in picks))
    return (f"<figure class='newest'><img src='{_href(run_dir, newest)}' alt='newest sample grid'>"
            f"<figcaption>newest: {escape(_step_text(newest))}</figcaption></figure>"
            f"<p class='muted'>{len(grids)} grid(s) in samples/; over time:</p><div class='thumbs'>{thumbs}</div>")


def _href(run_dir: Path, path: Path) -> str:
    return escape(quote(path.relative_to(run_dir).as_posix()), quote=True)


def _step_text(path: Path) -> str:
    digits = path.stem.rsplit("_", 1)[-1]
    return f"step {int(digits)}" if digits.isdigit() else path.stem


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _figures(row: dict[str, float] | None, column: str) -> tuple[str, str]:
    """(the selection figure ± its error, all figures) of a validation row, as table cells."""
    if row is None:
        return "", ""
    selected = plus_minus(row[column], row.get(column + SE_SUFFIX)) if column in row else ""
    return selected, figures_text(row)


def _checkpoints(run_dir: Path, status: RunStatus, val_rows: list[dict[str, float]]) -> str:
    """Every checkpoint file with its step, size and the validation figures measured at that step."""
    from translate.checkpoint import BEST, LATEST, checkpoint_dir, numbered_checkpoints

    folder, best = checkpoint_dir(run_dir), status.best or {}
    column = best.get("column") or ""
    at_step = {int(r["step"]): r for r in val_rows}
    entries = []
    if (folder / BEST).is_file():
        entries.append((folder / BEST, best.get("step"), "best validation figure"))
    if (folder / LATEST).is_file():
        entries.append((folder / LATEST, status.step, "full training state (resume)"))
    entries += [(p, int(p.stem.split("_")[1]), "") for p in reversed(numbered_checkpoints(folder))]
    if not entries:
        return "<p class='muted'>No checkpoints yet.</p>"
    lines = []
    for path, step, note in entries:
        selected, others = _figures(at_step.get(step) if step is not None else None, column)
        lines.append(f"<tr><td><code>{escape(path.relative_to(run_dir).as_posix())}</code></td>"
                     f"<td>{'' if step is None else step}</td><td>{_size(path.stat().st_size)}</td>"
                     f"<td>{selected}</td><td class='muted'>{escape(others)}</td><td>{escape(note)}</td></tr>")
    head = f"<th>{escape(column) or 'metric'}</th>"
    return (f"<table><tr><th>file</th><th>step</th><th>size</th>{head}<th>validation at that step</th><th></th></tr>"
            + "".join(lines) + "</table>")


def _summary(run_dir: Path, status: RunStatus, config: dict[str, Any], val_rows: list[dict[str, float]]) -> str:
    total = f" of {status.total_steps}" if status.total_steps else ""
    epochs = f" of {status.total_epochs}" if status.total_epochs else ""
    state = {True: "finished", False: "training", None: ""}[status.finished]
    facts = [f"method <b>{escape(str(config.get('method', '?')))}</b>", f"task {escape(str(config.get('task', '?')))}",
             f"step {status.step}{total} (epoch {status.epoch}{epochs})", state,
             f"page written {time.strftime('%Y-%m-%d %H:%M:%S')}"]
    lines = [f"<p>{' · '.join(f for f in facts if f)}</p>"]
    best = status.best or {}
    if best.get("value") is not None:
        column = best["column"]
        final = next((r for r in reversed(val_rows) if column in r), None)
        final_text = (f"final {plus_minus(final[column], final.get(column + SE_SUFFIX))} "
                      f"(step {int(final['step'])}) · " if final is not None else "")
        lines.append(f"<p class='best'>{escape(column)}: {final_text}<b>best {plus_minus(best['value'], best.get('se'))}</b> "
                     f"(epoch {best['epoch']}, step {best['step']}) → <code>checkpoints/best.pt</code></p>")
    elif not val_rows:
        lines.append("<p class='muted'>No validation yet (the data has no validation split, or none was due).</p>")
    return "".join(lines)


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.muted { color: #777; } .best { font-size: 1.05em; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 10px; }
svg.chart { width: 100%; height: auto; background: #fff; border: 1px solid #e4e4e4; border-radius: 4px; }
svg .title { font-size: 13px; font-weight: 600; } svg .note { font-weight: 400; fill: #777; }
svg .tick, svg .axis, svg .empty { font-size: 10px; fill: #666; } svg .grid { stroke: #eee; }
svg .series { fill: none; stroke-width: 1.5; } svg .raw { stroke: #9ab8d8; stroke-width: 1; }
svg .smooth { stroke: #1f5f9f; stroke-width: 2; } svg .points { stroke: #b0581f; } svg .point { fill: #b0581f; }
svg .best { fill: none; stroke: #1a9641; stroke-width: 2.5; } svg .errorbar { stroke: #b0581f; stroke-width: 1; fill: none; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
td:nth-child(-n+4) { white-space: nowrap; }
.newest img { max-width: 100%; image-rendering: pixelated; min-width: 384px; }
.thumbs { display: flex; flex-wrap: wrap; gap: 8px; } .thumbs img { height: 96px; image-rendering: pixelated; }
figure { margin: 0; } figcaption { font-size: 12px; color: #666; }
pre { background: #f6f6f6; padding: 10px; overflow: auto; max-height: 480px; }
"""


def render(run_dir: Path, status: RunStatus) -> str:
    """The page's HTML for the files now in `run_dir`."""
    config_text, config = readable.config_yaml(run_dir / "config.yaml")  # an invalid one: skipped, named
    loss_rows, val_rows = read_rows(run_dir / "log.csv"), read_rows(run_dir / "val.csv")
    losses = "".join(loss_charts(loss_rows)) or "<p class='muted'>No losses logged yet.</p>"
    vals = "".join(val_charts(val_rows, status.best)) or "<p class='muted'>No validation figures yet.</p>"
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if status.finished is False else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<title>{escape(run_dir.resolve().name)}: translate run</title><style>{STYLE}</style></head>
<body><h1>{escape(run_dir.resolve().name)}</h1>
{_summary(run_dir, status, config if isinstance(config, dict) else {}, val_rows)}
<h2 id="losses">Losses per term</h2><div class="charts">{losses}</div>
<h2 id="validation">Validation</h2><div class="charts">{vals}</div>
<h2 id="samples">Sample grids</h2>{_samples(run_dir)}
<h2 id="checkpoints">Checkpoints</h2>{_checkpoints(run_dir, status, val_rows)}
<h2 id="config">Resolved config</h2><pre>{escape(config_text) or "(no config.yaml)"}</pre>
</body></html>
"""


def write_run_page(run_dir: str | Path, status: RunStatus) -> Path:
    """Write RUN/index.html atomically (a browser reloading it never sees half a page)."""
    run_dir = Path(run_dir)
    path = run_dir / PAGE
    atomic_write(path, render(run_dir, status).encode("utf-8"))
    return path


def refresh_run_page(run_dir: str | Path, status: RunStatus) -> None:
    """write_run_page for a training run: a page that cannot be written is logged, never stops it."""
    try:
        write_run_page(run_dir, status)
    except OSError as e:
        log.warning("run page not written: %s", e)


def report(run_dir: str | Path) -> Path:
    """The page of an existing run, progress and best record read from its latest checkpoint."""
    from translate.checkpoint import LATEST, checkpoint_dir, load_checkpoint

    run_dir = Path(run_dir)
    if not any((run_dir / name).exists() for name in ("config.yaml", "log.csv", "checkpoints")):
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml, log.csv or checkpoints/)")
    status = RunStatus()
    if (checkpoint_dir(run_dir) / LATEST).is_file():
        ckpt = load_checkpoint(run_dir)
        optim = ckpt["config"].get("optim", {})
        status = RunStatus(step=int(ckpt.get("step", 0)), epoch=int(ckpt.get("epoch", 0)), best=ckpt.get("best"),
                           total_epochs=(optim.get("epochs", 0) + optim.get("epochs_decay", 0)) or None)
    elif rows := read_rows(run_dir / "log.csv"):
        epoch = rows[-1].get("epoch", math.nan)
        status = RunStatus(step=int(rows[-1]["step"]), epoch=int(epoch) if math.isfinite(epoch) else 0)
    return write_run_page(run_dir, status)
