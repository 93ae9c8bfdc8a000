"""HTTP client for `translate serve` (standard library only): the model list and the job API.

Every failure a user can meet becomes a PluginError whose text is one line for the docker:
the service not running (with the command that starts it), the model refusing the image, the
image too large. `run_job` blocks; call it off Krita's UI thread.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Optional

DEFAULT_SERVER = "http://127.0.0.1:8000"
START_HINT = "start it with: translate serve runs/MODEL (or translate serve --models-dir DIR)"
POLL_S = 0.1  # how often a running job is asked for its progress
Progress = Callable[[int, int], None]


class PluginError(Exception):
    """Something the user can fix; str(e) is one line for the docker."""


class JobCancelled(PluginError):
    """The job was cancelled (Cancel); the document was left as it was."""


def _url(server: str, path: str) -> str:
    return server.rstrip("/") + path


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read().decode("utf-8", "replace"))["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {error.code} {error.reason}"


def _refusal(status: int, text: str) -> PluginError:
    """A service's refusal as the docker says it."""
    if status == 413:
        return PluginError(f"image too large: {text}; select a smaller area, or start the service with a larger "
                           f"--max-megapixels / --max-upload-mb")
    if status == 422:
        return PluginError(f"the model refused this image: {text}")
    return PluginError(f"the service answered {status}: {text}")


def request(server: str, method: str, path: str, *, body: bytes | None = None,
            content_type: str | None = None, timeout_s: float = 30.0) -> bytes:
    """One HTTP request to the service; its answer's body, or PluginError."""
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(_url(server, path), data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise _refusal(e.code, _error_text(e)) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PluginError(f"cannot reach the translate service at {server} ({reason}); {START_HINT}") from None


def get_json(server: str, path: str) -> dict[str, Any]:
    data = request(server, "GET", path)
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        raise PluginError(f"{server}{path} did not answer JSON: is this a translate service?") from None


def list_models(server: str) -> dict[str, Any]:
    """GET /models: {"models": [{"name", "task", "scale", "takes_mask", ...}], "default", "limits"}."""
    return get_json(server, "/models")


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body of text `fields` and PNG `files`, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                f"Content-Type: image/png\r\n\r\n").encode()
        parts += [head, data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def submit(server: str, model: str, image_png: bytes, mask_png: bytes | None = None) -> str:
    """POST /jobs: start translating `image_png` with `model`; the job's id."""
    files = {"image": image_png, **({"mask": mask_png} if mask_png is not None else {})}
    body, content_type = multipart({"model": model, "format": "png"}, files)
    answer = json.loads(request(server, "POST", "/jobs", body=body, content_type=content_type, timeout_s=120.0))
    return str(answer["id"])


def cancel_job(server: str, job_id: str) -> None:
    """DELETE /jobs/ID: stop it before its next net pass (or drop its result); quiet if it is gone."""
    try:
        request(server, "DELETE", f"/jobs/{job_id}")
    except PluginError:
        pass


def run_job(server: str, model: str, image_png: bytes, mask_png: bytes | None = None, *,
            progress: Optional[Progress] = None, cancel: Optional[threading.Event] = None,
            poll_s: float = POLL_S) -> bytes:
    """Translate one PNG through the job API: submit, poll (progress(done, total) in net passes),
    fetch the result's PNG bytes, drop it from the service. Setting `cancel` deletes the job and
    raises JobCancelled; the service's errors raise PluginError. Blocking: not on the UI thread."""
    job_id = submit(server, model, image_png, mask_png)
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise JobCancelled("cancelled")
            status = get_json(server, f"/jobs/{job_id}")
            if progress is not None and status["progress"]["total"]:
                progress(status["progress"]["done"], status["progress"]["total"])
            if status["state"] == "done":
                return request(server, "GET", f"/jobs/{job_id}/result", timeout_s=120.0)
            if status["state"] == "failed":
                request(server, "GET", f"/jobs/{job_id}/result")  # raises the job's own error
                raise PluginError(f"the job failed: {status.get('error', 'no reason given')}")
            if status["state"] == "cancelled":
                raise JobCancelled("the service cancelled the job")
            time.sleep(poll_s)
    finally:
        cancel_job(server, job_id)
