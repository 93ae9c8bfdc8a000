"""Line charts as inline SVG text: the run page's curves.

Why SVG written from Python: the page must open from the file system with no server and no
internet, so no charting script can be fetched, and none is needed: the browser draws static SVG
itself, the numbers stay crisp at any zoom, hovering a point shows its value (<title>), tests can
read the curves back out of the page, and the toolkit gains no dependency.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 420, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 26, 34  # margins around the plot area, px
MAX_POINTS = 600  # longer series are averaged into this many buckets


@dataclass(frozen=True)
class Series:
    """One line: (x, y) points; non-finite y values are left out. `style` is a CSS class:
    "raw" (faint), "smooth" (the trend over it) or "points" (a line with a marker per point).
    `errors`, when given, holds one standard error per point (NaN: none), drawn as a bar y ± error."""
    label: str
    points: Sequence[tuple[float, float]]
    style: str = "raw"
    errors: Sequence[float] = ()

    def finite(self) -> Series:
        """The series without its non-finite points (their errors go with them)."""
        errors = list(self.errors) or [math.nan] * len(self.points)
        kept = [(p, e) for p, e in zip(self.points, errors) if math.isfinite(p[0]) and math.isfinite(p[1])]
        return Series(self.label, [p for p, _ in kept], self.style, [e for _, e in kept] if self.errors else ())

    def extent(self) -> list[float]:
        """The y values the axes must hold: each point, and the ends of its error bar."""
        ys = [y for _, y in self.points]
        return ys + [y + sign * e for (_, y), e in zip(self.points, self.errors) if math.isfinite(e) for sign in (-1, 1)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    spacing = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / spacing)
    last = max(first + 1, math.ceil(high / spacing - 1e-9))
    # Integer multiples of the spacing: exact at any magnitude (a KID of 1e-13 included).
    return [i * spacing for i in range(first, last + 1)]


def downsample(points: Sequence[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Mean of consecutive buckets, so a long run's line keeps its shape at a bounded size."""
    if len(points) <= limit:
        return list(points)
    size = len(points) / limit
    out = []
    for i in range(limit):
        bucket = points[round(i * size): round((i + 1) * size)]
        out.append((sum(p[0] for p in bucket) / len(bucket), sum(p[1] for p in bucket) / len(bucket)))
    return out


def moving_average(points: Sequence[tuple[float, float]], window: int) -> list[tuple[float, float]]:
    """Trailing mean over `window` points: the trend through noisy GAN losses."""
    out, total = [], 0.0
    for i, (x, y) in enumerate(points):
        total += y
        if i >= window:
            total -= points[i - window][1]
        out.append((x, total / min(i + 1, window)))
    return out


def label(value: float) -> str:
    """Short tick text: 12000 -> 12k, 0.000123 -> 0.000123, 23.456 -> 23.46."""
    if value != 0 and abs(value) >= 10_000 and float(value).is_integer():
        return f"{value / 1000:g}k"
    return f"{value:.4g}"


class _Frame:
    """Maps data coordinates onto the plot area, y upwards."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.x_ticks = nice_ticks(min(xs), max(xs))
        self.y_ticks = nice_ticks(min(ys), max(ys))
        self.x0, self.x1 = self.x_ticks[0], self.x_ticks[-1]
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)


def _axes(frame: _Frame, x_label: str) -> list[str]:
    parts = []
    for t in frame.y_ticks:
        y = frame.y(t)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{label(t)}</text>')
    for t in frame.x_ticks:
        x = frame.x(t)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 13}" text-anchor="middle">'
                     f'{label(t)}</text>')
    parts.append(f'<text class="axis" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    return parts


def _error_bars(frame: _Frame, series: Series) -> list[str]:
    """A vertical bar from y - error to y + error at each point that has an error, with short caps."""
    parts = []
    for (x, y), error in zip(series.points, series.errors):
        if not math.isfinite(error):
            continue
        cx, low, high = frame.x(x), frame.y(y - error), frame.y(y + error)
        parts.append(f'<path class="errorbar" data-x="{x:g}" data-y="{y:.6g}" data-error="{error:.6g}" '
                     f'd="M{cx:.1f},{low:.1f}V{high:.1f}M{cx - 3:.1f},{low:.1f}h6M{cx - 3:.1f},{high:.1f}h6">'
                     f'<title>{escape(series.label)} at {label(x)}: {y:.6g} ± {error:.2g}</title></path>')
    return parts


def _series(frame: _Frame, series: Series) -> list[str]:
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in series.points)
    parts = _error_bars(frame, series)
    parts += [f'<polyline class="series {series.style}" data-label="{escape(series.label)}" points="{coords}">'
              f'<title>{escape(series.label)}</title></polyline>']
    if series.style == "points":
        parts += [f'<circle class="point" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3">'
                  f'<title>{escape(series.label)} at {label(x)}: {y:.6g}</title></circle>' for x, y in series.points]
    return parts


def line_chart(series: Sequence[Series], *, title: str, x_label: str, kind: str,
               highlight: tuple[float, float] | None = None, note: str = "") -> str:
    """An <svg class="chart"> of `series` sharing axes, titled `title`, with each series' error bars;
    `highlight` rings one point (the best validation figure). `kind` ("loss", "val") goes into data-kind for readers and tests."""
    series = [s for s in (s.finite() for s in series) if s.points]
    head = (f'<svg class="chart" data-kind="{escape(kind)}" data-title="{escape(title)}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">'
            f'<text class="title" x="{LEFT}" y="16">{escape(title)}'
            f'<tspan class="note">{escape(note)}</tspan></text>')
    if not series:
        return head + f'<text class="empty" x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" ' \
                      f'text-anchor="middle">no finite values yet</text></svg>'
    frame = _Frame([x for s in series for x, _ in s.points], [y for s in series for y in s.extent()])
    parts = [head, *_axes(frame, x_label)]
    for s in series:
        parts += _series(frame, s)
    if highlight is not None and all(map(math.isfinite, highlight)):
        parts.append(f'<circle class="best" cx="{frame.x(highlight[0]):.1f}" cy="{frame.y(highlight[1]):.1f}" r="6">'
                     f'<title>best: {highlight[1]:.6g}</title></circle>')
    return "".join(parts) + "</svg>"
