"""The service's net passes: a bounded queue whose jobs stop when their client leaves, their time
limit passes or the service shuts down, and whose depth /health reports; and the job API's
records (`JobStore`): state, progress and results kept for a bounded time and memory."""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio

T = TypeVar("T")
StopReason = Literal["disconnected", "timeout", "shutdown"]
# How often a request waiting for its result asks whether its client is still connected: a
# client that left costs at most this long plus one net pass (one tile when tiling).
POLL_S = 0.1


class JobStopped(Exception):
    """A job ended without its result; `reason` says why and str(e) is one line for the client."""

    def __init__(self, reason: StopReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class JobQueue:
    """Runs `work(cancel)` on worker threads, `max_concurrent` at once, in arrival order.

    A job's `cancel` event is set when its client disconnects, when `timeout_s` has passed since
    it arrived (waiting included), or when `stop()` is called; `work` is expected to check it
    between units of work (Translator does, before each net pass and tile).
    """

    def __init__(self, *, max_concurrent: int, timeout_s: float, poll_s: float = POLL_S) -> None:
        self.max_concurrent = max_concurrent
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.stopping = False
        self._lock = threading.Lock()  # counters change on worker threads too
        self._waiting = 0
        self._running = 0
        self._cancels: set[threading.Event] = set()
        self._limiter: anyio.CapacityLimiter | None = None  # made inside the server's event loop

    def depth(self) -> dict[str, int]:
        """Jobs waiting for a slot and jobs running now."""
        with self._lock:
            return {"waiting": self._waiting, "running": self._running}

    def stop(self) -> None:
        """Refuse new jobs and cancel every waiting or running one (the service is shutting down)."""
        with self._lock:
            self.stopping = True
            cancels = list(self._cancels)
        for cancel in cancels:
            cancel.set()

    async def run(self, work: Callable[[threading.Event], T], *,
                  is_disconnected: Callable[[], Awaitable[bool]]) -> T:
        """`work(cancel)`'s result, or JobStopped; exceptions from `work` pass through."""
        if self.stopping:
            raise JobStopped("shutdown", "the service is shutting down; retry once it is back")
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_concurrent)
        cancel = threading.Event()
        started = threading.Event()
        with self._lock:
            self._waiting += 1
            self._cancels.add(cancel)

        def counted() -> T:
            with self._lock:
                self._waiting -= 1
                self._running += 1
                started.set()
            try:
                return work(cancel)
            finally:
                with self._lock:
                    self._running -= 1

        try:
            outcome = await self._watched(counted, cancel, is_disconnected)
        finally:
            with self._lock:
                self._cancels.discard(cancel)
                if not started.is_set():  # left while waiting: the thread never ran
                    self._waiting -= 1
        return self._result(outcome, cancel)

    async def _watched(self, work: Callable[[], T], cancel: threading.Event,
                       is_disconnected: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
        """Run `work` on a thread while watching the client, the clock and `stopping`; whichever
        ends first cancels the other. Returns {"result"} or {"error"}, plus {"stop": reason}."""
        outcome: dict[str, Any] = {}
        deadline = anyio.current_time() + self.timeout_s

        async def watch(scope: anyio.CancelScope) -> None:
            while True:
                await anyio.sleep(max(0.0, min(self.poll_s, deadline - anyio.current_time())))
                if self.stopping:
                    outcome["stop"] = "shutdown"
                elif await is_disconnected():
                    outcome["stop"] = "disconnected"
                elif anyio.current_time() >= deadline:
                    outcome["stop"] = "timeout"
                else:
                    continue
                cancel.set()
                scope.cancel()  # leaves the wait for a slot; a running thread sees `cancel`
                return

        async def job(scope: anyio.CancelScope) -> None:
            try:
                outcome["result"] = await anyio.to_thread.run_sync(work, limiter=self._limiter)
            except Exception as e:  # noqa: BLE001 - handed to the caller by _result
                outcome["error"] = e
            scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(watch, group.cancel_scope)
            group.start_soon(job, group.cancel_scope)
        return outcome

    def _result(self, outcome: dict[str, Any], cancel: threading.Event) -> Any:
        # Only the watcher and stop() set `cancel`; the watcher records its reason first.
        reason = outcome.get("stop") or ("shutdown" if cancel.is_set() else None)
        if reason == "timeout":
            raise JobStopped("timeout", f"image: not translated within the limit of {self.timeout_s:g} s "
                                        f"(waiting included); try a smaller image or try again later")
        if reason == "shutdown":
            raise JobStopped("shutdown", "the service is shutting down; retry once it is back")
        if reason == "disconnected":
            raise JobStopped("disconnected", "the client disconnected")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]


# ---------------------------------------------------------------- the job API's records
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[JobState, ...] = ("done", "failed", "cancelled")


@dataclass
class Job:
    """One POST /jobs translation: its state, progress in net passes, and its result or error."""

    id: str
    model: str
    state: JobState = "queued"
    done: int = 0  # net passes (tiles, the statistics pass) done of `total`; 0 of 0 until it runs
    total: int = 0
    error: str | None = None
    status: int | None = None  # the HTTP status its error would have had on POST /translate
    result: bytes | None = None
    media_type: str = ""
    finished_at: float | None = None
    cancel_requested: bool = False
    runner: Any = None  # the asyncio task running it; held so it is not garbage-collected

    def progress(self, done: int, total: int) -> None:
        """Translator's progress callback (worker thread): plain int stores, read by GET /jobs/ID."""
        self.state = "running"
        if total:
            self.total, self.done = total, done

    async def cancelled(self) -> bool:
        """JobQueue's `is_disconnected`: a DELETE stops the job as a leaving client would."""
        return self.cancel_requested

    def to_dict(self) -> dict[str, Any]:
        status = {"id": self.id, "model": self.model, "state": self.state,
                  "progress": {"done": self.done, "total": self.total}}
        if self.error is not None:
            status["error"] = self.error
        return status


class JobStore:
    """The job API's jobs by id. Finished jobs are kept `ttl_s` after they end and their results
    within `max_result_bytes` together (the oldest go first), then dropped; at most `max_jobs`
    jobs are unfinished at once (each holds its decoded image)."""

    def __init__(self, *, ttl_s: float, max_result_bytes: int, max_jobs: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_result_bytes = max_result_bytes
        self.max_jobs = max_jobs
        self.clock = clock
        self._jobs: dict[str, Job] = {}  # in creation order

    def add(self, model: str) -> Job | None:
        """A new queued job, or None when `max_jobs` are unfinished already."""
        self._expire()
        if sum(job.state not in FINISHED for job in self._jobs.values()) >= self.max_jobs:
            return None
        job = Job(id=secrets.token_urlsafe(12), model=model)  # unguessable: ids are the only key
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None when unknown or dropped."""
        self._expire()
        return self._jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def finish(self, job: Job, state: JobState, *, result: bytes | None = None, media_type: str = "",
               error: str | None = None, status: int | None = None) -> None:
        """Record how `job` ended; then drop results over the memory bound, oldest first."""
        job.state, job.result, job.media_type, job.error, job.status = state, result, media_type, error, status
        job.finished_at = self.clock()
        if state == "done":
            job.done = job.total = max(job.total, 1)
        self._expire()

    def _expire(self) -> None:
        now = self.clock()
        finished = [job for job in self._jobs.values() if job.finished_at is not None]
        for job in finished:
            if now - job.finished_at > self.ttl_s:
                self.remove(job.id)
        held = [job for job in self._jobs.values() if job.result is not None]
        total = sum(len(job.result) for job in held)
        for job in held[:-1]:  # the newest result stays even when it alone is over the bound
            if total <= self.max_result_bytes:
                break
            total -= len(job.result)
            self.remove(job.id)
