"""Folder conversion: plan (walk, mirror, shard, masks), then decode ahead, batch and encode behind."""
from __future__ import annotations

import collections
import dataclasses
import enum
import glob
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from translate.data.images import IMAGE_SUFFIXES, fit_to_format, image_size, read_image, write_image
from translate.errors import TranslatorError, first_line
from translate.files import remove_stale_temp_files, walk_files
from translate.tasks import Prepared
from translate.inference.limits import check_megapixels
from translate.inference.ordering import small_first
from translate.inference.translator import Translator
from translate.inference.video_io import is_video

if TYPE_CHECKING:
    from translate.inference.video import VideoSettings

log = logging.getLogger(__name__)

# Largest input converted by default: a 200-megapixel photo (beyond any camera a user has today,
# medium-format backs included) runs tiled in about 3 GB; a 20000x20000 decompression bomb does not.
DEFAULT_MAX_MEGAPIXELS = 200.0
# Decoded inputs waiting for the net, in pixels: read-ahead keeps the CPU busy for small images
# without holding many large ones (one input is always let through, whatever its size).
_PIXELS_AHEAD = 64_000_000


class Status(str, enum.Enum):
    """What became of one input."""

    CONVERTED = "converted"
    SKIPPED_EXISTING = "skipped_existing"  # its output exists and overwrite is off: done before
    FAILED = "failed"


@dataclass
class ConvertReport:
    """What `convert_folder` did; inputs are listed by their source path."""

    converted: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed (already-converted files count as done)."""
        return not self.failed

    @property
    def done(self) -> int:
        return len(self.converted) + len(self.skipped_existing) + len(self.failed)

    @property
    def images_per_s(self) -> float:
        return len(self.converted) / self.seconds if self.seconds > 0 else 0.0

    def add(self, path: Path, status: Status, reason: str = "") -> None:
        if status is Status.CONVERTED:
            self.converted.append(path)
        elif status is Status.SKIPPED_EXISTING:
            self.skipped_existing.append(path)
        else:
            self.failed.append((path, reason))


@dataclass(frozen=True)
class ConvertEvent:
    """One finished input, for progress callbacks."""

    path: Path
    status: Status
    reason: str
    done: int
    total: int


@dataclass(frozen=True)
class ConvertJob:
    src: Path
    dst: Path
    mask: Path | None = None  # inpainting: hole mask (white = hole) for this input


# ---------------------------------------------------------------- planning
def parse_shard(text: str) -> tuple[int, int]:
    """"i/N" -> (i, N), with 0 <= i < N: this process converts the i-th of every N inputs."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    shard = (int(match[1]), int(match[2])) if match else None
    if shard is None or shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise TranslatorError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4")
    return shard


def shard_from_env(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) as set by torchrun, or None when unset or a single process."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    return parse_shard(f"{environ['RANK']}/{environ['WORLD_SIZE']}") if int(environ["WORLD_SIZE"]) > 1 else None


def shard_items(items: Sequence[Any], shard: tuple[int, int] | None) -> list[Any]:
    """The i-th of every N items (items in a fixed order, e.g. sorted relative paths)."""
    if shard is None:
        return list(items)
    index, count = shard
    return list(items[index::count])


def output_suffix(format: str | None) -> str | None:
    """".png" for "png" (None stays None); an unknown format is an error."""
    if format is None:
        return None
    suffix = "." + format.lower().lstrip(".")
    if suffix not in IMAGE_SUFFIXES:
        raise TranslatorError(f"format: {format!r} is not one of {', '.join(sorted(s[1:] for s in IMAGE_SUFFIXES))}")
    return suffix


def _pairs(src: Path, dst: Path, suffix: str | None) -> tuple[list[tuple[Path, Path]], str | None]:
    """(input, output) pairs before sharding, and the suffix still to apply to outputs."""
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise TranslatorError(f"{dst}: is a file; the output of a folder must be a folder")
        files = sorted(walk_files(src, skip=dst), key=lambda p: p.relative_to(src).as_posix())
        return [(f, dst / f.relative_to(src)) for f in files], suffix
    if dst.suffix.lower() in IMAGE_SUFFIXES and not dst.is_dir():
        if suffix is not None and dst.suffix.lower() != suffix:
            raise TranslatorError(f"{dst}: output suffix contradicts format {suffix[1:]!r}")
        return [(src, dst)], None
    return [(src, dst / src.name)], suffix


def plan_conversion(
    src: str | os.PathLike, dst: str | os.PathLike, *, format: str | None = None,
    shard: tuple[int, int] | None = None,
) -> tuple[list[ConvertJob], list[tuple[Path, str]]]:
    """(jobs, failures) for converting `src` (a file, or a folder walked recursively) into `dst`.

    The output tree mirrors the input tree and keeps file names (suffix replaced by `format`).
    Inputs are sorted by relative path before sharding, so shards are disjoint and stable.
    Files that are not images, and second inputs mapping to an output already taken, fail.
    """
    src, dst = Path(src), Path(dst)
    suffix = output_suffix(format)
    if not src.exists():
        raise TranslatorError(f"{src}: no such file or folder")
    if src.is_dir() and _same_path(src, dst):
        raise TranslatorError(f"{dst}: is the input folder itself; converting into it would replace "
                              "the photos, so choose another output folder (one inside it is fine)")
    pairs, suffix = _pairs(src, dst, suffix)
    if suffix is not None:
        pairs = [(source, target if is_video(source) else target.with_suffix(suffix)) for source, target in pairs]
    return jobs_from_pairs(pairs, shard)


def jobs_from_pairs(pairs: Sequence[tuple[Any, Any]], shard: tuple[int, int] | None = None,
                    key: Callable[[Any], Any] | None = None) -> tuple[list[ConvertJob], list]:
    """(jobs, failures) for (input, output) pairs: refuses outputs on inputs, fails non-images and
    second inputs for one output. Pairs are Paths (`key` default: the real file they name), or
    PurePosixPaths of an object store with `key=str`."""
    key = key or _path_key
    _refuse_inputs_as_outputs(pairs, key)
    jobs: list[ConvertJob] = []
    failures: list[tuple[Any, str]] = []
    taken: dict[Any, Any] = {}
    for source, target in shard_items(pairs, shard):
        if source.suffix.lower() not in IMAGE_SUFFIXES and not is_video(source):
            failures.append((source, f"not an image (suffix {source.suffix or '(none)'!r})"))
            continue
        if key(target) in taken:
            failures.append((source, f"output {target} would also be written from {taken[key(target)]}"))
            continue
        taken[key(target)] = source
        jobs.append(ConvertJob(source, target))
    return jobs, failures


def _path_key(path: Path) -> Path:
    """What `path` really names: symlinks resolved, case folded where the file system folds it."""
    return Path(os.path.normcase(path.resolve()))


def _same_path(a: Path, b: Path) -> bool:
    return _path_key(a) == _path_key(b)


def _refuse_inputs_as_outputs(pairs: Sequence[tuple[Any, Any]], key: Callable[[Any], Any]) -> None:
    """Raise when an output would land on an input file (symlinks included), with or without
    overwrite: a run must never replace the user's photos with their translations."""
    inputs = {key(source): source for source, _ in pairs}
    for source, target in pairs:
        if key(target) in inputs:
            raise TranslatorError(f"{target}: is the input file {inputs[key(target)]}; converting onto "
                                  "it would replace it, so choose an output folder or file elsewhere")


def find_mask(mask_dir: Path, relative: Path) -> Path | None:
    """The mask for an input: same relative path below `mask_dir`, any image suffix."""
    folder = mask_dir / relative.parent
    for candidate in sorted(folder.glob(f"{glob.escape(relative.stem)}.*")) if folder.is_dir() else []:
        if candidate.suffix.lower() in IMAGE_SUFFIXES:
            return candidate
    return None


def _reason(error: BaseException, path: Path) -> str:
    text = first_line(error)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


# ---------------------------------------------------------------- running
class FolderConverter:
    """Runs planned jobs through one Translator: worker threads decode ahead and encode behind
    while this thread batches same-size inputs through the net; every input ends in a Status."""

    def __init__(self, translator: Translator, *, overwrite: bool = False, workers: int = 2,
                 max_batch: int | None = None, progress: Callable[[ConvertEvent], None] | None = None,
                 max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> None:
        check_megapixels(max_megapixels)  # inf would turn the limit off silently
        self.translator = translator
        self.max_megapixels = max_megapixels
        self.overwrite = overwrite
        self.workers = max(1, workers)
        self.max_batch = max_batch
        self.progress = progress
        self.report = ConvertReport()
        self.total = 0
        self._lookahead = self.workers + 2 * (max_batch or 4)
        self._reads: collections.deque[tuple[ConvertJob, Future, int]] = collections.deque()
        self._writes: collections.deque[tuple[ConvertJob, Future]] = collections.deque()
        self._pool: ThreadPoolExecutor | None = None

    def record(self, path: Path, status: Status, reason: str = "") -> None:
        """Count one finished input and tell `progress`."""
        self.report.add(path, status, reason)
        if status is Status.FAILED:
            log.warning("%s: %s", path, reason)
        if self.progress is not None:
            self.progress(ConvertEvent(path, status, reason, self.report.done, self.total))

    def run(self, jobs: list[ConvertJob]) -> None:
        """Convert `jobs` (outputs that exist are replaced only with `overwrite`)."""
        queue = iter(small_first(jobs, self.translator.runs_tiled))  # big images wait, not small ones
        batch: list[tuple[ConvertJob, Prepared]] = []
        batch_key: tuple = ()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="translate-io") as pool:
            self._pool = pool
            self._fill(queue)
            while self._reads:
                job, future, _ = self._reads.popleft()
                try:
                    prepared = future.result()
                except Exception as e:  # carry on: report this file, convert the rest
                    log.debug("reading %s failed", job.src, exc_info=True)
                    self.record(job.src, Status.FAILED, _reason(e, job.src))
                    self._fill(queue)
                    continue
                self._fill(queue)
                exact = self.translator.wants_exact(prepared)
                key = (prepared.pixels.shape, exact)
                height, width = prepared.pixels.shape[:2]
                limit = self.max_batch or self.translator.max_batch(height, width)
                if batch and (key != batch_key or len(batch) >= limit):
                    self._flush(batch, batch_key[1])
                    batch = []
                batch, batch_key = batch + [(job, prepared)], key
                self._collect_writes(block=False)
            if batch:
                self._flush(batch, batch_key[1])
            self._collect_writes(block=True)
        self._pool = None

    def _fill(self, queue: collections.abc.Iterator[ConvertJob]) -> None:
        while len(self._reads) < self._lookahead and sum(r[2] for r in self._reads) < _PIXELS_AHEAD:
            job = next(queue, None)
            if job is None:
                return
            try:
                pixels = self._check_size(job.src) + (self._check_size(job.mask) if job.mask else 0)
            except TranslatorError as e:
                self.record(job.src, Status.FAILED, _reason(e, job.src))
                continue
            self._reads.append((job, self._pool.submit(self._read, job), pixels))

    def _check_size(self, path: Path) -> int:
        """Pixels of `path` by its header (0 when unknown: decoding then fails with the reason);
        a TranslatorError when the output would exceed the megapixel limit."""
        size = image_size(path)
        if size is None:
            return 0
        width, height = size
        scale = self.translator.scale
        megapixels = width * height * scale**2 / 1e6
        if megapixels > self.max_megapixels:
            enlarged = f" (x{scale}: {width * scale}x{height * scale} out)" if scale > 1 else ""
            raise TranslatorError(f"{path}: {width}x{height}{enlarged} is {megapixels:.4g} megapixels, over the "
                                  f"limit of {self.max_megapixels:.4g}; raise it with --max-megapixels")
        return width * height

    def _read(self, job: ConvertJob) -> Prepared:
        image = read_image(job.src)
        if job.mask is not None:
            image = self.translator.contract.task.with_mask(image, read_image(job.mask))
        prepared = self.translator.prepare(image)
        if not self.translator.runs_tiled(*prepared.pixels.shape[:2]):
            prepared.tensor  # noqa: B018 - make the float input here, on a worker thread
        return prepared

    def _flush(self, batch: list[tuple[ConvertJob, Prepared]], exact: bool) -> None:
        if len(batch) == 1 and self.translator.runs_tiled(*batch[0][1].pixels.shape[:2]):
            self._collect_writes(block=True)  # finish pending writes before holding large buffers
            self._convert_large(*batch[0])
            return
        try:
            outputs = self.translator.run_net(torch.stack([p.tensor for _, p in batch]), exact=exact)
        except Exception as e:
            log.debug("translating a batch failed", exc_info=True)
            for job, _ in batch:
                self.record(job.src, Status.FAILED, f"translation failed: {_reason(e, job.src)}")
            return
        for (job, prepared), output in zip(batch, outputs):
            self._writes.append((job, self._pool.submit(self._finish_and_write, job, [output], prepared)))
        if len(self._writes) > self._lookahead:
            self._collect_writes(block=True)

    def _convert_large(self, job: ConvertJob, prepared: Prepared) -> None:
        """An input that runs tiled, converted here from start to end: its tiles blend into bands
        finished straight into the output image, and the input is dropped before encoding."""
        try:
            image = self.translator.translate_prepared(prepared)
        except Exception as e:
            log.debug("translating %s failed", job.src, exc_info=True)
            self.record(job.src, Status.FAILED, f"translation failed: {_reason(e, job.src)}")
            return
        # An empty array, not a view: a view would keep the full-size input alive.
        prepared.pixels = np.empty((0, 0, prepared.pixels.shape[2]), prepared.pixels.dtype)
        try:
            self.record(job.src, self._write(job, image))
        except Exception as e:  # carry on: report this file, convert the rest
            log.debug("writing %s failed", job.dst, exc_info=True)
            self.record(job.src, Status.FAILED, _reason(e, job.dst))

    def _finish_and_write(self, job: ConvertJob, outputs: list[torch.Tensor], prepared: Prepared) -> Status:
        """Finish and write one net output; `outputs` holds it alone, so finishing frees it."""
        return self._write(job, self.translator.finish(outputs.pop(), prepared))

    def _write(self, job: ConvertJob, image: np.ndarray) -> Status:
        """Write one finished image (unless another process got there first)."""
        if job.dst.exists() and not self.overwrite:
            return Status.SKIPPED_EXISTING
        write_image(job.dst, fit_to_format(image, job.dst.suffix), in_place=True)  # the image is ours
        return Status.CONVERTED

    def _collect_writes(self, block: bool) -> None:
        while self._writes and (block or self._writes[0][1].done()):
            job, future = self._writes.popleft()
            try:
                self.record(job.src, future.result())
            except Exception as e:  # carry on: report this file, convert the rest
                log.debug("writing %s failed", job.dst, exc_info=True)
                self.record(job.src, Status.FAILED, _reason(e, job.dst))


def _remove_stale_temp_files(jobs: list[ConvertJob]) -> None:
    """Temp files a killed run left beside this run's outputs (only those: another shard may be
    writing its own outputs into the same folders right now)."""
    by_folder: dict[Path, set[str]] = collections.defaultdict(set)
    for job in jobs:
        by_folder[job.dst.parent].add(job.dst.name)
    removed = [p for folder, names in by_folder.items() for p in remove_stale_temp_files(folder, names=names)]
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted conversion", len(removed))


def convert_folder(
    translator: Translator,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    overwrite: bool = False,
    format: str | None = None,
    shard: tuple[int, int] | None = None,
    progress: Callable[[ConvertEvent], None] | None = None,
    workers: int = 2,
    max_batch: int | None = None,
    mask_dir: str | os.PathLike | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    video: VideoSettings | None = None,
) -> ConvertReport:
    """Convert an image file or a folder tree into `dst`, carrying on past bad files.

    Every file in the tree is an input; hidden files and folders (names starting with ".",
    such as our own temporary files) are left out, and so is `dst` when it lies inside `src`.
    Files that are not images (by suffix), unreadable or corrupt fail with a reason and the rest
    carry on. Existing outputs are kept (and count as done) unless `overwrite`, so a re-run resumes.
    Outputs are written atomically. `format` (png, jpg, ...) replaces the input's format;
    `shard=(i, N)` converts only the i-th of every N inputs. `workers` threads decode and encode
    while the net runs; same-size images are batched (at most `max_batch`, default from the
    memory budget). `progress` is called in this thread once per input. `mask_dir` (inpainting)
    holds a hole mask per input under the same relative path and name (any image suffix).
    An input whose output would exceed `max_megapixels` (read from its header, before decoding)
    fails with the limit named; large inputs within it run tiled with bounded memory. Videos
    (mp4, mov, mkv, webm, avi) become videos of the same name, encoded as `video` says.
    """
    start = time.perf_counter()
    jobs, failures = plan_conversion(src, dst, format=format, shard=shard)
    _remove_stale_temp_files(jobs)
    converter = FolderConverter(translator, overwrite=overwrite, workers=workers, max_batch=max_batch,
                                progress=progress, max_megapixels=max_megapixels)
    converter.total = len(jobs) + len(failures)
    for path, reason in failures:
        converter.record(path, Status.FAILED, reason)
    todo = []
    src_root = Path(src) if Path(src).is_dir() else Path(src).parent
    for job in jobs:
        if job.dst.exists() and not overwrite:
            converter.record(job.src, Status.SKIPPED_EXISTING)
            continue
        if mask_dir is not None:
            job = dataclasses.replace(job, mask=find_mask(Path(mask_dir), job.src.relative_to(src_root)))
            if job.mask is None:
                converter.record(job.src, Status.FAILED, f"no mask for it in {mask_dir}")
                continue
        todo.append(job)
    videos, todo = [j for j in todo if is_video(j.src)], [j for j in todo if not is_video(j.src)]
    if todo:
        converter.run(todo)
    if videos:
        from translate.inference.video import convert_video_jobs

        convert_video_jobs(converter, videos, video)
    converter.report.seconds = time.perf_counter() - start
    return converter.report
