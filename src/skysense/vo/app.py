"""The HTTP edge of the VO server: ``create_app(settings) -> Starlette``.

The lifespan opens the database backend (hardened for read-only serving), loads the async job
store and runs the periodic destruction of expired jobs; handlers reach them through
``request.app.state.backend``, ``request.app.state.settings`` and ``request.app.state.jobs``.
One exception-handler map turns every failure under ``/tap`` into a VOTable error document
(``QUERY_STATUS=ERROR``) with a fitting HTTP status. Every request body passes
:class:`~skysense.vo.bodylimit.BodyLimitMiddleware` (size limit per endpoint, read timeout);
:func:`stop_work` interrupts jobs and queries when the server is told to stop
(:mod:`skysense.vo.serve`).

Routes: ``/tap`` (sync, async/UWS, VOSI capabilities/availability/tables) plus the routes of the
optional modules :mod:`skysense.vo.web`, :mod:`skysense.vo.scs` and :mod:`skysense.vo.sia`
when they are installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from skysense.errors import QueryError, SkysenseError
from skysense.vo import adql, uws, vosi
from skysense.vo.backends import Backend, open_backend
from skysense.vo.bodylimit import BodyLimitMiddleware
from skysense.vo.settings import Settings
from skysense.vo.tap import sync_endpoint
from skysense.vo.votable import error_votable

__all__ = ["create_app", "body_limit_bytes", "stop_work", "OPTIONAL_MODULES"]

log = logging.getLogger(__name__)

#: Modules whose ``routes()`` are added when they can be imported.
OPTIONAL_MODULES = (
    "skysense.vo.scs",
    "skysense.vo.sia",
    "skysense.vo.datalink",
    "skysense.vo.web",
)


def _error_response(request: Request, message: str, status: int) -> Response:
    if request.url.path.startswith("/tap"):
        return Response(
            error_votable(message), status_code=status, media_type="application/x-votable+xml"
        )
    return PlainTextResponse(message, status_code=status)


async def _skysense_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, (uws.JobNotFound, vosi.TableNotFound)):
        status = 404
    else:
        status = 400
    return _error_response(request, str(exc), status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    response = _error_response(request, str(exc.detail), exc.status_code)
    if exc.headers:  # e.g. Connection: close after a refused body (the rest is never read)
        response.headers.update(exc.headers)
    return response


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client closed the connection while sending its body: nobody reads this answer, and
    # it is not a server fault worth a traceback in the log.
    log.info("client disconnected during the request body on %s", request.url.path)
    return PlainTextResponse("client disconnected", status_code=400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return _error_response(request, f"internal error: {type(exc).__name__}: {exc}", 500)


async def _tap_root(request: Request) -> Response:
    base = (request.app.state.settings.base_url or str(request.base_url)).rstrip("/")
    lines = [
        request.app.state.settings.title,
        "",
        "TAP 1.1 service:",
        *(f"  {base}/tap/{p}" for p in ("sync", "async", "capabilities", "availability", "tables")),
    ]
    return PlainTextResponse("\n".join(lines) + "\n")


def stop_work(app: Starlette) -> None:
    """Interrupt all work of a running app at once (on a stop signal, from any thread).

    Running async jobs stay queued for the next start; every running query is cancelled and
    new ones are refused, so the server's shutdown does not wait for them.
    """
    jobs = getattr(app.state, "jobs", None)
    if jobs is not None:
        jobs.interrupt()
    backend = getattr(app.state, "backend", None)
    if backend is not None:
        backend.cancel_all()


def body_limit_bytes(settings: Settings, path: str) -> int:
    """Largest request body accepted on ``path``: TAP queries and jobs take uploads, every
    other endpoint only form fields."""
    if path.startswith(("/tap/sync", "/tap/async")):
        return settings.tap_body_limit_bytes
    return settings.form_limit_bytes


def _optional_routes() -> list:
    routes = []
    for name in OPTIONAL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:
                raise  # the module exists but is broken: fail loudly
            continue
        routes.extend(module.routes())
    return routes


def create_app(settings: Settings, *, backend: Backend | None = None) -> Starlette:
    """Build the ASGI application.

    Parameters
    ----------
    settings : Settings
        Database, limits and texts.
    backend : Backend, optional
        An already open backend (tests); by default the lifespan opens ``settings.db``.
        Either way it is hardened for serving (memory cap, no file access) and closed at
        shutdown only when the app opened it.

    Returns
    -------
    starlette.applications.Starlette
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        own = backend is None
        db = open_backend(settings.db) if own else backend
        db.harden(
            memory_limit_mb=settings.memory_limit_mb,
            threads=settings.db_threads,
            spill_dir=settings.resolved_workdir / "spill",
            spill_limit_mb=settings.spill_limit_mb,
        )
        app.state.backend = db
        # Building the LALR parser takes about a second: pay it now, not inside the first
        # query's time limit.
        await asyncio.to_thread(adql.warm_up)
        jobs = uws.JobStore(app.state)
        await asyncio.to_thread(jobs.start)
        app.state.jobs = jobs

        async def purge_loop():
            while True:
                await asyncio.sleep(settings.purge_interval_s)
                try:
                    await asyncio.to_thread(jobs.purge_expired)
                except Exception:  # keep purging on the next round
                    log.exception("job purge failed")

        task = asyncio.create_task(purge_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(jobs.close)
            if own:
                db.close()

    routes = [
        Route("/tap", _tap_root, methods=["GET"]),
        Route("/tap/sync", sync_endpoint, methods=["GET", "POST"]),
        *uws.routes(),
        *vosi.routes(),
        *_optional_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(
                BodyLimitMiddleware,
                limit_for=lambda path: body_limit_bytes(settings, path),
                read_timeout_s=settings.body_timeout_s,
                in_flight_limit_bytes=settings.spool_limit_bytes,
            )
        ],
        exception_handlers={
            SkysenseError: _skysense_error,
            QueryError: _skysense_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
    )
    app.state.settings = settings
    return app
