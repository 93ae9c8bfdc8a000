"""Video conversion on clips made from real photos: frames, timestamps, audio, rotation, colour,
sizes, bad files, interruption, memory, and each frame against the Translator."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from translate.checkpoint import save_checkpoint  # noqa: E402
from translate.cli import main  # noqa: E402
from translate.data.images import write_image  # noqa: E402
from translate.errors import TranslateError  # noqa: E402
from translate.inference.translator import Translator  # noqa: E402
from translate.inference.video import VideoSettings, convert_video  # noqa: E402
from translate.inference.video_io import frame_to_rgb, colour_of  # noqa: E402
from translate.metrics import psnr  # noqa: E402
from translate.nets import ResnetSpec, SrvggCompactSpec, build_net, spec_to_dict  # noqa: E402

from video_clips import pan_zoom, write_clip  # noqa: E402

SPEC = ResnetSpec(base_channels=4, n_blocks=1)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """64x48 frames: a second intra-op thread only adds synchronisation, which on a busy machine costs
    ~100 ms per net call (measured: 300 frames in 42 s with 2 threads, 1.2 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def translator() -> Translator:
    torch.manual_seed(0)
    return Translator.from_net(build_net(SPEC), SPEC, device="cpu", precision="fp32")


def clip(path: Path, count: int = 12, width: int = 64, height: int = 48, **kwargs) -> list[Fraction]:
    return write_clip(path, list(pan_zoom(count, width, height)), **kwargs)


def decoded(path: Path) -> tuple[list[np.ndarray], list[Fraction], object]:
    """(RGB frames, timestamps in seconds, video stream) of a file, by its own colour tags."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame_to_rgb(frame, colour_of(frame)))
            times.append(frame.pts * frame.time_base)
        return frames, times, (stream.codec_context.colorspace, stream.codec_context.color_range,
                               stream.codec_context.pix_fmt, frame.rotation, container.duration)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def test_frames_timestamps_duration_audio_and_pixels_are_kept(tmp_path, translator):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    times = clip(src)
    report = convert_video(translator, src, dst)
    frames, out_times, (space, value_range, pix_fmt, _, duration) = decoded(dst)
    inputs, in_times, (*_, in_duration) = decoded(src)
    assert report.frames == len(frames) == len(times) == 12
    assert out_times == in_times == times
    assert duration == in_duration
    assert audio_packets(dst) == audio_packets(src)  # copied, byte for byte
    assert (space, value_range, pix_fmt) == (6, 1, "yuv420p")  # untagged 48-line input: BT.601, limited
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_each_frame_equals_the_translator_on_the_decoded_frame(tmp_path, translator):
    """Batched, threaded conversion gives the Translator's own frames. The random tiny net's output is
    pixel noise, which 4:2:0 chroma cannot hold, so this encodes losslessly in RGB (libx264rgb, CRF 0):
    what remains is the RGB -> codec -> RGB round trip."""
    src, dst = tmp_path / "clip.mp4", tmp_path / "out.mkv"
    clip(src, count=20)
    convert_video(translator, src, dst, VideoSettings(codec="libx264rgb", crf=0))
    inputs, results = decoded(src)[0], decoded(dst)[0]
    assert len(results) == len(inputs) == 20
    for frame, result in zip(inputs, results):
        assert psnr(result, translator(frame), data_range=255) >= 40.0


def test_vfr_rotation_and_colour_tags_survive(tmp_path, translator):
    src, dst = tmp_path / "vfr.mkv", tmp_path / "out.mkv"
    times = clip(src, durations_ms=(20, 60, 33), rotation=90)
    convert_video(translator, src, dst)
    _, out_times, (*_, rotation, _) = decoded(dst)
    assert out_times == times and len(set(np.diff(out_times))) == 3
    assert rotation == 90


def test_odd_size_drops_last_row_and_column_and_sr_doubles(tmp_path):
    src = tmp_path / "odd.mp4"
    clip(src, count=4, width=65, height=49, pix_fmt="yuv444p")
    torch.manual_seed(0)
    spec = SrvggCompactSpec(base_channels=4, n_convs=1, upscale=2)
    sr = Translator.from_net(build_net(spec), spec, device="cpu", precision="fp32")
    assert decoded(tmp_path / convert_video(sr, src, tmp_path / "x2.mp4").dst.name)[0][0].shape == (98, 130, 3)
    plain = Translator.from_net(build_net(SPEC), SPEC, device="cpu", precision="fp32")
    report = convert_video(plain, src, tmp_path / "x1.mp4")
    assert decoded(report.dst)[0][0].shape == (48, 64, 3)
    assert any("cropped to 64x48" in note for note in report.notes)


def test_ten_bit_kept_by_x264_and_reduced_with_a_note_by_vp9_with_audio_re_encoded(tmp_path, translator):
    src = tmp_path / "deep.mov"
    clip(src, count=4, pix_fmt="yuv420p10le")
    kept = convert_video(translator, src, tmp_path / "deep_out.mov")
    assert decoded(kept.dst)[2][2] == "yuv420p10le" and not kept.notes
    assert decoded(kept.dst)[0][0].dtype == np.uint16
    webm = convert_video(translator, src, tmp_path / "deep_out.webm", VideoSettings(codec="vp9", crf=30))
    assert decoded(webm.dst)[2][2] == "yuv420p"
    assert any("reduced to 8 bits" in n for n in webm.notes) and any("re-encoded to libopus" in n for n in webm.notes)


def test_interrupted_conversion_leaves_no_file(tmp_path, translator):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out" / "out.mp4"
    clip(src, count=20)

    def interrupt(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_video(translator, src, dst, progress=interrupt)
    assert list(dst.parent.iterdir()) == []


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "run" / "checkpoints" / "latest.pt"
    save_checkpoint(path, {"config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
                           "specs": {"g_ab": spec_to_dict(SPEC)}, "nets": {"g_ab": build_net(SPEC).state_dict()},
                           "step": 0, "epoch": 0})
    return tmp_path / "run"


def test_folder_of_videos_and_photos_reports_bad_videos_and_converts_the_rest(tmp_path, checkpoint, capsys):
    root = tmp_path / "in"
    clip(root / "a_good.mp4", count=6)
    good = (root / "a_good.mp4").read_bytes()
    (root / "b_truncated.mp4").write_bytes(good[: len(good) // 2])
    for suffix, codec in ((".mkv", "libx264"), (".webm", "libvpx-vp9")):  # no frame count: the header's duration tells
        clip(root / f"b_cut{suffix}", count=24, codec=codec, audio=None if suffix == ".webm" else "aac")
        whole = (root / f"b_cut{suffix}").read_bytes()
        (root / f"b_cut{suffix}").write_bytes(whole[: len(whole) // 2])
    (root / "c_garbage.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(200))
    clip(root / "sub" / "d_next.mkv", count=5)
    with av.open(str(root / "e_no_frames.mkv"), "w") as out:  # a video stream holding no frame
        empty = out.add_stream("libx264", rate=25)
        empty.width, empty.height, empty.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    write_image(root / "photo.png", next(pan_zoom(1, 64, 48)))
    with av.open(str(root / "f_sound_only.m4a.mp4"), "w") as out:  # audio, no video stream
        sound = out.add_stream("aac", rate=16000)
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt", layout="mono")
        tone.sample_rate = 16000
        out.mux(sound.encode(tone))
        out.mux(sound.encode())
    out = tmp_path / "out"
    code = main(["convert", str(checkpoint), str(root), str(out), "--device", "cpu", "--precision", "fp32"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a_good.mp4", "photo.png", "sub",
                                                                             "sub/d_next.mkv"]
    assert len(decoded(out / "sub" / "d_next.mkv")[0]) == 5
    failed = [line for line in captured.err.splitlines() if line.startswith("failed: ")]
    assert [line.split(":")[1].strip().rsplit("/", 1)[-1] for line in failed] == [
        "b_cut.mkv", "b_cut.webm", "b_truncated.mp4", "c_garbage.webm", "e_no_frames.mkv", "f_sound_only.m4a.mp4"]
    assert "has no video stream" in captured.err and "holds no frames" in captured.err
    assert captured.err.count("s its header declares") == 2


def test_cli_converts_one_video_and_eval_measures_flicker(tmp_path, checkpoint, capsys):
    src = tmp_path / "clip.mov"
    clip(src, count=6)
    assert main(["convert", str(checkpoint), str(src), str(tmp_path / "out.mov"), "--device", "cpu",
                 "--temporal", "0.5", "--crf", "20"]) == 0
    assert "6 frame(s)" in capsys.readouterr().out
    assert main(["eval", str(src), str(tmp_path / "out.mov")]) == 0
    assert "temporal warping error" in capsys.readouterr().out
    assert main(["convert", str(checkpoint), str(src), str(tmp_path / "x.mov"), "--temporal", "2"]) == 2
    assert "--temporal" in capsys.readouterr().err


def test_missing_pyav_is_one_line_saying_how_to_install(tmp_path, translator, monkeypatch):
    src = tmp_path / "clip.mp4"
    clip(src, count=2)
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(TranslateError, match=r"pip install 'translate\[video\]'"):
        convert_video(translator, src, tmp_path / "out.mp4")


_MEASURE = textwrap.dedent("""
    import resource, sys, torch
    torch.set_num_threads(1)  # see one_torch_thread
    from translate.inference.translator import Translator
    from translate.inference.video import convert_video
    from translate.nets import ResnetSpec, build_net
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    translator = Translator.from_net(build_net(spec), spec, device="cpu", precision="fp32")
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    convert_video(translator, sys.argv[1], sys.argv[3] + "/warm.mp4")  # warm-up: libraries, threads, pools
    before = peak()
    for name in sys.argv[1:3]:  # the short clip first: the long one must not raise the peak it set
        convert_video(translator, name, sys.argv[3] + "/" + name.rsplit("/", 1)[-1])
        print(peak() - before)
""")


@pytest.mark.slow
def test_memory_does_not_grow_with_length(tmp_path):
    """Peak RSS growth of a 600-frame clip within 10 % of a 60-frame clip's (one fresh process)."""
    short, long = tmp_path / "c60.mp4", tmp_path / "c600.mp4"
    write_clip(short, pan_zoom(60, 64, 48))
    write_clip(long, pan_zoom(600, 64, 48))
    (tmp_path / "out").mkdir()
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(short), str(long), str(tmp_path / "out")],
                            capture_output=True, text=True, check=True)
    growth_short, growth_long = (int(line) for line in result.stdout.split())
    assert len(decoded(tmp_path / "out" / "c600.mp4")[0]) == 600
    # 1 MiB on top: the allocator's grain, when both growths are a few hundred KiB.
    assert growth_long <= growth_short * 1.1 + 1024, (growth_short, growth_long)
