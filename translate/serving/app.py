"""Local HTTP service over Translator: POST an image, get its translation; the editor page at /.

Endpoints: `POST /translate` (multipart: `image` file, optional `mask` file, `model`, `direction`,
`format`) answers the translated image's bytes; `GET /models` every served model's contract;
`GET /model` the default model's contract (see export.model_contract) plus the service limits (no
path of the server's file system); the job API (`POST /jobs` as /translate -> id, `GET /jobs/ID`
state and progress, `GET /jobs/ID/result`, `DELETE /jobs/ID`: see job_api); `GET /health` with
the queue depth; `GET /` the editor page; `GET /docs` the OpenAPI docs. Every error is JSON
`{"error": "..."}`: 400 a Host header that is not this machine's (serve_guard), 403 a cross-origin
POST, 413 too large (bytes or pixels), 415 not a supported image type, 422 undecodable image, wrong
mask size or bad option, 429 too many jobs, 503 shutting down, 504 over the request time limit
(jobs). A client that disconnects stops its translation. Nothing in a request names a file on the server.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from translate.errors import ConfigError
from translate.inference.translator import Translator
from translate.serving.guard import HostPolicy, RequestGuard, is_loopback  # noqa: F401 - is_loopback for cli
from translate.serving.images import (  # noqa: F401 - decode_upload, apply_mask: part of this module's API
    IMAGE_TYPES, OUTPUT_FORMATS, RequestError, apply_mask, decode_upload, encode_result, output_format,
)
from translate.serving.job_api import (
    DirectionField, FormatField, ImageField, MaskField, ModelField, choose, decode_request, install_job_routes,
    run_translation,
)
from translate.serving.jobs import JobQueue, JobStore
from translate.serving.models import Served, as_served, load_translators, model_entry, model_info  # noqa: F401

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 20 * 2**20  # 20 MiB: a 24-megapixel JPEG at high quality
DEFAULT_MAX_PIXELS = 25_000_000  # decoded RGB uint8 75 MB; the net then tiles within its memory budget
DEFAULT_MAX_CONCURRENT = 2  # net passes at once; each takes the Translator's whole memory budget
DEFAULT_REQUEST_TIMEOUT_S = 120.0  # waiting plus translating; a 25-megapixel photo on a laptop CPU fits
DEFAULT_RESULT_TTL_S = 600.0  # a finished job's result waits this long for its client
DEFAULT_MAX_RESULT_BYTES = 1 << 30  # finished results held at once (encoded); the oldest go first
DEFAULT_MAX_JOBS = 16  # unfinished jobs at once; each holds its decoded image
# After SIGTERM, how long uvicorn waits for answers in flight before dropping them; cancelled
# translations stop at their next net pass, well within this.
SHUTDOWN_GRACE_S = 5
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
    translator: Translator | Mapping[str, Any],
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    host_policy: HostPolicy | None = None,
    result_ttl_s: float = DEFAULT_RESULT_TTL_S,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    max_jobs: int = DEFAULT_MAX_JOBS,
) -> FastAPI:
    """The FastAPI app serving `translator`: one Translator, a direction -> Translator mapping (one
    model; the first entry is the default direction) or a name -> {direction: Translator} mapping
    (several models; the first is the default). Net passes run on worker threads, `max_concurrent`
    at once, each stopped when its client leaves (or its job is cancelled) or after
    `request_timeout_s`; decoding and encoding run on other worker threads, so requests proceed
    concurrently. Finished jobs are kept `result_ttl_s`, their results within `max_result_bytes`;
    at most `max_jobs` are unfinished. `host_policy` says which Host headers to answer (default:
    loopback names only); cross-origin POSTs and DELETEs are always refused."""
    from translate import __version__

    served = as_served(translator)
    for name, value in (("max_upload_bytes", max_upload_bytes), ("max_pixels", max_pixels),
                        ("max_concurrent", max_concurrent), ("request_timeout_s", request_timeout_s),
                        ("result_ttl_s", result_ttl_s), ("max_result_bytes", max_result_bytes),
                        ("max_jobs", max_jobs)):
        if not value > 0:
            raise ConfigError(f"{name}: must be positive, got {value}")
    app = FastAPI(
        title="translate", version=__version__,
        description="Image-to-image translation (pix2pix / CycleGAN). POST an image to /translate; "
                    "the editor page is at /.",
    )
    app.add_middleware(_BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(RequestGuard, policy=host_policy or HostPolicy())  # outermost: runs first
    _install_error_handlers(app)
    app.state.jobs = JobQueue(max_concurrent=max_concurrent, timeout_s=request_timeout_s)
    app.state.job_store = JobStore(ttl_s=result_ttl_s, max_result_bytes=max_result_bytes, max_jobs=max_jobs)
    limits = {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels, "request_timeout_s": request_timeout_s}
    _install_routes(app, served, limits, max_pixels=max_pixels)
    install_job_routes(app, served, app.state.jobs, app.state.job_store, max_pixels=max_pixels)
    return app


def _install_routes(app: FastAPI, served: Served, limits: dict[str, Any], *, max_pixels: int) -> None:
    editor = _editor_page()
    jobs: JobQueue = app.state.jobs
    default = next(iter(served.values()))
    default_info = model_info(default, limits, OUTPUT_FORMATS, IMAGE_TYPES.values())
    models = {"models": [model_entry(name, translators) for name, translators in served.items()],
              "default": next(iter(served)), "output_formats": list(OUTPUT_FORMATS), "limits": limits}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def editor_page() -> HTMLResponse:
        return HTMLResponse(editor)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, the default model's directions and the queue: net passes waiting and running."""
        return {"status": "stopping" if jobs.stopping else "ok", "directions": list(default),
                "queue": {**jobs.depth(), "max_concurrent": jobs.max_concurrent}}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        """The default model's contract (task, channels, size multiple, scale, mode, spec) and the
        service's limits and formats."""
        return default_info

    @app.get("/models")
    async def list_models() -> dict[str, Any]:
        """Every served model: name, task, method, directions, scale, channels, takes_mask; the
        default's name; output formats and limits."""
        return models

    @app.post("/translate", response_class=Response, responses=_TRANSLATE_RESPONSES)
    async def translate(
        request: Request, image: ImageField, mask: MaskField = None, model: ModelField = None,
        direction: DirectionField = None, format: FormatField = "png",
    ) -> Response:
        """Translate one image; answers the result's bytes in `format`."""
        format = output_format(format)
        _, direction, chosen = choose(served, model, direction)
        pixels = await decode_request(chosen, image, mask, max_pixels=max_pixels)
        result = await run_translation(chosen, jobs, pixels, request.is_disconnected)
        data = await run_in_threadpool(encode_result, result, format)
        content_type, suffix = OUTPUT_FORMATS[format]
        return Response(data, media_type=content_type, headers={
            "Content-Disposition": f'inline; filename="translated{suffix}"',
            "X-Translate-Direction": direction,
        })


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
