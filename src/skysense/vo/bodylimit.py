"""Request bodies: size limits and read timeouts enforced while the body streams in, and form
parsing whose spool files stay in the service's work directory.

:class:`BodyLimitMiddleware` wraps the ASGI ``receive`` channel, so every endpoint is covered
without reading the body first: a ``Content-Length`` above the limit is refused at the first
read, a chunked body as soon as its running total crosses the limit (413), and a body whose
next piece does not arrive within the read timeout gets 408. Both answers close the connection,
so the rest of the body is never read. The bytes of the bodies being received at one time are
capped too (503 beyond it), which bounds the spool files and memory of concurrent uploads.

:func:`read_form` parses ``multipart/form-data`` like Starlette, but file parts larger than
1 MiB roll over to anonymous temporary files in a folder of the work directory instead of the
system temporary directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from tempfile import SpooledTemporaryFile

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from skysense.errors import InputError

__all__ = [
    "BodyLimitMiddleware",
    "BodyTooLarge",
    "BodyTimeout",
    "BodyTooSlow",
    "ServerBusy",
    "read_form",
    "MIN_BODY_RATE_BYTES_S",
]

_CLOSE = {"Connection": "close"}

#: Slowest average rate (bytes/s) at which a request body may arrive, after a grace of one body
#: read timeout: 50 MB take at most 14 hours, while a client trickling bytes to hold a
#: connection open is dropped within seconds.
MIN_BODY_RATE_BYTES_S = 1024


class _BodyError(HTTPException):
    """A request body the server stops reading: the response closes the connection, since
    the rest of the body may still be on its way."""

    status: int

    def __init__(self, detail: str, headers: dict[str, str] | None = None):
        super().__init__(self.status, detail, headers={**_CLOSE, **(headers or {})})


class BodyTooLarge(_BodyError):
    """The request body is larger than the endpoint accepts (HTTP 413)."""

    status = 413

    def __init__(self, limit_bytes: int):
        super().__init__(f"request body exceeds the limit of {limit_bytes} bytes for this endpoint")


class BodyTimeout(_BodyError):
    """The client stopped sending the request body (HTTP 408)."""

    status = 408

    def __init__(self, timeout_s: float):
        super().__init__(f"no request body data received for {timeout_s:g} s; giving up")


class BodyTooSlow(_BodyError):
    """The request body arrives slower than the minimum average rate (HTTP 408)."""

    status = 408

    def __init__(self, rate_bytes_s: float):
        super().__init__(
            f"request body arrives slower than {rate_bytes_s:g} bytes/s on average; giving up"
        )


class ServerBusy(_BodyError):
    """Too many bytes of request bodies are being received at once (HTTP 503)."""

    status = 503

    def __init__(self):
        super().__init__(
            "the server is receiving too many uploads at once; retry later",
            headers={"Retry-After": "10"},
        )


class BodyLimitMiddleware:
    """ASGI middleware: per-endpoint body size limit, body read timeout, in-flight byte cap.

    Parameters
    ----------
    app : ASGI application
    limit_for : callable
        ``limit_for(path) -> int``: the largest body (bytes) accepted on ``path``.
    read_timeout_s : float
        Longest wait for the next piece of a body.
    in_flight_limit_bytes : int
        Bytes of all bodies being received at once.
    """

    def __init__(
        self,
        app,
        *,
        limit_for: Callable[[str], int],
        read_timeout_s: float,
        in_flight_limit_bytes: int,
    ):
        self.app = app
        self.limit_for = limit_for
        self.read_timeout_s = read_timeout_s
        self.in_flight_limit_bytes = in_flight_limit_bytes
        self.in_flight_bytes = 0  # only touched from the event loop: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else None
        received = 0
        done = False
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def limited_receive():
            nonlocal received, done
            if done:
                # The body is complete: later reads wait for the disconnect, with no timeout.
                return await receive()
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            # A gap timeout alone lets a client trickle one byte just inside every gap and hold
            # the connection for ever; the body must also keep an average rate after the
            # first read timeout's grace.
            rate_end = started + self.read_timeout_s + received / MIN_BODY_RATE_BYTES_S
            # A short floor still takes a piece that is already waiting (a late first read of a
            # complete body must not fail).
            wait = max(min(self.read_timeout_s, rate_end - loop.time()), 0.05)
            try:
                async with asyncio.timeout(wait):
                    message = await receive()
            except TimeoutError:
                if wait < self.read_timeout_s:
                    raise BodyTooSlow(MIN_BODY_RATE_BYTES_S) from None
                raise BodyTimeout(self.read_timeout_s) from None
            if message["type"] != "http.request":
                done = True
                return message
            size = len(message.get("body", b""))
            received += size
            self.in_flight_bytes += size
            if received > limit:
                raise BodyTooLarge(limit)
            if self.in_flight_bytes > self.in_flight_limit_bytes:
                raise ServerBusy()
            if not message.get("more_body", False):
                done = True
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.in_flight_bytes -= received


class _SpoolingMultiPartParser(MultiPartParser):
    """Starlette's multipart parser with its file spools in ``spool_dir``.

    Starlette creates ``SpooledTemporaryFile(max_size=1 MiB)`` without a folder argument, so
    larger parts would land in the system temporary directory; the spool is swapped for one
    in ``spool_dir`` as soon as the part's headers are read, before any data is written.
    """

    def __init__(self, *args, spool_dir: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self._spool_dir = str(spool_dir)

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None:
            spool = SpooledTemporaryFile(max_size=self.spool_max_size, dir=self._spool_dir)
            upload.file.close()
            upload.file = spool
            self._files_to_close_on_error[-1] = spool


async def read_form(request: Request, *, spool_dir: Path | None, max_part_size: int) -> FormData:
    """The form of a POST request (url-encoded or multipart); the caller closes it.

    Parameters
    ----------
    request : Request
    spool_dir : Path or None
        Folder for the spool files of large file parts (created when missing); None (an
        app without settings, e.g. in tests) keeps Starlette's default.
    max_part_size : int
        Largest non-file field (bytes).

    Raises
    ------
    InputError
        A malformed form (HTTP 400).
    """
    ctype = request.headers.get("content-type", "")
    if spool_dir is None or not ctype.startswith("multipart/form-data"):
        return await request.form(max_part_size=max_part_size)
    spool_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with aclosing(request.stream()) as stream:
            parser = _SpoolingMultiPartParser(
                request.headers, stream, max_part_size=max_part_size, spool_dir=spool_dir
            )
            return await parser.parse()
    except MultiPartException as exc:
        raise InputError(f"malformed multipart form: {exc.message}") from None
