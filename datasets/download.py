#!/usr/bin/env python3
"""Download a public pix2pix or CycleGAN dataset into the layout `translate train` reads.

    python datasets/download.py pix2pix facades          # -> data/pix2pix/facades/{train,val,test}/*.jpg
    python datasets/download.py cyclegan horse2zebra     # -> data/cyclegan/horse2zebra/{trainA,trainB,testA,testB}
    python datasets/download.py cyclegan horse2zebra --archive horse2zebra.zip   # offline: extract a copy
    python datasets/download.py --list

Standard library only. The archive is fetched to a hidden temporary file, checked, extracted into a
hidden temporary folder next to the destination and moved into place in one rename, so an
interrupted run never leaves a half-written dataset behind. An existing destination is never touched.
Cityscapes cannot be redistributed: see datasets/prepare_cityscapes.py.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

# The archives behind the reference repository's download scripts (junyanz/pytorch-CycleGAN-and-pix2pix).
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_URL = "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/{name}.zip"

# name -> what A and B hold. pix2pix archives are "aligned": each jpg is A|B side by side (A = left).
PIX2PIX: dict[str, str] = {
    "facades": "A = facade photo, B = label map (train with --direction b_to_a for labels -> photo)",
    "maps": "A = aerial photo, B = map",
    "edges2shoes": "A = edges, B = shoe photo",
    "edges2handbags": "A = edges, B = handbag photo",
    "night2day": "A = night, B = day",
    "cityscapes": "A = street photo, B = label map; not downloadable, see prepare_cityscapes.py",
}
CYCLEGAN: dict[str, str] = {
    "horse2zebra": "A = horses, B = zebras",
    "apple2orange": "A = apples, B = oranges",
    "summer2winter_yosemite": "A = Yosemite in summer, B = in winter",
    "monet2photo": "A = Monet paintings, B = photos",
    "cezanne2photo": "A = Cezanne paintings, B = photos",
    "ukiyoe2photo": "A = ukiyo-e prints, B = photos",
    "vangogh2photo": "A = Van Gogh paintings, B = photos",
    "iphone2dslr_flower": "A = iPhone flower photos, B = DSLR flower photos",
    "maps": "A = aerial photos, B = maps (unpaired copy)",
    "facades": "A = facade photos, B = label maps (unpaired copy)",
    "cityscapes": "A = street photos, B = label maps (unpaired copy)",
}
KINDS = {"pix2pix": PIX2PIX, "cyclegan": CYCLEGAN}
UNAVAILABLE = {
    ("pix2pix", "cityscapes"): "Cityscapes' licence forbids redistribution: download gtFine_trainvaltest.zip "
    "and leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com and run datasets/prepare_cityscapes.py",
}


class DownloadError(RuntimeError):
    """A dataset that cannot be fetched or unpacked; the message is one line naming the URL or file."""


def url_for(kind: str, name: str) -> str:
    if kind not in KINDS:
        raise DownloadError(f"kind: unknown {kind!r}; choose pix2pix or cyclegan")
    if name not in KINDS[kind]:
        raise DownloadError(f"{kind} dataset: unknown {name!r}; choose one of {', '.join(KINDS[kind])}")
    if (kind, name) in UNAVAILABLE:
        raise DownloadError(f"{kind} {name}: {UNAVAILABLE[(kind, name)]}")
    return (PIX2PIX_URL if kind == "pix2pix" else CYCLEGAN_URL).format(name=name)


def fetch(url: str, dest: Path, *, timeout_s: float = 30.0) -> None:
    """Download `url` to `dest` via a hidden temporary file in the same folder, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as f:
            expected = response.headers.get("Content-Length")
            shutil.copyfileobj(response, f, length=1 << 20)
        if expected is not None and tmp.stat().st_size != int(expected):
            raise DownloadError(f"{url}: download truncated ({tmp.stat().st_size} of {expected} bytes); run again")
        tmp.replace(dest)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: server answered HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"{url}: cannot download ({reason}); check the network, or fetch the file elsewhere and pass --archive FILE"
        ) from e
    finally:
        tmp.unlink(missing_ok=True)


def extract(archive: Path, kind: str, name: str, dest: Path) -> Path:
    """Unpack `archive` (the dataset's .tar.gz or .zip) so its `name/` folder becomes `dest`, atomically."""
    if dest.exists():
        raise DownloadError(f"{dest}: already exists; remove it or pick another --root")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", dir=dest.parent) as tmp:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    for member in z.namelist():
                        _check_member(archive, member)
                    z.extractall(tmp)
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as t:
                    members = t.getmembers()
                    for member in members:
                        _check_member(archive, member.name)
                        if not (member.isfile() or member.isdir()):
                            raise DownloadError(
                                f"{archive}: refusing to extract {member.name!r} (not a file or folder)"
                            )
                    # Python >= 3.12 (and security releases of 3.10/3.11) also vet members themselves.
                    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    t.extractall(tmp, members=members, **safe)
            else:
                raise DownloadError(f"{archive}: neither a zip nor a tar archive")
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
            raise DownloadError(f"{archive}: cannot extract ({e})") from e
        root = Path(tmp) / name
        if not root.is_dir():
            found = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
            raise DownloadError(f"{archive}: expected a top-level folder {name!r}, found {found}")
        _check_layout(archive, kind, root)
        root.replace(dest)
    return dest


def _check_member(archive: Path, member: str) -> None:
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise DownloadError(f"{archive}: refusing to extract {member!r} (outside the target folder)")


def _check_layout(archive: Path, kind: str, root: Path) -> None:
    needed = ("train",) if kind == "pix2pix" else ("trainA", "trainB")
    missing = [n for n in needed if not (root / n).is_dir()]
    if missing:
        raise DownloadError(f"{archive}: not a {kind} dataset, missing {', '.join(missing)}/ in {root.name}/")


def download(kind: str, name: str, *, root: Path, archive: Path | None = None, keep_archive: bool = False) -> Path:
    """Fetch (or take `archive`) and extract dataset `name` into root/kind/name; returns that folder."""
    url = url_for(kind, name)
    dest = root / kind / name
    if dest.exists():
        raise DownloadError(f"{dest}: already exists; remove it or pick another --root")
    if archive is not None:
        if not archive.is_file():
            raise DownloadError(f"{archive}: no such file")
        return extract(archive, kind, name, dest)
    fetched = root / kind / PurePosixPath(url).name
    fetch(url, fetched)
    try:
        return extract(fetched, kind, name, dest)
    finally:
        if not keep_archive:
            fetched.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", choices=sorted(KINDS), help="pix2pix (paired) or cyclegan (unpaired)")
    parser.add_argument("name", nargs="?", help="dataset name; --list shows them")
    parser.add_argument("--root", type=Path, default=Path("data"), help="datasets go to ROOT/KIND/NAME (default: data)")
    parser.add_argument("--archive", type=Path, help="extract this already downloaded archive instead of fetching")
    parser.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extracting")
    parser.add_argument("--list", action="store_true", help="list the datasets and exit")
    args = parser.parse_args(argv)
    if args.list:
        for kind, table in KINDS.items():
            for name, what in table.items():
                print(f"{kind:9} {name:24} {what}")
        return 0
    if not args.kind or not args.name:
        parser.error("give KIND and NAME (or --list)")
    try:
        dest = download(args.kind, args.name, root=args.root, archive=args.archive, keep_archive=args.keep_archive)
    except DownloadError as e:
        print(f"download.py: {e}", file=sys.stderr)
        return 1
    layout = "aligned A|B pairs" if args.kind == "pix2pix" else "unpaired trainA/trainB"
    print(f"{dest}: ready ({layout}); {KINDS[args.kind][args.name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
