"""Local HTTP service over Translator: POST an image, get its translation; the editor page at /.

Endpoints: `POST /translate` (multipart: `image` file, optional `mask` file, `direction`, `format`)
answers the translated image's bytes; `GET /model` the model contract (see export.model_contract)
plus the service limits (no path of the server's file system); `GET /health` with the queue
depth; `GET /` the editor page; `GET /docs` the OpenAPI docs. Every error is JSON
`{"error": "..."}`: 400 a Host header that is not this machine's (serve_guard), 403 a cross-origin
POST, 413 too large (bytes or pixels), 415 not a supported image type, 422 undecodable image, wrong
mask size or bad option, 503 shutting down, 504 over the request time limit (serve_jobs). A client
that disconnects stops its translation. Nothing in a request names a file on the server.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from translate.data.images import ImageError, decode_image, encode_image, fit_to_format
from translate.direction import DIRECTIONS
from translate.errors import TranslatorError
from translate.inference.loading import load_models
from translate.inference.options import InferenceOptions
from translate.inference.translator import Translator
from translate.serving.guard import HostPolicy, RequestGuard, is_loopback  # noqa: F401 - is_loopback for cli
from translate.serving.jobs import JobQueue, JobStopped
from translate.tasks import Task, get_task

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 20 * 2**20  # 20 MiB: a 24-megapixel JPEG at high quality
DEFAULT_MAX_PIXELS = 25_000_000  # decoded RGB uint8 75 MB; the net then tiles within its memory budget
DEFAULT_MAX_CONCURRENT = 2  # net passes at once; each takes the Translator's whole memory budget
DEFAULT_REQUEST_TIMEOUT_S = 120.0  # waiting plus translating; a 25-megapixel photo on a laptop CPU fits
# After SIGTERM, how long uvicorn waits for answers in flight before dropping them; cancelled
# translations stop at their next net pass, well within this.
SHUTDOWN_GRACE_S = 5
# PIL's name for the format found in the file header -> the content type we accept for it.
IMAGE_TYPES: dict[str, str] = {
    "PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp",
}
# Clients that do not know a file's type send these; the header then decides.
_UNTYPED = {"", "application/octet-stream"}
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
                 "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp"}
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {  # format field -> (content type, suffix for cv2)
    "png": ("image/png", ".png"), "jpeg": ("image/jpeg", ".jpg"), "webp": ("image/webp", ".webp"),
}
# Why a job stopped -> the status answered (499: nginx's "client closed request"; nobody reads it).
_STOP_STATUS = {"timeout": 504, "shutdown": 503, "disconnected": 499}
_ERROR_DOC = {"content": {"application/json": {"example": {"error": "image: ..."}}}}
_TRANSLATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {t: {} for t, _ in OUTPUT_FORMATS.values()}, "description": "the translated image"},
    400: {**_ERROR_DOC, "description": "Host header not one this service answers to"},
    403: {**_ERROR_DOC, "description": "cross-origin request from a page this service did not serve"},
    413: {**_ERROR_DOC, "description": "upload or image too large"},
    415: {**_ERROR_DOC, "description": "not a supported image type"},
    422: {**_ERROR_DOC, "description": "undecodable image, wrong mask size or bad option"},
    503: {**_ERROR_DOC, "description": "the service is shutting down"},
    504: {**_ERROR_DOC, "description": "not translated within the request time limit"},
}


# The form fields of POST /translate. Module-level, so FastAPI can resolve the annotations.
ImageField = Annotated[UploadFile, File(description="the image: png, jpeg, webp, tiff or bmp")]
MaskField = Annotated[UploadFile | None, File(description="inpainting only: same size as the image, "
                                                          "white (>= 50% grey) = hole to fill")]
DirectionField = Annotated[str | None, Form(description="a_to_b or b_to_a, among the model's "
                                                        "directions (GET /model); default: its first")]
FormatField = Annotated[str, Form(description="output format: png (keeps 16 bits), jpeg or webp")]


class RequestError(Exception):
    """A request the service refuses: HTTP `status` and a one-line message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------- models
def load_translators(source: str | os.PathLike, options: InferenceOptions | None = None, *,
                     direction: str | None = None, arch: str | None = None,
                     weights_dir: str | os.PathLike = "weights", trust_torchscript: bool = False,
                     extra_arches: bool = False) -> dict[str, Translator]:
    """direction -> Translator for every generator in `source` (both for CycleGAN), read once, or
    only `direction`'s; published weights (ours or spandrel's) give one, under "a_to_b"."""
    models = load_models(source, direction=direction, arch=arch, weights_dir=weights_dir,
                         trust_torchscript=trust_torchscript, extra_arches=extra_arches)
    return {model.direction or "a_to_b": Translator(model, options) for model in models}


# ---------------------------------------------------------------- images in and out
def _content_type(declared: str | None) -> str:
    value = (declared or "").split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(value, value)


def decode_upload(data: bytes, *, field: str, content_type: str | None, max_pixels: int,
                  scale: int = 1) -> np.ndarray:
    """Uploaded bytes -> HxWxC (C in 1, 3, 4) uint8/uint16 RGB(A), as `data.images.read_image`.

    Checks, in order: the declared type (415), the header's format (415), the header's size
    against `max_pixels` before any pixel is decoded (413; the output's size when the net
    enlarges `scale` times), then decodes (422 when corrupt or truncated). Raises RequestError.
    """
    from PIL import Image, UnidentifiedImageError

    declared = _content_type(content_type)
    supported = ", ".join(name.lower() for name in IMAGE_TYPES)
    if declared not in _UNTYPED and declared not in IMAGE_TYPES.values():
        raise RequestError(415, f"{field}: content type {declared!r} is not a supported image ({supported})")
    if not data:
        raise RequestError(422, f"{field}: empty file")
    try:
        # Image.open reads only the header: format and size, no pixels.
        with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES)) as header:
            width, height, kind = header.width, header.height, header.format
    except Image.DecompressionBombError:
        raise RequestError(413, f"{field}: more than {max_pixels / 1e6:.4g} megapixels") from None
    except UnidentifiedImageError:
        if declared in _UNTYPED:
            raise RequestError(415, f"{field}: not a supported image ({supported})") from None
        raise RequestError(422, f"{field}: cannot decode as {declared} (corrupt or not an image)") from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for broken headers
        raise RequestError(422, f"{field}: cannot decode (truncated or corrupt): {e}") from None
    if width * height * scale**2 > max_pixels:
        enlarged = f" (x{scale}: {width * scale}x{height * scale} out)" if scale > 1 else ""
        raise RequestError(413, f"{field}: {width}x{height}{enlarged} is {width * height * scale**2 / 1e6:.4g} "
                                f"megapixels, more than the limit of {max_pixels / 1e6:.4g}")
    # Decoded exactly as files are: 16 bits and alpha kept, JPEG EXIF orientation applied. This cv2
    # returns nothing for truncated PNG, JPEG and WebP files rather than part of an image.
    try:
        return decode_image(data, name=field)
    except ImageError as e:
        raise RequestError(422, f"{e} (this {kind.lower()} may be truncated)") from None


def apply_mask(task: Task, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The model input for `image` plus an uploaded `mask`, by the task's one mask rule (the same
    as `convert --mask-dir` and the Python API: see translate/tasks/inpaint.py)."""
    try:
        return task.with_mask(image, mask)
    except ImageError as e:
        raise RequestError(422, str(e)) from None


def encode_result(image: np.ndarray, format: str) -> bytes:
    """HxW or HxWxC uint8/uint16 RGB(A) -> file bytes (png keeps 16 bits; jpeg and webp get 8)."""
    content_type, suffix = OUTPUT_FORMATS[format]
    image = fit_to_format(np.ascontiguousarray(image), suffix)
    if image.ndim == 3 and image.shape[2] == 2:  # gray + alpha: no file layout for it everywhere
        image = np.concatenate([np.repeat(image[:, :, :1], 3, axis=2), image[:, :, 1:]], axis=2)
    if image.ndim == 3 and image.shape[2] == 4 and format == "jpeg":
        raise RequestError(422, "format: jpeg cannot store this result's alpha channel; ask for png or webp")
    return encode_image(image, suffix, name="result")


# ---------------------------------------------------------------- the app
class _BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413 while they arrive, from
    the Content-Length header when there is one and by counting chunks otherwise, so an
    oversized upload is never read into memory or spooled to disk in full."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes / 2**20:.4g} MiB"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"error": self.message()}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions from body parsing; our handler makes it JSON.
                    raise HTTPException(413, self.message())
            return message

        await self.app(scope, limited_receive, send)


def _editor_page() -> str:
    return (resources.files("translate.serving") / "static" / "editor.html").read_text(encoding="utf-8")


def _model_info(translators: Mapping[str, Translator], *, max_upload_bytes: int, max_pixels: int,
                request_timeout_s: float) -> dict[str, Any]:
    """GET /model: the default translator's contract, the directions, formats and limits. The
    training config stays out: it names the trainer's folders, and a consumer needs none of it."""
    from translate.export.write import model_contract

    default_direction = next(iter(translators))
    default = translators[default_direction]
    contract = model_contract(default, config={})
    contract.pop("config")
    if contract.get("direction") is None:  # a net without one: "directions" says what there is
        contract.pop("direction", None)
    return {
        **contract,
        "directions": list(translators),
        "default_direction": default_direction,
        "output_formats": list(OUTPUT_FORMATS),
        "input_types": list(IMAGE_TYPES.values()),
        "takes_mask": get_task(default.task).takes_mask,  # whether POST /translate accepts a mask
        # max_pixels bounds the output: input pixels times scale**2 for super-resolution nets.
        "limits": {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels,
                   "request_timeout_s": request_timeout_s},
        "device": str(default.device),
        "precision": default.precision,
    }


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answers JSON {"error": "one line"}."""

    @app.exception_handler(RequestError)
    async def _request_error(request: Any, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Any, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Any, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
            parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)


def create_app(
    translator: Translator | Mapping[str, Translator],
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    host_policy: HostPolicy | None = None,
) -> FastAPI:
    """The FastAPI app serving `translator` (or a direction -> Translator mapping; the first
    entry is the default direction). Net passes run on worker threads, `max_concurrent` at once,
    each stopped when its client leaves or after `request_timeout_s`; decoding and encoding run
    on other worker threads, so requests proceed concurrently. `host_policy` says which Host
    headers to answer (default: loopback names only); cross-origin POSTs are always refused."""
    from translate import __version__

    if isinstance(translator, Mapping):
        translators = dict(translator)
    else:
        translators = {translator.model.direction or "a_to_b": translator}
    if not translators or any(d not in DIRECTIONS for d in translators):
        raise ValueError(f"translators: expected a mapping with keys among {DIRECTIONS}, got {list(translators)}")
    for name, value in (("max_upload_bytes", max_upload_bytes), ("max_pixels", max_pixels),
                        ("max_concurrent", max_concurrent), ("request_timeout_s", request_timeout_s)):
        if not value > 0:
            raise ValueError(f"{name}: must be positive, got {value}")
    app = FastAPI(
        title="translate", version=__version__,
        description="Image-to-image translation (pix2pix / CycleGAN). POST an image to /translate; "
                    "the editor page is at /.",
    )
    app.add_middleware(_BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(RequestGuard, policy=host_policy or HostPolicy())  # outermost: runs first
    _install_error_handlers(app)
    app.state.jobs = JobQueue(max_concurrent=max_concurrent, timeout_s=request_timeout_s)
    model_info = _model_info(translators, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
                             request_timeout_s=request_timeout_s)
    _install_routes(app, translators, model_info, max_pixels=max_pixels)
    return app


def _install_routes(app: FastAPI, translators: dict[str, Translator], model_info: dict[str, Any], *,
                    max_pixels: int) -> None:
    editor = _editor_page()
    jobs: JobQueue = app.state.jobs

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def editor_page() -> HTMLResponse:
        return HTMLResponse(editor)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, the loaded directions and the queue: net passes waiting and running."""
        return {"status": "stopping" if jobs.stopping else "ok", "directions": list(translators),
                "queue": {**jobs.depth(), "max_concurrent": jobs.max_concurrent}}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        """The model contract (task, channels, size multiple, scale, mode, spec) and the service's
        limits and formats."""
        return model_info

    @app.post("/translate", response_class=Response, responses=_TRANSLATE_RESPONSES)
    async def translate(
        request: Request, image: ImageField, mask: MaskField = None, direction: DirectionField = None,
        format: FormatField = "png",
    ) -> Response:
        """Translate one image; answers the result's bytes in `format`."""
        format = format.lower().strip()
        if format == "jpg":
            format = "jpeg"
        if format not in OUTPUT_FORMATS:
            raise RequestError(422, f"format: {format!r} must be one of {', '.join(OUTPUT_FORMATS)}")
        direction = direction or next(iter(translators))
        if direction not in translators:
            raise RequestError(422, f"direction: {direction!r} is not available; this model has "
                                    f"{', '.join(translators)}")
        result = await _translate_upload(translators[direction], jobs, request, image, mask, max_pixels=max_pixels)
        data = await run_in_threadpool(encode_result, result, format)
        content_type, suffix = OUTPUT_FORMATS[format]
        return Response(data, media_type=content_type, headers={
            "Content-Disposition": f'inline; filename="translated{suffix}"',
            "X-Translate-Direction": direction,
        })


async def _translate_upload(chosen: Translator, jobs: JobQueue, request: Request, image: UploadFile,
                            mask: UploadFile | None, *, max_pixels: int) -> np.ndarray:
    """Decode the upload (and mask), then run it through `jobs`; errors become RequestError."""
    pixels = await run_in_threadpool(decode_upload, await image.read(), field="image",
                                     content_type=image.content_type, max_pixels=max_pixels, scale=chosen.scale)
    if mask is not None:
        task = get_task(chosen.task)
        if not task.takes_mask:
            raise RequestError(422, f"mask: only inpainting models take a mask; this model's task is {chosen.task}")
        mask_pixels = await run_in_threadpool(decode_upload, await mask.read(), field="mask",
                                              content_type=mask.content_type, max_pixels=max_pixels)
        pixels = apply_mask(task, pixels, mask_pixels)
    try:
        return await jobs.run(lambda cancel: chosen(pixels, cancel=cancel), is_disconnected=request.is_disconnected)
    except JobStopped as e:
        if e.reason == "disconnected":
            log.info("stopped a translation: its client disconnected")
        raise RequestError(_STOP_STATUS[e.reason], str(e)) from None
    except (ValueError, TranslatorError) as e:  # the task adapter refusing this image
        raise RequestError(422, f"image: {str(e).splitlines()[0]}") from None


def run_server(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `app` with uvicorn until interrupted; SIGTERM or Ctrl+C cancels the translations in
    flight (they stop before their next net pass), so the process ends within seconds."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            app.state.jobs.stop()  # before uvicorn waits for the requests in flight to finish
            await super().shutdown(sockets=sockets)

    log.info("serving on http://%s:%d (editor at /, API docs at /docs)", host, port)
    config = uvicorn.Config(app, host=host, port=port, log_level="info",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    Server(config).run()
