"""The steps every translation request takes (choose the model, decode the upload, run it on the
queue), and the job API on top of them, for clients that show progress and may cancel:

`POST /jobs` (the form of POST /translate) answers 202 {"id", "state", ...} at once; `GET /jobs/ID`
{"id", "model", "state": queued | running | done | failed | cancelled, "progress": {"done",
"total"} net passes (tiles), "error" when failed}; `GET /jobs/ID/result` the image (409 while not
done); `DELETE /jobs/ID` cancels it (it stops before its next net pass) or drops its result.
Jobs run on the same queue and time limit as POST /translate; finished ones are kept for a
bounded time and memory (`JobStore`), then answer 404 like an unknown id.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from translate.errors import TranslateError
from translate.inference.translator import Progress, Translator
from translate.serving.images import OUTPUT_FORMATS, RequestError, apply_mask, decode_upload, encode_result, \
    output_format
from translate.serving.jobs import FINISHED, Job, JobQueue, JobStopped, JobStore
from translate.serving.models import Served

log = logging.getLogger(__name__)

# Why a job stopped -> the status answered (499: nginx's "client closed request"; nobody reads it).
STOP_STATUS = {"timeout": 504, "shutdown": 503, "disconnected": 499}

# The form fields of POST /translate and POST /jobs. Module-level, so FastAPI can resolve them.
ImageField = Annotated[UploadFile, File(description="the image: png, jpeg, webp, tiff or bmp")]
MaskField = Annotated[UploadFile | None, File(description="inpainting only: same size as the image, "
                                                          "white (>= 50% grey) = hole to fill")]
ModelField = Annotated[str | None, Form(description="a model's name from GET /models; default: the first")]
DirectionField = Annotated[str | None, Form(description="a_to_b or b_to_a, among the model's "
                                                        "directions (GET /model); default: its first")]
FormatField = Annotated[str, Form(description="output format: png (keeps 16 bits), jpeg or webp")]


def choose(served: Served, model: str | None, direction: str | None) -> tuple[str, str, Translator]:
    """(model name, direction, Translator) a request names; defaults: the first of each; 422 otherwise."""
    name = model or next(iter(served))
    if name not in served:
        raise RequestError(422, f"model: {name!r} is not served; this service has {', '.join(served)}")
    translators = served[name]
    direction = direction or next(iter(translators))
    if direction not in translators:
        raise RequestError(422, f"direction: {direction!r} is not available; this model has "
                                f"{', '.join(translators)}")
    return name, direction, translators[direction]


async def decode_request(chosen: Translator, image: UploadFile, mask: UploadFile | None, *,
                         max_pixels: int) -> np.ndarray:
    """The upload (and mask, by the task's mask rule) as the net's input image; errors are RequestError."""
    pixels = await run_in_threadpool(decode_upload, await image.read(), field="image",
                                     content_type=image.content_type, max_pixels=max_pixels, scale=chosen.scale)
    if mask is not None:
        task = chosen.contract.task
        if not task.takes_mask:
            raise RequestError(422, f"mask: only inpainting models take a mask; this model's task is {chosen.task}")
        mask_pixels = await run_in_threadpool(decode_upload, await mask.read(), field="mask",
                                              content_type=mask.content_type, max_pixels=max_pixels)
        pixels = apply_mask(task, pixels, mask_pixels)
    return pixels


async def run_translation(chosen: Translator, jobs: JobQueue, pixels: np.ndarray,
                          is_disconnected: Callable[[], Awaitable[bool]],
                          progress: Progress | None = None) -> np.ndarray:
    """`chosen(pixels)` on the queue; a stop (JobStopped) or a refused image become RequestError."""
    def work(cancel: threading.Event) -> np.ndarray:
        if progress is None:  # POST /translate: the call Translator subclasses have always had
            return chosen(pixels, cancel=cancel)
        progress(0, 0)  # running now: no net pass done yet, the total not known yet
        return chosen(pixels, cancel=cancel, progress=progress)

    try:
        return await jobs.run(work, is_disconnected=is_disconnected)
    except JobStopped as e:
        if e.reason == "disconnected":
            log.info("stopped a translation: its client disconnected or cancelled it")
        raise RequestError(STOP_STATUS[e.reason], str(e)) from None
    except TranslateError as e:  # the task adapter refusing this image
        raise RequestError(422, f"image: {str(e).splitlines()[0]}") from None


async def _run_job(job: Job, store: JobStore, chosen: Translator, jobs: JobQueue, pixels: np.ndarray,
                   format: str) -> None:
    """Run one job to its end and record how it ended (never raises: nobody awaits it)."""
    try:
        result = await run_translation(chosen, jobs, pixels, job.cancelled, job.progress)
        data = await run_in_threadpool(encode_result, result, format)
        store.finish(job, "done", result=data, media_type=OUTPUT_FORMATS[format][0])
    except RequestError as e:
        state = "cancelled" if job.cancel_requested else "failed"
        store.finish(job, state, error="cancelled" if state == "cancelled" else e.message, status=e.status)
    except Exception as e:  # noqa: BLE001 - a bug must still end the job, and be logged
        log.exception("job %s failed", job.id)
        store.finish(job, "failed", error=f"internal error: {type(e).__name__}", status=500)


def _known(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise RequestError(404, f"job {job_id}: unknown, or dropped (finished jobs are kept "
                                f"{store.ttl_s:g} s, results within {store.max_result_bytes / 2**20:.4g} MiB)")
    return job


def install_job_routes(app: FastAPI, served: Served, jobs: JobQueue, store: JobStore, *, max_pixels: int) -> None:
    """POST /jobs, GET /jobs/ID, GET /jobs/ID/result and DELETE /jobs/ID (see the module's docstring)."""

    @app.post("/jobs", status_code=202)
    async def submit(request: Request, image: ImageField, mask: MaskField = None, model: ModelField = None,
                     direction: DirectionField = None, format: FormatField = "png") -> JSONResponse:
        """Start translating one image as POST /translate would; answers the job's id and state."""
        format = output_format(format)
        name, _, chosen = choose(served, model, direction)
        if jobs.stopping:
            raise RequestError(503, "the service is shutting down; retry once it is back")
        pixels = await decode_request(chosen, image, mask, max_pixels=max_pixels)
        job = store.add(name)
        if job is None:
            raise RequestError(429, f"{store.max_jobs} jobs are unfinished already; wait for one or cancel one")
        job.runner = asyncio.get_running_loop().create_task(_run_job(job, store, chosen, jobs, pixels, format))
        return JSONResponse(job.to_dict(), status_code=202)

    @app.get("/jobs/{job_id}")
    async def status(job_id: str) -> dict[str, Any]:
        """The job's state and progress: net passes (tiles) done of total."""
        return _known(store, job_id).to_dict()

    @app.get("/jobs/{job_id}/result", response_class=Response)
    async def result(job_id: str) -> Response:
        """The finished job's image; 409 while it runs, the job's own error once it failed."""
        job = _known(store, job_id)
        if job.state == "failed":
            raise RequestError(job.status or 500, job.error or "failed")
        if job.state != "done" or job.result is None:
            raise RequestError(409, f"job {job_id}: {job.state}, no result" +
                               (" yet" if job.state not in FINISHED else ""))
        return Response(job.result, media_type=job.media_type)

    @app.delete("/jobs/{job_id}")
    async def cancel(job_id: str) -> dict[str, Any]:
        """Cancel an unfinished job (before its next net pass), or drop a finished one's result."""
        job = _known(store, job_id)
        if job.state in FINISHED:
            store.remove(job_id)
            return {**job.to_dict(), "deleted": True}
        job.cancel_requested = True
        return {**job.to_dict(), "deleted": False}
