"""Downloads with a deadline and verified weights (issue 25 items 2 and 3): dripping and silent
loopback servers end within the deadline leaving no file; a wrong file under a pinned name is
refused in one line and accepted with --unverified-weights; `weights list` says which is which."""
from __future__ import annotations

import dataclasses
import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from translate import weights
from translate.errors import WeightsError
from translate.integrity import pins
from translate.integrity.download import DownloadLimits


@pytest.fixture(autouse=True)
def verification_on():
    """Refusal is the default; conftest's metric stand-ins turn it off for the session."""
    before = pins._allow["unverified"]
    pins.allow_unverified(False)
    yield
    pins.allow_unverified(before)


class _Drip(http.server.BaseHTTPRequestHandler):
    """Promises 1 MB, then sends one byte every 0.2 s (mode "drip") or nothing at all ("silent")."""

    mode = "drip"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        try:
            for _ in range(200):
                if self.mode == "drip":
                    self.wfile.write(b"x")
                    self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=["drip", "silent"])
def slow_server(request):
    handler = type("Handler", (_Drip,), {"mode": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/horse2zebra.pth"
    server.shutdown()


def test_slow_download_ends_within_deadline_leaving_no_file(slow_server, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DOWNLOAD_LIMITS", DownloadLimits(deadline_s=2.0, read_timeout_s=1.5,
                                                                    min_bytes_per_s=1000, grace_s=1.0))
    monkeypatch.setitem(weights.PUBLISHED, "horse2zebra",
                        dataclasses.replace(weights.PUBLISHED["horse2zebra"], url=slow_server))
    start = time.monotonic()
    with pytest.raises(WeightsError) as err:
        weights.fetch("horse2zebra", tmp_path)
    took = time.monotonic() - start
    print(f"gave up after {took:.2f} s: {err.value}")
    assert "\n" not in str(err.value) and slow_server in str(err.value)
    assert took < 10, "the download outlived its 2 s deadline by far"
    assert list(tmp_path.iterdir()) == [], "a temporary or partial file was left behind"


def _fake_weights(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save({"w": torch.randn(4, 4)}, path)
    return path


def test_wrong_file_under_pinned_feature_name_refused_then_accepted_with_flag(tmp_path):
    path = _fake_weights(tmp_path / weights.FEATURE_WEIGHTS["alexnet"].file, 0)  # random AlexNet stand-in
    with pytest.raises(WeightsError) as err:
        weights.locate("alexnet", weights_dir=tmp_path)
    assert "\n" not in str(err.value) and "--unverified-weights" in str(err.value) and str(path) in str(err.value)
    pins.allow_unverified(True)
    assert weights.locate("alexnet", weights_dir=tmp_path) == path


def test_swapped_published_file_caught_by_its_download_pin(tmp_path):
    path = _fake_weights(weights.local_path("horse2zebra", tmp_path), 0)
    assert pins.status(path, None) == "unpinned"
    pins.pin_at_download(path)  # what `weights fetch` does once the download is checked
    assert weights.resolve("horse2zebra", tmp_path) == path and pins.status(path, None) == "verified"
    _fake_weights(path, 1)  # another state dict saved under the name
    with pytest.raises(WeightsError, match="horse2zebra.pth: sha256 .* is not the pinned"):
        weights.resolve("horse2zebra", tmp_path)


def test_verified_file_is_hashed_once(tmp_path, monkeypatch):
    path = _fake_weights(tmp_path / "x.pth", 0)
    pins.pin_at_download(path)
    hashed = []
    monkeypatch.setattr(pins, "sha256_of", lambda p: hashed.append(p) or "0")  # counts the hashing
    assert pins.status(path, None) == "verified" and hashed == []


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "translate", *args], capture_output=True, text=True, timeout=120)


def test_cli_convert_refuses_wrong_file_and_list_shows_status(tmp_path, photo):
    from translate.nets import ResnetSpec, build_net
    import cv2

    folder = tmp_path / "weights"
    folder.mkdir()
    path = weights.local_path("horse2zebra", folder)
    torch.save(build_net(ResnetSpec(base_channels=4, n_blocks=2)).state_dict(), path)
    pins.pin_at_download(path)
    torch.save(build_net(ResnetSpec(base_channels=4, n_blocks=3)).state_dict(), path)  # swapped
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), photo("astronaut", 32))
    refused = _cli("convert", "horse2zebra", str(tmp_path / "in"), str(tmp_path / "out"), "--weights-dir", str(folder))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "--unverified-weights" in refused.stderr
    accepted = _cli("convert", "horse2zebra", str(tmp_path / "in"), str(tmp_path / "out"), "--weights-dir", str(folder),
                    "--unverified-weights")
    assert accepted.returncode == 0, accepted.stderr
    listing = _cli("weights", "list", "--weights-dir", str(folder)).stdout
    assert any("horse2zebra" in line and "mismatch" in line for line in listing.splitlines()), listing
    assert any("zebra2horse" in line and "missing" in line for line in listing.splitlines()), listing
