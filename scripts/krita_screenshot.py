"""docs/krita-docker.png: the plug-in's docker in a real Krita window (under Xvfb) after Apply.

Starts `translate serve` with two stand-in models (random weights: the result shows the layer, not
a trained look), installs the plug-in into a throw-away Krita profile (`translate plugin install`),
plus a one-off extension that opens a photo, applies the first model through the docker, waits
for the result layer and grabs the window. Needs krita and xvfb (scripts/ci_krita_deps.sh).

    PYTHONPATH=$PWD .venv/bin/python scripts/krita_screenshot.py [docs/krita-docker.png]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
MAX_BYTES = 300_000

SHOT_EXTENSION = r'''
import os
from krita import Extension, Krita, Selection
from PyQt5.QtCore import QTimer

class Shot(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        QTimer.singleShot(5000, self.open)

    def docker(self):
        return next(d for d in Krita.instance().dockers() if type(d).__name__ == "TranslateDocker")

    def open(self):
        app = Krita.instance()
        doc = app.openDocument(os.environ["SHOT_IMAGE"])
        app.activeWindow().addView(doc)
        app.setActiveDocument(doc)
        docker = self.docker()
        docker.show()
        docker.raise_()
        docker.server.setText(os.environ["SHOT_SERVER"])
        docker.refresh()
        QTimer.singleShot(3000, self.apply)

    def apply(self):
        selection = Selection()
        selection.select(150, 40, 200, 190, 255)  # the face: the rest of the photo stays as it was
        Krita.instance().activeDocument().setSelection(selection)
        self.docker().apply()
        QTimer.singleShot(500, self.wait)

    def wait(self):
        if self.docker().work is not None:
            QTimer.singleShot(300, self.wait)
            return
        QTimer.singleShot(1500, self.grab)

    def grab(self):
        window = Krita.instance().activeWindow().qwindow()
        window.grab().save(os.environ["SHOT_OUT"], "PNG")

Krita.instance().addExtension(Shot(Krita.instance()))
'''


def profile(tmp: Path, server: str, image: Path, out: Path) -> dict[str, str]:
    """A throw-away Krita profile with the plug-in and the shot extension; the environment for it."""
    data, config = tmp / "data", tmp / "config"
    subprocess.run([sys.executable, "-m", "translate", "plugin", "install", "krita", "--dir", str(data / "krita"),
                    "--kritarc", str(config / "kritarc")], check=True)
    pykrita = data / "krita" / "pykrita"
    (pykrita / "translate_shot").mkdir()
    (pykrita / "translate_shot" / "__init__.py").write_text(SHOT_EXTENSION)
    (pykrita / "translate_shot.desktop").write_text(
        "[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\nX-KDE-Library=translate_shot\n"
        "X-Python-2-Compatible=false\nName=translate screenshot\n")
    with open(config / "kritarc", "a") as f:
        f.write("enable_translate_shot=true\n")  # the [python] section is the file's last
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(XDG_DATA_HOME=str(data), XDG_CONFIG_HOME=str(config), XDG_RUNTIME_DIR=str(tmp), HOME=str(tmp),
               SHOT_IMAGE=str(image), SHOT_SERVER=server, SHOT_OUT=str(out))
    return env


def shrink(raw: Path, target: Path) -> None:
    """Save the grab as a palette PNG under MAX_BYTES (halving its size until it fits)."""
    from PIL import Image

    image = Image.open(raw).convert("RGB")
    while True:
        quantised = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        target.parent.mkdir(parents=True, exist_ok=True)
        quantised.save(target, optimize=True)
        if target.stat().st_size < MAX_BYTES:
            return
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)


def main() -> None:
    import cv2
    import skimage.data
    from test_krita_plugin import INPAINT, RESNET, start_service, write_checkpoint

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "krita-docker.png"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        restyle = write_checkpoint(tmp / "restyle.pt", {"g_ab": RESNET})
        fill = write_checkpoint(tmp / "fill.pt", {"g_ab": INPAINT}, task="inpaint")
        service, url = start_service([restyle, fill], tmp)
        image = tmp / "astronaut.png"
        cv2.imwrite(str(image), cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (384, 384)), cv2.COLOR_RGB2BGR))
        raw = tmp / "grab.png"
        env = profile(tmp, url, image, raw)
        krita = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1200x760x24", "krita", "--nosplash"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not raw.exists() and time.monotonic() < deadline and krita.poll() is None:
                time.sleep(1)
            time.sleep(1)
            if not raw.exists():
                raise SystemExit("Krita made no screenshot")
            shrink(raw, target)
        finally:
            os.killpg(krita.pid, 15)
            service.terminate()
    print(f"wrote {target} ({target.stat().st_size / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
