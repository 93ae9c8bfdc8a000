"""Video files through PyAV: what a stream holds (size, timing, rotation, colour), decoding frames to
RGB arrays, and an output file that keeps timestamps, rotation, colour tags and audio.

Frames cross this module as HxWx3 RGB numpy arrays: uint8 for 8-bit video, uint16 (full 16-bit
range) for deeper video. PyAV is imported inside functions: it is the optional `[video]` extra.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from translate.errors import ImageError, TranslatorError, first_line

log = logging.getLogger(__name__)

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi"})
_CONTAINER = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
# The video codec a container gets when --codec is not given (WebM holds only VP8/VP9/AV1).
_DEFAULT_CODEC = {".webm": "libvpx-vp9"}
_CODEC_ALIASES = {"h264": "libx264", "hevc": "libx265", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
# Audio codecs each container can hold as they are (copied without re-encoding); None: any codec.
_AUDIO_COPYABLE: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}),
    "mov": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"}),
    "matroska": None,
    "webm": frozenset({"opus", "vorbis"}),
    "avi": frozenset({"mp3", "ac3", "aac", "pcm_s16le", "pcm_u8"}),
}
# FFmpeg's AVColorSpace tags -> swscale's matrix numbers (SWS_CS_*); BT.601's two tags share one matrix.
_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_MATRIX_NAME = {1: "BT.709", 4: "FCC", 5: "BT.601", 7: "SMPTE 240M", 9: "BT.2020"}
_BT709, _BT601_TAG = 1, 6
_LIMITED, _FULL = 1, 2  # AVColorRange: MPEG (16-235), JPEG (0-255)
# How far a file's last packet may end before its declared duration (rounding of the header's
# millisecond duration, a last audio packet's padding) before the file counts as truncated.
TRUNCATION_SLACK_S = Fraction(1, 4)
_CRF_ENCODERS = frozenset({"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libsvtav1"})


def require_av() -> Any:
    """The `av` module, or a TranslatorError saying how to install it."""
    try:
        import av
    except ModuleNotFoundError:
        raise TranslatorError("video needs PyAV: pip install 'translate[video]'") from None
    return av


def is_video(path: str | Path) -> bool:
    """Whether `path` names a video by its suffix (mp4, mov, mkv, webm, avi)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def container_format(path: Path) -> str:
    """FFmpeg's muxer name for an output path (from its suffix)."""
    try:
        return _CONTAINER[path.suffix.lower()]
    except KeyError:
        raise TranslatorError(f"{path}: a video output must end in {', '.join(sorted(_CONTAINER))}") from None


@dataclass(frozen=True)
class Colour:
    """How a stream's YUV maps to RGB: swscale matrix number, range (1 limited, 2 full), and the
    AVColorSpace tag written to the output."""

    matrix: int
    range: int
    tag: int
    primaries: int = 2  # AVColorPrimaries / AVColorTransferCharacteristic, copied as tags (2: unspecified)
    transfer: int = 2

    def describe(self) -> str:
        return f"{_MATRIX_NAME[self.matrix]} {'full' if self.range == _FULL else 'limited'} range"


def colour_of(frame: Any) -> Colour:
    """The colour matrix and range a decoded frame says it uses. Untagged video follows what
    players do: BT.709 from 720 lines up, BT.601 below; limited range unless a yuvj format."""
    tag = int(frame.colorspace)
    if tag not in _MATRIX:
        tag = _BT709 if frame.height >= 720 else _BT601_TAG
    value_range = int(frame.color_range)
    if value_range not in (_LIMITED, _FULL):
        value_range = _FULL if frame.format.name.startswith("yuvj") else _LIMITED
    return Colour(_MATRIX[tag], value_range, tag, int(frame.color_primaries), int(frame.color_trc))


def _reason(error: Exception) -> str:
    """FFmpeg's words for an error, without the errno and file name PyAV adds around them."""
    return getattr(error, "strerror", None) or first_line(error)


def bit_depth(frame: Any) -> int:
    return max(c.bits for c in frame.format.components)


def frame_to_rgb(frame: Any, colour: Colour) -> np.ndarray:
    """A decoded frame as HxWx3 RGB (uint8, or uint16 for deeper video), by the stream's own matrix."""
    deep = bit_depth(frame) > 8
    rgb = frame.reformat(format="rgb48le" if deep else "rgb24", src_colorspace=colour.matrix,
                         src_color_range=colour.range, dst_color_range=_FULL)
    return rgb.to_ndarray()


def open_input(path: Path) -> Any:
    """An opened input container with a video stream; ImageError naming the file otherwise."""
    av = require_av()
    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise ImageError(f"{path}: video holds no frames (the file ends before its first one)") from None
    except (av.error.FFmpegError, OSError) as e:
        raise ImageError(f"{path}: cannot read as video ({_reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise ImageError(f"{path}: has no video stream")
    return container


@dataclass
class Decoded:
    """One decoded frame: RGB pixels, its timestamp and duration in the stream's time base."""

    rgb: np.ndarray
    pts: int
    duration: int
    rotation: int
    colour: Colour


def decode(container: Any, path: Path) -> Iterator[Decoded | Any]:
    """Decoded video frames (Decoded, in presentation order) and audio packets (av.Packet, as
    demuxed) of an opened input. ImageError for corrupt, truncated or frameless video."""
    av = require_av()
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    expected = video.frames
    count, last_pts, end = 0, None, Fraction(0)
    try:
        for packet in container.demux(video, *container.streams.audio):
            if packet.pts is not None:
                end = max(end, (packet.pts + (packet.duration or 0)) * packet.time_base)
            if packet.stream.type == "audio":
                if packet.size:
                    yield packet
                continue
            for frame in packet.decode():
                pts = frame.pts if frame.pts is not None else (last_pts + 1 if last_pts is not None else 0)
                pts = pts if last_pts is None or pts > last_pts else last_pts + 1  # encoders need rising pts
                colour = colour_of(frame)
                yield Decoded(frame_to_rgb(frame, colour), pts, int(frame.duration or 0), int(frame.rotation or 0), colour)
                count, last_pts = count + 1, pts
    except av.error.FFmpegError as e:
        raise ImageError(f"{path}: corrupt video after {count} frame(s) ({_reason(e)})") from None
    if count == 0:
        raise ImageError(f"{path}: video holds no frames")
    if expected and count < expected:
        raise ImageError(f"{path}: truncated video: {count} of {expected} frame(s) decodable")
    declared = _declared_seconds(container)
    if not expected and declared and end < declared - TRUNCATION_SLACK_S:
        # Matroska/WebM declare no frame count, but their header keeps the duration they were written with.
        raise ImageError(f"{path}: truncated video: its streams end at {float(end):.2f} s of the "
                         f"{float(declared):.2f} s its header declares ({count} frame(s) decodable)")


def _declared_seconds(container: Any) -> Fraction | None:
    """The duration a container's header declares, in seconds from its start; None if it declares none."""
    if not container.duration:
        return None
    return Fraction(container.duration - (container.start_time or 0), 1_000_000)  # AV_TIME_BASE units


# ---------------------------------------------------------------- writing
def resolve_codec(codec: str | None, path: Path) -> str:
    """The FFmpeg encoder for `codec` (h264, hevc, vp9, av1 or an encoder name) into `path`."""
    av = require_av()
    name = _CODEC_ALIASES.get((codec or "").lower(), codec) or _DEFAULT_CODEC.get(path.suffix.lower(), "libx264")
    if name not in av.codecs_available:
        raise TranslatorError(f"--codec {codec}: no such encoder in this PyAV build (try h264, hevc, vp9, av1)")
    return name


def even_size_rule(pix_fmt: str, height: int, width: int) -> tuple[int, int]:
    """The frame size a pixel format can hold: with subsampled chroma (4:2:0, 4:2:2) an odd side
    loses its last row or column, the one rule for every codec (as FFmpeg's trunc(iw/2)*2)."""
    av = require_av()
    components = av.VideoFormat(pix_fmt, 4, 4).components
    step_x = 4 // max(1, min(c.width for c in components))
    step_y = 4 // max(1, min(c.height for c in components))
    return height - height % step_y, width - width % step_x


def pick_pix_fmt(encoder: str, deep: bool) -> tuple[str, bool]:
    """(pixel format, whether bits were reduced): 4:2:0, 10-bit when the input is and the encoder can."""
    av = require_av()
    formats = [f.name for f in av.codec.Codec(encoder, "w").video_formats or ()]
    if deep and "yuv420p10le" in formats:
        return "yuv420p10le", False
    for name in ("yuv420p", "rgb24"):  # rgb24: RGB encoders such as libx264rgb (lossless at --crf 0)
        if name in formats or not formats:
            return name, deep
    return formats[0], deep


@dataclass
class OutputNotes:
    """What the output could not keep as it was, for the summary."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        if line not in self.lines:
            log.warning("%s", line)
            self.lines.append(line)


class VideoWriter:
    """An output file opened at its first frame (whose size the net decides): one video stream with
    the input's time base, rotation and colour tags, and each input audio stream copied (re-encoded
    when the container cannot hold its codec). Used by one thread; `close` finishes the file."""

    def __init__(self, path: Path, format: str, audio_streams: list[Any], *, encoder: str, crf: int,
                 notes: OutputNotes) -> None:
        av = require_av()
        self.output = av.open(str(path), "w", format=format)
        self.encoder, self.crf, self.notes = encoder, crf, notes
        self.audio_in = audio_streams
        self.video: Any = None
        self.audio_out: dict[int, tuple[Any, bool]] = {}  # input stream index -> (output stream, copied)
        self.waiting: list[Any] = []  # audio packets demuxed before the first frame
        self.frames = 0

    def _open(self, first: np.ndarray, source: Decoded, time_base: Fraction, rate: Fraction | None) -> None:
        av = require_av()
        deep = first.dtype == np.uint16
        pix_fmt, reduced = pick_pix_fmt(self.encoder, deep)
        if reduced:
            self.notes.add(f"{self.encoder} cannot store more than 8 bits per sample here: 10-bit video reduced to 8 bits")
        height, width = even_size_rule(pix_fmt, *first.shape[:2])
        if (height, width) != first.shape[:2]:
            self.notes.add(f"{pix_fmt} needs even sides: {first.shape[1]}x{first.shape[0]} cropped to {width}x{height} "
                           "(last column/row dropped)")
        options = {"crf": str(self.crf)} if self.encoder in _CRF_ENCODERS else {}
        if self.encoder == "libvpx-vp9":
            options["b"] = "0"  # constant quality: VP9's CRF needs a zero target bit rate
        video = self.output.add_stream(self.encoder, rate=rate, options=options)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base  # no rounding of any pts
        if not av.VideoFormat(pix_fmt).is_rgb:  # RGB encoders store no matrix
            video.codec_context.colorspace, video.codec_context.color_range = source.colour.tag, source.colour.range
        video.codec_context.color_primaries, video.codec_context.color_trc = source.colour.primaries, source.colour.transfer
        if source.rotation:
            video.set_display_rotation(source.rotation)
        self.video, self.size, self.colour = video, (height, width), source.colour
        for stream in self.audio_in:
            self._add_audio(stream)
        for packet in self.waiting:
            self.write_audio(packet)
        self.waiting = []

    def _add_audio(self, stream: Any) -> None:
        allowed = _AUDIO_COPYABLE.get(self.output.format.name.split(",")[0])
        name = stream.codec_context.name
        if allowed is None or name in allowed:
            self.audio_out[stream.index] = (self.output.add_stream_from_template(stream), True)
            return
        target = "libopus" if self.output.format.name == "webm" else "aac"
        out = self.output.add_stream(target, rate=48000 if target == "libopus" else stream.codec_context.sample_rate)
        out.layout = stream.codec_context.layout
        self.audio_out[stream.index] = (out, False)
        self.notes.add(f"audio stream {stream.index} ({name}) cannot go into {self.output.format.name} "
                       f"as it is: re-encoded to {target}")

    def write_audio(self, packet: Any) -> None:
        """Mux one demuxed audio packet (copied, or decoded and re-encoded)."""
        if self.video is None:
            self.waiting.append(packet)
            return
        out, copied = self.audio_out[packet.stream.index]
        if copied:
            packet.stream = out
            self.output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers samples itself
            self.output.mux(out.encode(frame))

    def write(self, image: np.ndarray, source: Decoded, time_base: Fraction, rate: Fraction | None) -> None:
        """Encode one output frame (HxWxC uint8/uint16 RGB or gray) at the source frame's timestamp."""
        av = require_av()
        if image.ndim == 2 or image.shape[2] == 1:
            image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
        if self.video is None:
            self._open(image, source, time_base, rate)
        height, width = self.size
        image = np.ascontiguousarray(image[:height, :width, :3])
        frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if image.dtype == np.uint16 else "rgb24")
        frame = frame.reformat(format=self.video.pix_fmt, dst_colorspace=self.colour.matrix,
                               dst_color_range=self.colour.range)
        frame.pts, frame.time_base = source.pts, time_base
        if source.duration:
            frame.duration = source.duration
        self.output.mux(self.video.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoders and write the file's index."""
        if self.video is not None:
            self.output.mux(self.video.encode())
            for out, copied in self.audio_out.values():
                if not copied:
                    self.output.mux(out.encode())
        self.output.close()
