"""Video conversion: decode -> batches of frames through a Translator -> (stabilise) -> encode,
streamed with bounded queues so memory does not grow with the video's length.

A decoder thread and an encoder thread overlap with the net, which runs in the calling thread.
Every frame keeps its timestamp and duration; rotation, colour tags and audio are carried over
(see `video_io`). The output is written to a hidden temporary file beside OUT and renamed at the
end, so an interrupted run never leaves a partial file at OUT.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.errors import TranslatorError
from translate.files import remove_stale_temp_files, temp_path_for
from translate.inference.temporal import TemporalStabilizer
from translate.inference.translator import Translator
from translate.inference.video_io import (
    Decoded, OutputNotes, VideoWriter, container_format, decode, open_input, resolve_codec,
)
from translate.tasks import Prepared

log = logging.getLogger(__name__)

DEFAULT_CRF = 18  # x264's "visually lossless" end of its scale; also the project's promise in the README
_DONE = object()


@dataclass(frozen=True)
class VideoSettings:
    """Runtime choices for video outputs: encoder (None: H.264, VP9 for .webm), CRF, and the
    temporal stabiliser's strength in [0, 1] (0 = off, frame by frame)."""

    codec: str | None = None
    crf: int = DEFAULT_CRF
    temporal: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 63:
            raise TranslatorError(f"--crf: must be from 0 to 63, got {self.crf}")
        if not 0.0 <= self.temporal <= 1.0:
            raise TranslatorError(f"--temporal: strength must be from 0 to 1, got {self.temporal}")


@dataclass
class VideoReport:
    """What `convert_video` did."""

    src: Path
    dst: Path
    frames: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        text = f"converted {self.src} -> {self.dst}: {self.frames} frame(s) in {self.seconds:.1f} s ({self.fps:.2f} frames/s)"
        return "; ".join([text, *self.notes])


# ---------------------------------------------------------------- threads
class _Worker(threading.Thread):
    """A thread whose exception is re-raised by `join_and_raise` in the caller."""

    def __init__(self, target: Callable[[], None], name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn, self.stop, self.error = target, stop, None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:  # handed to the calling thread
            self.error = e
            self.stop.set()  # the others would otherwise wait on this thread's queue forever

    def join_and_raise(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    """Put `item`, giving up once `stop` is set (the consumer may be gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _items(q: queue.Queue, stop: threading.Event, producer: _Worker) -> Iterator[Any]:
    """Items of `q` until the producer's end mark; its error is raised here."""
    while not stop.is_set():
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            if not producer.is_alive() and q.empty():
                producer.join_and_raise()
                return
            continue
        if item is _DONE:
            producer.join_and_raise()
            return
        yield item


# ---------------------------------------------------------------- the pipeline
class _Pipeline:
    """One video's conversion; see `convert_video`."""

    def __init__(self, translator: Translator, src: Path, tmp: Path, dst: Path, settings: VideoSettings,
                 progress: Callable[[int, int], None] | None) -> None:
        self.translator, self.src, self.progress = translator, src, progress
        encoder = resolve_codec(settings.codec, dst)
        self.container = open_input(src)
        self.video = self.container.streams.video[0]
        self.total = int(self.video.frames or 0)
        self.notes = OutputNotes()
        self.writer = VideoWriter(tmp, container_format(dst), list(self.container.streams.audio),
                                  encoder=encoder, crf=settings.crf, notes=self.notes)
        self.stabilizer = TemporalStabilizer(settings.temporal) if settings.temporal > 0 else None
        self.stop = threading.Event()
        self.decoded: queue.Queue = queue.Queue(maxsize=32)
        self.translated: queue.Queue = queue.Queue(maxsize=32)

    def run(self) -> int:
        reader = _Worker(self._read, "translate-video-decode", self.stop)
        writer = _Worker(self._write, "translate-video-encode", self.stop)
        reader.start()
        writer.start()
        try:
            self._translate(reader)
            _put(self.translated, _DONE, self.stop)
            writer.join_and_raise()
            reader.join_and_raise()
        finally:
            self.stop.set()
            reader.join()
            writer.join()
            self.container.close()
        return self.writer.frames

    def _read(self) -> None:
        for item in decode(self.container, self.src):
            _put(self.decoded, item, self.stop)
        _put(self.decoded, _DONE, self.stop)

    def _translate(self, reader: _Worker) -> None:
        """Batches same-size frames through the net (tiled frames go one at a time, as photos do)."""
        batch: list[tuple[Decoded, Prepared]] = []
        for item in _items(self.decoded, self.stop, reader):
            if not isinstance(item, Decoded):
                _put(self.translated, item, self.stop)  # an audio packet, for the writer
                continue
            prepared = self.translator.prepare(item.rgb)
            height, width = prepared.pixels.shape[:2]
            if self.translator.runs_tiled(height, width):
                self._flush(batch)
                batch = []
                _put(self.translated, (item, self.translator.translate_prepared(prepared)), self.stop)
                continue
            batch.append((item, prepared))
            if len(batch) >= self.translator.max_batch(height, width):
                self._flush(batch)
                batch = []
        self._flush(batch)

    def _flush(self, batch: list[tuple[Decoded, Prepared]]) -> None:
        if not batch:
            return
        exact = self.translator.wants_exact(batch[0][1])
        outputs = self.translator.run_net(torch.stack([p.tensor for _, p in batch]), exact=exact)
        for (item, prepared), output in zip(batch, outputs):
            _put(self.translated, (item, self.translator.finish(output, prepared)), self.stop)

    def _write(self) -> None:
        time_base, rate = self.video.time_base, self.video.average_rate or self.video.guessed_rate
        try:
            while not self.stop.is_set():
                try:
                    item = self.translated.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                if not isinstance(item, tuple):
                    self.writer.write_audio(item)
                    continue
                source, image = item
                if self.stabilizer is not None:
                    image = self.stabilizer(source.rgb, image)
                self.writer.write(image, source, time_base, rate)
                if self.progress is not None:
                    self.progress(self.writer.frames, self.total)
        finally:
            if self.stop.is_set() and self.writer.video is not None:
                self.writer.output.close()  # abandoned: the caller removes the file
            else:
                self.writer.close()


def convert_video(translator: Translator, src: str | os.PathLike, dst: str | os.PathLike,
                  settings: VideoSettings | None = None, *, overwrite: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> VideoReport:
    """Translate every frame of the video `src` into the video `dst` (written atomically).

    `progress(frames_done, frames_total)` is called from the encoder thread after each frame
    (total 0 when the container does not say). An existing `dst` is an error unless `overwrite`.
    """
    src, dst = Path(src), Path(dst)
    settings = settings or VideoSettings()
    if dst.exists() and not overwrite:
        raise TranslatorError(f"{dst}: already exists; pass --overwrite to replace it")
    container_format(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(dst.parent, names=[dst.name])
    start = time.perf_counter()
    tmp = temp_path_for(dst)
    try:
        pipeline = _Pipeline(translator, src, tmp, dst, settings, progress)
        frames = pipeline.run()
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    notes = list(pipeline.notes.lines)
    if settings.temporal:
        notes.append(f"temporal stabiliser at strength {settings.temporal:g}")
    return VideoReport(src, dst, frames, time.perf_counter() - start, notes)


# ---------------------------------------------------------------- folders and measurement
def convert_video_jobs(converter: Any, jobs: list[Any], settings: VideoSettings | None) -> None:
    """Convert the videos of a folder run (`folder.ConvertJob`s) one after another, recording each
    in `converter` (a `folder.FolderConverter`); a bad video fails alone, the rest carry on."""
    from translate.inference.folder import Status

    for job in jobs:
        try:
            report = convert_video(converter.translator, job.src, job.dst, settings,
                                   overwrite=converter.overwrite)
        except Exception as e:  # carry on: report this file, convert the rest
            log.debug("converting %s failed", job.src, exc_info=True)
            reason = str(e).split("\n")[0]
            converter.record(job.src, Status.FAILED, reason.removeprefix(f"{job.src}: "))
            continue
        log.info("%s", report.summary())
        converter.record(job.src, Status.CONVERTED)


@dataclass(frozen=True)
class VideoWarpingError:
    """E_warp (Lai et al. 2018, eq. 9) of an output video and of its input, flow from the input."""

    output: float
    input: float
    pairs: int


def warping_error_of_videos(input_path: Path, output_path: Path) -> VideoWarpingError:
    """Stream two videos frame by frame (same frame count) and measure both E_warp values."""
    from translate.metrics.temporal import WarpingErrorMeter

    of_output, of_input = WarpingErrorMeter(), WarpingErrorMeter()
    inputs, outputs = open_input(input_path), open_input(output_path)
    try:
        frames = (item for item in decode(inputs, input_path) if isinstance(item, Decoded))
        results = (item for item in decode(outputs, output_path) if isinstance(item, Decoded))
        for frame, result in zip(frames, results):
            of_output.add(frame.rgb, result.rgb)
            of_input.add(frame.rgb, frame.rgb)
        if next(frames, None) is not None or next(results, None) is not None:
            raise TranslatorError(f"{output_path}: has a different frame count from {input_path}")
    finally:
        inputs.close()
        outputs.close()
    return VideoWarpingError(of_output.error.value, of_input.error.value, of_output.error.pairs)
