"""`translate plugin install krita` / `translate plugin uninstall krita`: copy the Krita plug-in
(plugins/krita) into Krita's resource folder and enable it in kritarc, or take it out again."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

PACKAGE = "translate_krita"  # the pykrita package; kritarc's switch is enable_<package>
DESKTOP = f"{PACKAGE}.desktop"
EDITORS = ("krita",)


def _add_plugin(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugin", help="install or uninstall the photo-editor plug-in (Krita)",
                       description="install: copy the Krita plug-in into Krita's resource folder (pykrita/) and "
                                   "enable it in kritarc; running it again updates it in place. uninstall: "
                                   "remove it. Restart Krita afterwards; the docker is under Settings > Dockers.")
    p.add_argument("action", choices=["install", "uninstall"])
    p.add_argument("editor", choices=EDITORS)
    p.add_argument("--dir", help="Krita's resource folder (default: this system's, e.g. ~/.local/share/krita)")
    p.add_argument("--kritarc", help="Krita's settings file (default: this system's, e.g. ~/.config/kritarc)")
    p.set_defaults(func=_cmd_plugin)


def _user_folder(platform: str, env: dict[str, str] | None, *, windows: tuple[str, str], macos: str,
                 linux: tuple[str, str]) -> Path:
    """A per-user folder: Windows' `windows` (variable, fallback under home), macOS's
    ~/Library/`macos`, or the XDG `linux` (variable, fallback under home)."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    variable, fallback = windows if platform.startswith("win") else linux
    if platform == "darwin":
        return home / "Library" / macos
    return Path(env.get(variable) or home / fallback)


def resource_dir(platform: str = sys.platform, env: dict[str, str] | None = None) -> Path:
    """Krita's resource folder on this system (Linux, macOS, Windows)."""
    return _user_folder(platform, env, windows=("APPDATA", "AppData/Roaming"), macos="Application Support",
                        linux=("XDG_DATA_HOME", ".local/share")) / "krita"


def kritarc_path(platform: str = sys.platform, env: dict[str, str] | None = None) -> Path:
    """Krita's settings file on this system."""
    return _user_folder(platform, env, windows=("LOCALAPPDATA", "AppData/Local"), macos="Preferences",
                        linux=("XDG_CONFIG_HOME", ".config")) / "kritarc"


def plugin_source() -> Path:
    """plugins/krita of this checkout (the plug-in ships with the source tree)."""
    from translate.errors import TranslateError

    source = Path(__file__).resolve().parents[2] / "plugins" / "krita"
    if not (source / DESKTOP).is_file() or not (source / PACKAGE).is_dir():
        raise TranslateError(f"{source}: the Krita plug-in's files are missing; install translate from a "
                             f"source checkout (pip install -e .), which holds plugins/krita")
    return source


def set_enabled(kritarc: Path, enabled: bool) -> None:
    """Set (or drop) `enable_translate_krita=true` in kritarc's [python] section, leaving the rest."""
    from translate.files import atomic_write

    key = f"enable_{PACKAGE}"
    lines = kritarc.read_text(encoding="utf-8").splitlines() if kritarc.exists() else []
    section = None
    kept = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped
        if not (section == "[python]" and stripped.split("=", 1)[0].strip() == key):
            kept.append(line)
    if enabled:
        if "[python]" not in (line.strip() for line in kept):
            kept += ["", "[python]"] if kept else ["[python]"]
        at = [line.strip() for line in kept].index("[python]") + 1
        kept.insert(at, f"{key}=true")
    atomic_write(kritarc, ("\n".join(kept) + "\n").encode("utf-8"))


def install(folder: Path, kritarc: Path) -> Path:
    """Copy the plug-in into folder/pykrita (replacing an older copy) and enable it; its folder."""
    source = plugin_source()
    pykrita = folder / "pykrita"
    pykrita.mkdir(parents=True, exist_ok=True)
    staged = pykrita / f".{PACKAGE}.new"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(source / PACKAGE, staged, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.rmtree(pykrita / PACKAGE, ignore_errors=True)
    staged.rename(pykrita / PACKAGE)
    shutil.copyfile(source / DESKTOP, pykrita / DESKTOP)
    set_enabled(kritarc, True)
    return pykrita / PACKAGE


def uninstall(folder: Path, kritarc: Path) -> bool:
    """Remove the plug-in from folder/pykrita and its switch from kritarc; whether it was there."""
    pykrita = folder / "pykrita"
    found = (pykrita / PACKAGE).exists() or (pykrita / DESKTOP).exists()
    shutil.rmtree(pykrita / PACKAGE, ignore_errors=True)
    (pykrita / DESKTOP).unlink(missing_ok=True)
    if kritarc.exists():
        set_enabled(kritarc, False)
    return found


def _cmd_plugin(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else resource_dir()
    kritarc = Path(args.kritarc) if args.kritarc else kritarc_path()
    if args.action == "install":
        where = install(folder, kritarc)
        print(f"installed the Krita plug-in in {where} and enabled it in {kritarc}; restart Krita, then show "
              f"Settings > Dockers > translate and start the service: translate serve runs/MODEL")
    elif uninstall(folder, kritarc):
        print(f"removed the Krita plug-in from {folder / 'pykrita'}")
    else:
        print(f"the Krita plug-in was not installed in {folder / 'pykrita'}; nothing to remove")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_plugin(sub)
