"""The REST API of a running experiment (the seeds' Tune server), as an ASGI application.

Built on Starlette, so a Starlette or FastAPI service can mount it next to its own routes
(``app.mount("/tune", run.asgi_app())``); ``RunConfig(with_server=True)`` serves it with
uvicorn on the experiment's own event loop.

==================  ===================================================================
``GET /trials``      ``{"trials": [trial, ...]}``
``GET /trials/<id>`` ``{"trial": trial}``
``POST /trials``     add a trial: ``{"name": ..., "spec": {"config": {...}}}`` ->
                     201 ``{"trial": trial}``
``PUT /trials/<id>`` stop it -> ``{"trial": trial}`` once it has ended
``GET /events``      server-sent events: ``event: <kind>`` / ``data: <json>``, the events
                     of :meth:`atune.LiveRun.events`
==================  ===================================================================

A trial is ``{"id", "name", "status", "config", "last_result", "path", "error"}``. Errors
are JSON ``{"error": "..."}`` with a 4xx status (bad JSON 400, unknown trial 404, wrong
method 405, missing or wrong token 401), never a 500 for bad input.
"""

from __future__ import annotations

import json
import math
import secrets
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from atune.errors import ConfigError, UnknownTrialError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from atune.live import LiveEvent, LiveRun, TrialSnapshot

__all__ = ["LOCAL_HOSTS", "check_binding", "create_app", "trial_json"]

#: Hosts that only this machine can reach: served without a token.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve the API beyond this machine without a token."""
    if host not in LOCAL_HOSTS and not token:
        raise ConfigError(
            f"`server_host` {host!r} makes the experiment's REST API reachable from other "
            "machines, which may then stop and add trials: set `server_token` (every request "
            "must then carry 'Authorization: Bearer <token>'), or keep server_host='127.0.0.1'"
        )


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf as strings, numpy scalars as numbers, other objects as repr."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return _clean(item())
    return repr(value)


def _error_text(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def trial_json(trial: TrialSnapshot) -> dict[str, Any]:
    return {
        "id": trial.trial_id,
        "name": trial.name,
        "status": trial.status,
        "config": _clean(trial.config),
        "last_result": _clean(trial.last_result),
        "path": trial.path,
        "error": _error_text(trial.error),
    }


def event_json(event: LiveEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "trial_id": event.trial_id,
        "result": _clean(event.result),
        "time": event.time,
        "dropped": event.dropped,
        "checkpoint": event.checkpoint,
        "error": _error_text(event.error),
    }


def create_app(run: LiveRun, token: str | None = None) -> Starlette:
    """The ASGI application serving ``run``'s REST API (``token``: required bearer token)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def find(trial_id: str) -> TrialSnapshot | None:
        for trial in run.trials:
            if trial.trial_id == trial_id:
                return trial
        return None

    async def list_trials(request: Request) -> Response:
        return JSONResponse({"trials": [trial_json(t) for t in run.trials]})

    async def get_trial(request: Request) -> Response:
        trial_id = request.path_params["trial_id"]
        trial = find(trial_id)
        if trial is None:
            return error(404, f"no trial {trial_id!r} in this experiment")
        return JSONResponse({"trial": trial_json(trial)})

    async def add_trial(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            return error(400, f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return error(400, 'the body must be {"name": ..., "spec": {"config": {...}}}')
        spec = body.get("spec", {})
        config = spec.get("config", {}) if isinstance(spec, dict) else None
        if not isinstance(config, dict):
            return error(400, '"spec" must be {"config": {...}}, a dict of parameter values')
        try:
            trial_id = await run.add_trial(config)
        except UnknownTrialError as exc:
            return error(409, str(exc))
        trial = find(trial_id)
        assert trial is not None
        return JSONResponse({"trial": trial_json(trial)}, status_code=201)

    async def stop_trial(request: Request) -> Response:
        trial_id = request.path_params["trial_id"]
        try:
            await run.stop_trial(trial_id)
        except UnknownTrialError as exc:
            return error(404 if find(trial_id) is None else 409, str(exc))
        trial = find(trial_id)
        assert trial is not None
        return JSONResponse({"trial": trial_json(trial)})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            async for event in run.events():
                data = json.dumps(event_json(event))
                yield f"event: {event.kind}\ndata: {data}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail))

    routes = [
        Route("/trials", list_trials, methods=["GET"]),
        Route("/trials", add_trial, methods=["POST"]),
        Route("/trials/{trial_id}", get_trial, methods=["GET"]),
        Route("/trials/{trial_id}", stop_trial, methods=["PUT"]),
        Route("/events", events, methods=["GET"]),
    ]
    middleware = [Middleware(_BearerToken, token=token)] if token else []
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error}
    )


class _BearerToken:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not secrets.compare_digest(given, self._expected):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"error": "missing or wrong 'Authorization: Bearer <token>' header"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def serve(app: Any, host: str, port: int, on_bound: Any) -> None:
    """Serve ``app`` with uvicorn on this event loop until cancelled; ``on_bound(port)``
    once it listens. It installs no signal handlers: Ctrl-C stays the host's."""
    import contextlib

    import anyio
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot serve the REST API on {host}:{port} ({exc.strerror or exc}); pass "
            "another RunConfig(server_port=...), or 0 for any free port"
        ) from exc
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = _Server(config)
    ended = anyio.Event()

    async def run_server() -> None:
        # Shielded: cancelling serve() asks uvicorn to shut down (below) and waits for
        # it, rather than tearing its tasks down mid-way (which leaves it unusable).
        with anyio.CancelScope(shield=True):
            try:
                await server.serve([sock])
            finally:
                ended.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            while not server.started and not ended.is_set():
                await anyio.sleep(0.01)
            if ended.is_set():
                raise ConfigError(f"the REST API server on {host}:{port} did not start")
            on_bound(sock.getsockname()[1])
            try:
                await anyio.sleep_forever()
            finally:
                server.should_exit = True
                server.force_exit = True  # open event streams end with the experiment
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await ended.wait()
    finally:
        sock.close()
