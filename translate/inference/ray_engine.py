"""Folder conversion on Ray Data: the driver plans and lists existing outputs once, an actor pool
(one model per worker) converts batches of inputs with `FolderConverter` and writes each output
whole. Inputs and outputs are local paths or URIs (translate.inference.storage). Imports ray and
pyarrow inside the functions that need them."""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from translate.errors import TranslatorError, first_line
from translate.inference.folder import (
    DEFAULT_MAX_MEGAPIXELS, ConvertJob, ConvertReport, FolderConverter, Status, jobs_from_pairs, output_suffix,
    plan_conversion,
)
from translate.inference.options import InferenceOptions
from translate.inference.storage import Location, file_type, is_uri, list_tree, read_bytes, resolve, write_whole

log = logging.getLogger(__name__)

INSTALL_HINT = "--engine ray needs Ray Data and pyarrow: pip install 'translate[ray]'"
DEFAULT_BATCH_ROWS = 16  # inputs per Ray Data batch: enough to batch same-size images, small for retries


def require_ray() -> None:
    """A one-line TranslatorError naming the extra to install when Ray Data or pyarrow is missing."""
    try:
        import pyarrow.fs  # noqa: F401
        import ray.data  # noqa: F401
    except ModuleNotFoundError:
        raise TranslatorError(INSTALL_HINT) from None


# ---------------------------------------------------------------- the model, on every worker
@dataclass(frozen=True)
class ModelSource:
    """Where each worker loads the model from: `source` as `convert` takes it (a path every node
    can read, a published NAME, or a URI the worker downloads), or `shipped`, an object-store
    reference to the file's bytes (named `source`)."""

    source: str
    shipped: Any = None  # ray.ObjectRef of bytes

    def load(self, options: InferenceOptions, source_kwargs: dict, scratch: Path):
        """A Translator for this source; downloads or unpacks into `scratch` when needed."""
        from translate.inference.translator import Translator

        path = self.source
        if self.shipped is not None or is_uri(self.source):
            import ray

            data = ray.get(self.shipped) if self.shipped is not None else _read_uri(self.source)
            path = scratch / PurePosixPath(self.source.rstrip("/")).name
            path.write_bytes(data)
        return Translator.load(path, options, **source_kwargs)


def _read_uri(text: str) -> bytes:
    location = resolve(text)
    return read_bytes(location.fs, location.path)


def locate_model(source: str, *, ship: bool, joined: bool, weights_dir: str | os.PathLike = "weights") -> Path | None:
    """The local file or folder of `source` (a one-line error when it is missing here), or None
    when the workers find it themselves: a URI, or a path only the nodes of a joined cluster see."""
    from translate.checkpoint import resolve_checkpoint
    from translate.inference.loading import resolve_source

    if is_uri(source) or (joined and not ship):
        return None
    path = resolve_source(source, weights_dir)
    return resolve_checkpoint(path) if ship else path


def model_source(source: str, local: Path | None, *, ship: bool) -> ModelSource:
    """`source` for the workers; with `ship`, the `local` file is put into Ray's object store once,
    so nodes need not see the driver's disk (needs a Ray session)."""
    if local is None:
        return ModelSource(str(source))
    if not ship:
        return ModelSource(str(local))
    import ray

    return ModelSource(local.name, ray.put(local.read_bytes()))


class ConvertActor:
    """One Ray worker: loads the model once, then converts batches of rows {src, dst} (paths on the
    input and output file systems) into rows {src, status, reason}."""

    def __init__(self, model: ModelSource, options: InferenceOptions, source_kwargs: dict, src_fs: Any,
                 dst_fs: Any, overwrite: bool, max_batch: int | None, max_megapixels: float) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="translate-ray-"))
        self.translator = model.load(options, source_kwargs, self.scratch)
        self.src_fs, self.dst_fs = src_fs, dst_fs
        self.local = _is_local(src_fs) and _is_local(dst_fs)
        self.settings = {"overwrite": overwrite, "max_batch": max_batch, "max_megapixels": max_megapixels}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = list(zip(batch["src"].tolist(), batch["dst"].tolist()))
        results = self._convert_local(pairs) if self.local else self._convert_staged(pairs)
        keys = ("src", "status", "reason")
        return {key: np.array([row[i] for row in results], dtype=object) for i, key in enumerate(keys)}

    def _run(self, jobs: list[ConvertJob]) -> ConvertReport:
        converter = FolderConverter(self.translator, workers=2, **self.settings)
        converter.run(jobs)
        return converter.report

    def _convert_local(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        report = self._run([ConvertJob(Path(src), Path(dst)) for src, dst in pairs])
        return [(str(path), status, reason) for path, status, reason in _rows(report)]

    def _convert_staged(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """Download the batch into a scratch folder, convert it there, upload each output whole."""
        results: list[tuple[str, str, str]] = []
        with tempfile.TemporaryDirectory(dir=self.scratch) as folder:
            staged: dict[str, tuple[str, str]] = {}  # local input -> (src, dst)
            jobs = []
            for i, (src, dst) in enumerate(pairs):
                local_in = Path(folder, "in", f"{i}{PurePosixPath(src).suffix}")
                local_out = Path(folder, "out", f"{i}{PurePosixPath(dst).suffix}")
                try:
                    local_in.parent.mkdir(exist_ok=True)
                    local_in.write_bytes(read_bytes(self.src_fs, src))
                except OSError as e:
                    results.append((src, Status.FAILED.value, f"cannot read it ({first_line(e)})"))
                    continue
                staged[str(local_in)] = (src, dst)
                jobs.append(ConvertJob(local_in, local_out))
            Path(folder, "out").mkdir()
            outputs = {str(job.src): job.dst for job in jobs}
            for path, status, reason in _rows(self._run(jobs)):
                src, dst = staged[str(path)]
                if status == Status.CONVERTED.value:
                    status, reason = self._upload(outputs[str(path)], dst)
                results.append((src, status, reason))
        return results

    def _upload(self, local: Path, dst: str) -> tuple[str, str]:
        try:
            write_whole(self.dst_fs, dst, local.read_bytes())
        except OSError as e:
            return Status.FAILED.value, f"cannot write {dst} ({first_line(e)})"
        return Status.CONVERTED.value, ""


def _is_local(fs: Any) -> bool:
    from pyarrow.fs import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _rows(report: ConvertReport) -> Iterator[tuple[Path, str, str]]:
    """(input, status value, reason) for every input of `report`."""
    yield from ((path, Status.CONVERTED.value, "") for path in report.converted)
    yield from ((path, Status.SKIPPED_EXISTING.value, "") for path in report.skipped_existing)
    yield from ((path, Status.FAILED.value, reason) for path, reason in report.failed)


# ---------------------------------------------------------------- planning, on the driver
def plan(src: Location, dst: Location, format: str | None) -> tuple[list[ConvertJob], list[tuple[Any, str]]]:
    """(jobs, failures) as `plan_conversion` makes them, for local paths or object-store paths
    (PurePosixPaths, bucket first): the same tree mirroring, naming and refusals."""
    if src.local and dst.local:
        return plan_conversion(src.path, dst.path, format=format)
    suffix = output_suffix(format)
    kind = file_type(src)
    if kind == "missing":
        raise TranslatorError(f"{src.text}: no such file or folder")
    same_fs = type(src.fs) is type(dst.fs)
    if kind == "dir" and same_fs and src.path.rstrip("/") == dst.path.rstrip("/"):
        raise TranslatorError(f"{dst.text}: is the input folder itself; converting into it would replace "
                              "the photos, so choose another output folder (one inside it is fine)")
    if kind == "dir":
        inside = same_fs and (dst.path + "/").startswith(src.path + "/")
        skip = dst.path[len(src.path) + 1:] + "/" if inside else None
        names = [n for n in list_tree(src) if not _hidden(n) and not (skip and (n + "/").startswith(skip))]
        pairs = [(PurePosixPath(src.child(n)), PurePosixPath(dst.child(n))) for n in names]
    elif PurePosixPath(dst.path).suffix.lower() in _image_suffixes() and file_type(dst) != "dir":
        if suffix is not None and PurePosixPath(dst.path).suffix.lower() != suffix:
            raise TranslatorError(f"{dst.text}: output suffix contradicts format {suffix[1:]!r}")
        pairs, suffix = [(PurePosixPath(src.path), PurePosixPath(dst.path))], None
    else:
        pairs = [(PurePosixPath(src.path), PurePosixPath(dst.child(PurePosixPath(src.path).name)))]
    if suffix is not None:
        pairs = [(source, target.with_suffix(suffix)) for source, target in pairs]
    return jobs_from_pairs(pairs, key=str)  # object-store keys are case-sensitive and have no links


def _image_suffixes() -> frozenset[str]:
    from translate.data.images import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def _hidden(name: str) -> bool:
    """Names starting with "." anywhere in the path are left out, as `walk_files` leaves them."""
    return any(part.startswith(".") for part in name.split("/"))


def existing_outputs(dst: Location) -> set[str]:
    """Every file below `dst` (or `dst` itself), from one listing: outputs a run need not redo."""
    if file_type(dst) == "file":
        return {dst.path}
    return {dst.child(name) for name in list_tree(dst)}


# ---------------------------------------------------------------- the run
@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Ray for one run: the session already open in this process, the cluster at `address`, or
    a local Ray started here and stopped after it."""
    import ray

    if ray.is_initialized():
        yield
        return
    started = time.perf_counter()
    try:
        ray.init(address=address, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise TranslatorError(f"--ray-address {address}: cannot join this Ray cluster ({first_line(e)})") from None
    log.info("Ray up in %.1f s", time.perf_counter() - started)
    try:
        yield
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class RaySettings:
    """How the Ray run is laid out: `workers` actors, each with `gpus_per_worker` GPUs and
    `cpus_per_worker` CPUs (torch uses that many threads), `batch_rows` inputs per Ray Data batch."""

    address: str | None = None
    workers: int = 2
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_rows: int = DEFAULT_BATCH_ROWS
    ship_model: bool | None = None  # None: ship a local model file when joining a cluster

    def __post_init__(self) -> None:
        for flag, value in (("--workers", self.workers), ("--batch-size", self.batch_rows)):
            if value < 1:
                raise TranslatorError(f"{flag}: must be at least 1, got {value}")
        if self.gpus_per_worker < 0:
            raise TranslatorError(f"--gpus-per-worker: must be 0 or more, got {self.gpus_per_worker}")
        if not self.cpus_per_worker > 0:
            raise TranslatorError(f"--cpus-per-worker: must be positive, got {self.cpus_per_worker}")


def convert_with_ray(source: str, src: str, dst: str, *, options: InferenceOptions | None = None,
                     source_kwargs: dict | None = None, settings: RaySettings | None = None,
                     overwrite: bool = False, format: str | None = None, max_batch: int | None = None,
                     max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> ConvertReport:
    """Convert `src` (a file or a tree, local path or URI) into `dst` like `convert_folder`, on Ray.

    Inputs are listed as `src` locations (URIs for object stores); existing outputs are listed once
    up front and kept unless `overwrite`, so a rerun after an interrupted one converts what is missing.
    """
    require_ray()
    settings = settings or RaySettings()
    start = time.perf_counter()
    src_loc, dst_loc = resolve(src), resolve(dst)
    jobs, failures = plan(src_loc, dst_loc, format)
    report = ConvertReport()
    for path, reason in failures:
        report.add(src_loc.shown(str(path)), Status.FAILED, reason)
    existing = set() if overwrite else existing_outputs(dst_loc)
    rows = []
    for job in jobs:
        if str(job.dst) in existing:
            report.add(src_loc.shown(str(job.src)), Status.SKIPPED_EXISTING)
        else:
            rows.append({"src": str(job.src), "dst": str(job.dst)})
    if rows:
        joined = settings.address is not None
        ship = settings.ship_model if settings.ship_model is not None else joined
        weights_dir = (source_kwargs or {}).get("weights_dir", "weights")
        local = locate_model(source, ship=ship, joined=joined, weights_dir=weights_dir)
        with ray_session(settings.address):
            model = model_source(source, local, ship=ship)
            actor_args = {"model": model, "options": options or InferenceOptions(), "src_fs": src_loc.fs,
                          "source_kwargs": source_kwargs or {}, "dst_fs": dst_loc.fs, "overwrite": overwrite,
                          "max_batch": max_batch, "max_megapixels": max_megapixels}
            for path, status, reason in _run_pool(rows, actor_args, settings):
                report.add(src_loc.shown(path), Status(status), reason)
    report.seconds = time.perf_counter() - start
    return report


def _run_pool(rows: list[dict], actor_args: dict, settings: RaySettings) -> Iterator[tuple[str, str, str]]:
    """(src, status, reason) per row, from an actor pool of `settings.workers` ConvertActors.
    Killed actors restart and their batches run again (outputs are written whole, so a batch that
    ran half-way leaves whole outputs only, which the rerun replaces with identical ones)."""
    import ray.data

    dataset = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // settings.batch_rows)))
    converted = dataset.map_batches(
        ConvertActor, fn_constructor_kwargs=actor_args, batch_size=settings.batch_rows, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=settings.workers), num_gpus=settings.gpus_per_worker,
        num_cpus=settings.cpus_per_worker)  # Ray Data's actors restart and retry batches by default
    try:
        for batch in converted.iter_batches(batch_size=None, batch_format="numpy"):
            yield from zip(batch["src"].tolist(), batch["status"].tolist(), batch["reason"].tolist())
    except ray.exceptions.RayError as e:  # e.g. a worker could not load the model: say why in one line
        cause = getattr(e, "cause", None) or e
        raise TranslatorError(f"ray: {first_line(cause)}") from None
