"""Video clips made from real photos for the video tests and scripts/bench_video.py: a pan and zoom
over a scikit-image photo, with a sine tone as audio, written with PyAV."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from skimage import data


def pan_zoom(count: int, width: int, height: int, *, photo: str = "astronaut", noise: float = 0.0,
             seed: int = 0) -> Iterator[np.ndarray]:
    """`count` HxWx3 uint8 frames: a window that pans right and zooms in over the photo, plus
    Gaussian sensor noise of std `noise` (in 0-255 units) drawn afresh for each frame."""
    image = getattr(data, photo)()
    rng = np.random.default_rng(seed)
    side = min(image.shape[:2]) * 3 // 5
    for i in range(count):
        progress = i / max(count - 1, 1)
        size = int(side / (1 + 0.4 * progress))
        left = int((image.shape[1] - side) * 0.3 + 0.25 * side * progress)
        top = int((image.shape[0] - side) * 0.4)
        window = image[top : top + size, left : left + int(size * width / height)]
        frame = cv2.resize(window, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
        if noise:
            frame += rng.normal(0.0, noise, frame.shape).astype(np.float32)
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def write_clip(path: Path, frames: Sequence[np.ndarray] | Iterator[np.ndarray], *, durations_ms: Sequence[int] = (40,),
               codec: str = "libx264", pix_fmt: str = "yuv420p", rotation: int = 0, audio: str | None = "aac",
               crf: int = 12) -> list[Fraction]:
    """Write frames (HxWx3 uint8) as a video with millisecond timestamps (frame i lasts
    durations_ms[i % len]) and a 440 Hz tone; returns each frame's timestamp in seconds."""
    import av

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(path), "w")
    video = out.add_stream(codec, rate=Fraction(1000, durations_ms[0]), options={"crf": str(crf)} if codec == "libx264" else {})
    video.time_base = video.codec_context.time_base = Fraction(1, 1000)
    video.pix_fmt = pix_fmt
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream(audio, rate=16000) if audio else None
    times, pts = [], 0
    for i, image in enumerate(frames):
        if i == 0:
            video.height, video.width = image.shape[:2]
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
        frame.pts, frame.time_base = pts, Fraction(1, 1000)  # the stream's own may change once muxing starts
        out.mux(video.encode(frame))
        times.append(Fraction(pts, 1000))
        pts += durations_ms[i % len(durations_ms)]
    out.mux(video.encode())
    if sound is not None:
        samples = 16 * pts  # 16 kHz for the video's length
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)[None]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    out.close()
    return times
