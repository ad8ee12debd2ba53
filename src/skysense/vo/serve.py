"""Running the VO server: uvicorn with connection limits, a header deadline and a firm stop.

- :func:`bind_socket` binds the listening socket before anything is printed, so a port in use
  is a one-line :class:`~skysense.errors.ConfigError`.
- :func:`server_config` sets uvicorn's keep-alive timeout, connection limit, h11 event size
  and graceful-shutdown timeout from :class:`~skysense.vo.settings.Settings`, and picks an
  HTTP protocol class with a *header deadline*: uvicorn closes idle keep-alive connections
  but has no limit on the time (or bytes) a client may take to send a request's headers, so a
  client sending half a header line and stalling would hold its connection forever.
- :class:`SkysenseServer` stops within a few seconds on SIGTERM/SIGINT in every state: it
  cancels the running database queries at once, lets uvicorn finish the responses it can
  (``timeout_graceful_shutdown``), closes the database, and if worker threads are still busy
  after :data:`HARD_STOP_S` (a runaway pure-Python computation cannot be interrupted) it ends
  the process with ``os._exit``, which also releases the DuckDB file lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

import uvicorn

from skysense.errors import ConfigError
from skysense.vo.settings import Settings

__all__ = [
    "HARD_STOP_S",
    "MAX_HEADER_BYTES",
    "SkysenseServer",
    "bind_socket",
    "http_protocol_class",
    "server_config",
    "serve_settings",
    "serve_database",
]

#: Seconds after a stop signal at which a process with busy worker threads is ended.
HARD_STOP_S = 3.0
#: Seconds uvicorn waits for in-flight responses after a stop signal.
GRACEFUL_S = 2.0
#: Largest request head (request line plus headers) accepted, bytes.
MAX_HEADER_BYTES = 64 * 1024


def _plain_response(status: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


_TIMEOUT_RESPONSE = _plain_response("408 Request Timeout", "request headers not sent in time")
_TOO_LARGE_RESPONSE = _plain_response(
    "431 Request Header Fields Too Large", f"request headers exceed {MAX_HEADER_BYTES} bytes"
)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6, as ``host`` resolves).

    Raises
    ------
    ConfigError
        The address is in use, not local, or not allowed.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve {host!r}: {exc.strerror}", key="--host") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Allows a restart while old connections sit in TIME_WAIT; a live listener still
        # makes bind() fail on Linux.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = f"port {port} on {host} is already in use (another server running?)"
        else:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise ConfigError(message, key="--port") from None
    sock.set_inheritable(True)
    return sock


class _HeaderDeadline:
    """Mixin for uvicorn's HTTP protocol classes: a deadline and a size cap on request heads.

    The deadline starts when the connection opens and again when the first byte of a new
    request arrives on a kept-alive connection; it ends when the head is complete (uvicorn then
    holds a cycle whose response is not complete). Trickling bytes does not extend it.
    """

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_timer = None
        self._head_bytes = 0
        self._arm_head_timer()

    def connection_lost(self, exc) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_expired)

    def _disarm_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing() and self._waiting_for_head():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            self._arm_head_timer()
        super().data_received(data)
        if self.transport.is_closing():
            return
        if not self._waiting_for_head():
            self._disarm_head_timer()
            return
        # Still no complete head after these bytes (one read may also hold body bytes of a
        # request whose head completed, which is why the count comes after parsing).
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEADER_BYTES:
            self._disarm_head_timer()
            self.transport.write(_TOO_LARGE_RESPONSE)
            self.transport.close()


def http_protocol_class(header_timeout_s: float) -> type:
    """uvicorn's fastest available HTTP protocol class with the header deadline added."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools is optional in uvicorn
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    return type(
        f"Deadline{base.__name__}",
        (_HeaderDeadline, base),
        {"header_timeout_s": float(header_timeout_s)},
    )


def server_config(app, settings: Settings, **kwargs) -> uvicorn.Config:
    """uvicorn configuration with the connection limits of ``settings``.

    ``kwargs`` go to :class:`uvicorn.Config` (``host``, ``port``, ``log_level`` ...).
    """
    kwargs.setdefault("log_level", "warning")
    return uvicorn.Config(
        app,
        http=http_protocol_class(settings.header_timeout_s),
        timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)),
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=max(1, round(GRACEFUL_S)),
        lifespan="on",
        **kwargs,
    )


class SkysenseServer(uvicorn.Server):
    """uvicorn's server with a firm stop (see the module docstring).

    Parameters
    ----------
    config : uvicorn.Config
    on_stop : callable, optional
        Called (in a helper thread) as soon as a stop signal arrives, e.g. the backend's
        ``cancel_all``.
    hard_stop_s : float
        Seconds after the signal at which a process still alive is ended with ``os._exit``.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_stop: Callable[[], None] | None = None,
        hard_stop_s: float = HARD_STOP_S,
    ):
        super().__init__(config)
        self.on_stop = on_stop
        self.hard_stop_s = hard_stop_s
        self.stopped_by_signal = False

    @contextlib.contextmanager
    def capture_signals(self):
        # Unlike uvicorn, the signal is not raised again after the shutdown: the CLI reports
        # the stop in one line and exits normally.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig, frame) -> None:
        if self.should_exit:  # a second signal: stop without waiting for anything
            self.force_exit = True
            _hard_exit("skysense: stopped (forced)")
        self.should_exit = True
        self.stopped_by_signal = True
        threading.Thread(target=self._stop_work, name="skysense-stop", daemon=True).start()

    def _stop_work(self) -> None:
        deadline = time.monotonic() + self.hard_stop_s
        if self.on_stop is not None:
            try:
                self.on_stop()
            except Exception as exc:  # the hard stop below still ends the process
                print(f"skysense: cancelling queries failed: {exc}", file=sys.stderr, flush=True)
        # A daemon thread: if the process ends before the deadline, this wait simply dies
        # with it; otherwise busy worker threads would keep it (and the DuckDB lock) alive.
        time.sleep(max(0.0, deadline - time.monotonic()))
        _hard_exit("skysense: stopped (busy work abandoned after the stop signal)")


def serve_settings(
    db: str,
    *,
    title: str | None = None,
    base_url: str | None = None,
    timeout_s: float | None = None,
    memory_limit_mb: int | None = None,
    maxrec: int | None = None,
    maxrec_hard: int | None = None,
    upload_limit_mb: int | None = None,
    max_connections: int | None = None,
    spill_limit_mb: int | None = None,
    jobs_storage_mb: int | None = None,
    **extra,
) -> Settings:
    """The :class:`~skysense.vo.settings.Settings` of a server of ``db`` with these limits.

    Options left ``None`` (or an empty title, base URL or time limit) keep the defaults of
    ``Settings``; ``extra`` are further ``Settings`` fields and win over the options.

    Parameters
    ----------
    db : str - DuckDB file or ``postgresql://`` URL
    title : str - service title; base_url : str - public URL behind a proxy
    timeout_s : float, s - per-query time limit
    memory_limit_mb, spill_limit_mb : int, MB - database memory cap; disk for larger queries
    maxrec, maxrec_hard : int - rows when the client gives no MAXREC; the MAXREC ceiling
    upload_limit_mb : int, MB - largest accepted upload
    max_connections : int - connections served at once
    jobs_storage_mb : int, MB - disk of all async jobs (one job may use all of it, never more)
    """
    kwargs: dict = {"db": db}
    for key, value in (("title", title), ("base_url", base_url), ("query_timeout_s", timeout_s)):
        if value:
            kwargs[key] = value
    for key, value, scale in (
        ("memory_limit_mb", memory_limit_mb, 1),
        ("maxrec_default", maxrec, 1),
        ("maxrec_hard", maxrec_hard, 1),
        ("upload_limit_bytes", upload_limit_mb, 1_000_000),
        ("max_connections", max_connections, 1),
        ("spill_limit_mb", spill_limit_mb, 1),
        ("jobs_storage_limit_bytes", jobs_storage_mb, 1_000_000),
    ):
        if value is not None:
            kwargs[key] = value * scale
    if "jobs_storage_limit_bytes" in kwargs:
        kwargs["job_storage_limit_bytes"] = min(
            Settings.job_storage_limit_bytes, kwargs["jobs_storage_limit_bytes"]
        )
    return Settings(**{**kwargs, **extra})


def serve_database(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Serve ``settings.db`` on ``host:port`` until a stop signal (blocking).

    The port is bound and the database opened first, so that either failing raises (a
    one-line ``ConfigError``) before anything is announced; then ``echo`` gets the service's
    addresses, one line each, and the server runs.
    """
    from skysense.vo.app import create_app, stop_work
    from skysense.vo.backends import open_backend

    echo = echo or (lambda line: print(line, flush=True))
    sock = bind_socket(host, port)
    try:
        backend = open_backend(settings.db, create=False)
    except BaseException:
        sock.close()
        raise
    try:
        app = create_app(settings, backend=backend)
        server = SkysenseServer(server_config(app, settings), on_stop=lambda: stop_work(app))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = settings.base_url or f"http://{shown}:{port}/"
        echo(f"skysense VO serving {settings.db}")
        echo(f"  web pages: {url}")
        echo(f"  TAP:       {url.rstrip('/')}/tap")
        echo("  (Ctrl-C to stop)")
        server.run(sockets=[sock])
    finally:
        sock.close()
        backend.close()


def _hard_exit(message: str) -> None:
    with contextlib.suppress(Exception):
        print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
    os._exit(0)
