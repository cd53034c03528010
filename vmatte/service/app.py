"""The HTTP API of ``vmatte serve`` (Starlette). Every error is a JSON object ``{"error": "one line", ...}``.

    GET    /v1/health             no token; version, engine, device, queue counts (no paths)
    POST   /v1/jobs               run config as JSON → 201 {"id", "status", ...}; config errors → 400
    GET    /v1/jobs               every job still remembered (newest last)
    GET    /v1/jobs/{id}          {"status": queued|running|ok|error|cancelled, "progress", "report", "error"}
    GET    /v1/jobs/{id}/events   server-sent events: "progress" (as ``--progress json``), then one "end"
    DELETE /v1/jobs/{id}          cancel; waits up to ~1.5 s for the run to stop and clean up

401 without the bearer token, 404 for an unknown job, 400 for a body that is not JSON or a bad config,
413 for a body over the limit, 409 to cancel a finished job, 503 when the queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from vmatte.errors import VmatteError
from vmatte.service import API_VERSION
from vmatte.service.jobs import JobFinished, JobManager, QueueFull, parse_job

log = logging.getLogger("vmatte.service")

CANCEL_WAIT_S = 1.5  # DELETE answers once the run has stopped, or after this long ("cancelling")
KEEPALIVE_S = 15.0  # an SSE comment this often, so proxies and clients see a live stream


class ApiError(HTTPException):
    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(status, message)
        self.extra = extra


def create_app(
    manager: JobManager, token: str, *, max_body: int = 1 << 20, engine_info: dict | None = None
) -> Starlette:
    """The ASGI app. ``engine_info`` is what health shows about the engine (no paths)."""
    from vmatte import __version__

    expected = token.encode()
    info = dict(engine_info or {})

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(
                401,
                "missing or wrong token" if header else "missing token",
                hint="send 'Authorization: Bearer TOKEN' (printed by vmatte serve, or its --token/VMATTE_TOKEN)",
            )

    def job_or_404(request: Request):
        job = manager.get(request.path_params["job_id"])
        if job is None:
            raise ApiError(404, f"no job {request.path_params['job_id']!r}", hint="GET /v1/jobs lists jobs")
        return job

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "api": API_VERSION, "version": __version__, **info, "queue": manager.counts()}
        )

    async def submit(request: Request) -> JSONResponse:
        authorize(request)
        body = await read_json(request, max_body)
        try:
            config = parse_job(body, manager.engine_config, preset=request.query_params.get("pipeline"))
        except VmatteError as err:
            raise ApiError(400, str(err), exit_code=err.exit_code) from None
        try:
            job = manager.submit(config)
        except QueueFull as exc:
            return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse(job.to_dict(), status_code=201, headers={"Location": f"/v1/jobs/{job.id}"})

    async def list_jobs(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"jobs": [j.to_dict() for j in manager.list()]})

    async def get_job(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse(job_or_404(request).to_dict())

    async def cancel_job(request: Request) -> JSONResponse:
        authorize(request)
        job = job_or_404(request)
        try:
            manager.cancel(job.id)
        except JobFinished as exc:
            raise ApiError(409, f"job {job.id} already finished ({exc})") from None
        loop = asyncio.get_running_loop()
        stopped = await loop.run_in_executor(None, job.done.wait, CANCEL_WAIT_S)
        return JSONResponse(job.to_dict(), status_code=200 if stopped else 202)

    async def events(request: Request) -> StreamingResponse:
        authorize(request)
        job = job_or_404(request)
        try:
            cursor = int(request.headers.get("last-event-id", "0"))
        except ValueError:
            cursor = 0
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        unwatch = job.watch(lambda: loop.call_soon_threadsafe(wake.set))

        async def stream():
            nonlocal cursor
            try:
                while True:
                    wake.clear()
                    new, finished = job.events_after(cursor)
                    for seq, event in new:
                        yield f"id: {seq}\nevent: progress\ndata: {json.dumps(event)}\n\n"
                        cursor = seq
                    if finished:
                        yield f"event: end\ndata: {json.dumps(job.to_dict())}\n\n"
                        return
                    try:
                        await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                unwatch()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def api_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"error": exc.detail, **getattr(exc, "extra", {})}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error (bug): {type(exc).__name__}"}, status_code=500)

    routes = [
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/jobs", submit, methods=["POST"]),
        Route("/v1/jobs", list_jobs, methods=["GET"]),
        Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/v1/jobs/{job_id}", cancel_job, methods=["DELETE"]),
        Route("/v1/jobs/{job_id}/events", events, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        # the server is stopping (SIGINT/SIGTERM): cancel jobs, which remove their temporaries as on Ctrl-C,
        # before uvicorn re-raises the signal
        await asyncio.get_running_loop().run_in_executor(None, manager.shutdown)

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: api_error, Exception: internal_error},
        lifespan=lifespan,
    )


async def read_json(request: Request, limit: int):
    """The request body parsed as JSON; 413 past ``limit`` bytes (checked while reading, so a client that
    lies about Content-Length or streams chunks cannot make the server buffer more), 400 if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"request body is {int(declared)} bytes; the limit is {limit}")
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
    if not body:
        raise ApiError(400, "empty request body", hint="send the run config as a JSON object")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON ({exc})") from None
