"""Video parts of `translate convert` and `translate eval`: one video file with a progress bar in
frames, and the temporal warping error of a pair of videos."""
from __future__ import annotations

import argparse
from pathlib import Path


def video_settings(args: argparse.Namespace):
    """The VideoSettings a convert command line asks for (checked before the model loads)."""
    from translate.inference.video import VideoSettings

    given = {"crf": args.crf} if args.crf is not None else {}
    return VideoSettings(codec=args.codec, temporal=args.temporal, **given)


def convert_video_file(translator, args: argparse.Namespace, settings) -> int | None:
    """Convert INPUT when it is one video file (exit code), else None (images and folders)."""
    from tqdm import tqdm

    from translate.inference.video import convert_video
    from translate.inference.video_io import is_video

    src, dst = Path(args.input), Path(args.output)
    if not (src.is_file() and is_video(src)):
        return None
    if dst.is_dir() or not is_video(dst):
        dst = dst / src.name
    # tqdm shows frames done, frames/s and the time left; the encoder thread calls progress.
    with tqdm(unit="frame", desc="convert", disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.update(done - bar.n)

        report = convert_video(translator, src, dst, settings, overwrite=args.overwrite, progress=progress)
    print(report.summary())
    return 0


def eval_video_pair(args: argparse.Namespace) -> int | None:
    """`translate eval INPUT.mp4 OUTPUT.mp4`: E_warp of OUTPUT with flow from INPUT (and of INPUT
    itself, for scale), or None when the two are not videos."""
    from translate.inference.video import warping_error_of_videos
    from translate.inference.video_io import is_video

    if not (is_video(args.source) and is_video(args.data)):
        return None
    result = warping_error_of_videos(Path(args.source), Path(args.data))
    print(f"temporal warping error (Lai et al. 2018, x1e3, lower is steadier): {args.data}: "
          f"{result.output * 1e3:.4f}; input {args.source}: {result.input * 1e3:.4f} over {result.pairs} frame pair(s)")
    return 0
