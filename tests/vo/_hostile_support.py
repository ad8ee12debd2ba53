"""Helpers of the hostile-request suite (``test_vo_hostile.py``).

- hostile documents: VOTables whose data point outside themselves (``STREAM href``, entities,
  DTDs, XInclude), compression bombs, truncated streams, deep or wide documents;
- :class:`Intranet`: a tiny HTTP server on 127.0.0.1 and [::1] that serves a secret marker and
  records every request, standing in for the internal network a server must never reach;
- answer types and one checker of the invariants every answer must meet (no 5xx, no leaked
  file or intranet contents, an answer in time);
- raw-socket clients that stall halfway through a request.
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import gzip
import io
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

__all__ = [
    "FILE_MARKER",
    "INTRANET_SECRET",
    "PASSWD_MARKER",
    "Intranet",
    "AsyncRun",
    "RawAnswer",
    "flatten",
    "leaks",
    "is_refusal",
    "binary_stream",
    "binary2_stream",
    "fits_stream",
    "votable",
    "stream_votable",
    "entity_votable",
    "billion_laughs",
    "quadratic_blowup",
    "truncated_votable",
    "deep_votable",
    "wide_votable",
    "bomb",
    "raw_exchange",
    "raw_get",
    "open_sockets",
    "served",
    "form_body",
]

#: Written into a file the suite creates and references by file:// (never sent by a client).
FILE_MARKER = "SKYSENSE-FILE-MARKER-" + secrets.token_hex(6)
#: Served only by the intranet server.
INTRANET_SECRET = "SKYSENSE-INTRANET-SECRET-" + secrets.token_hex(6)
#: The first line of /etc/passwd on every Unix.
PASSWD_MARKER = "root:x:0:0"

_NS = 'version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"'


# ---------------------------------------------------------------------------------------------
# documents


def binary_stream(text: str) -> bytes:
    """One row of one ``char[*]`` column in the VOTable BINARY serialisation."""
    raw = text.encode()
    return struct.pack(">i", len(raw)) + raw


def binary2_stream(text: str) -> bytes:
    """One row of one ``char[*]`` column in BINARY2 (a null-flag byte, then the value)."""
    return b"\x00" + binary_stream(text)


def fits_stream(text: str) -> bytes:
    """A FITS file whose first extension is a one-row table holding ``text``."""
    from astropy.io import fits

    col = fits.Column(name="s", format=f"{len(text)}A", array=[text])
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(buf)
    return buf.getvalue()


def votable(fields: str, data: str, *, prolog: str = "") -> bytes:
    """A VOTable document with one table (``fields``: FIELD elements; ``data``: DATA body)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}'
        f"<VOTABLE {_NS}>\n<RESOURCE><TABLE>\n{fields}\n<DATA>{data}</DATA>\n"
        "</TABLE></RESOURCE></VOTABLE>\n"
    ).encode()


_CHAR_FIELD = '<FIELD name="s" datatype="char" arraysize="*"/>'


def stream_votable(serialisation: str, href: str, *, encoding: str | None = None) -> bytes:
    """A VOTable whose BINARY, BINARY2 or FITS data is an external ``STREAM href``."""
    enc = f' encoding="{encoding}"' if encoding else ""
    extnum = ' extnum="1"' if serialisation == "FITS" else ""
    data = f'<{serialisation}{extnum}><STREAM href="{href}"{enc}/></{serialisation}>'
    return votable(_CHAR_FIELD, data)


def entity_votable(dtd: str, cell: str) -> bytes:
    """A TABLEDATA VOTable with a document type declaration and one cell (``cell`` raw)."""
    return votable(
        _CHAR_FIELD, f"<TABLEDATA><TR><TD>{cell}</TD></TR></TABLEDATA>", prolog=f"{dtd}\n"
    )


def billion_laughs(levels: int = 10) -> bytes:
    """The classic exponential entity expansion (10 levels: 10**9 copies of "lol")."""
    ents = ['<!ENTITY lol0 "lol">']
    for i in range(1, levels):
        ents.append(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">')
    dtd = "<!DOCTYPE VOTABLE [\n" + "\n".join(ents) + "\n]>"
    return entity_votable(dtd, f"&lol{levels - 1};")


def quadratic_blowup(size: int = 100_000, refs: int = 10_000) -> bytes:
    """One large internal entity referenced many times (no nesting, size * refs characters)."""
    dtd = f'<!DOCTYPE VOTABLE [<!ENTITY big "{"x" * size}">]>'
    return entity_votable(dtd, "&big;" * refs)


def truncated_votable(serialisation: str, cut: int) -> bytes:
    """An inline base64 BINARY/BINARY2 stream of three ``int`` rows, cut to ``cut`` bytes."""
    rows = b""
    for value in (1, 2, 3):
        rows += (b"\x00" if serialisation == "BINARY2" else b"") + struct.pack(">i", value)
    payload = base64.b64encode(rows[:cut]).decode()
    data = f'<{serialisation}><STREAM encoding="base64">{payload}</STREAM></{serialisation}>'
    return votable('<FIELD name="id" datatype="int"/>', data)


def deep_votable(depth: int) -> bytes:
    """A VOTable with ``depth`` nested GROUP elements before its FIELD."""
    groups = "<GROUP>" * depth + "</GROUP>" * depth
    return votable(
        groups + '<FIELD name="id" datatype="int"/>', "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>"
    )


def wide_votable(n_fields: int, *, name: str | None = None) -> bytes:
    """A one-row VOTable with ``n_fields`` int columns (all named ``name`` when given)."""
    fields = "".join(
        f'<FIELD name="{name if name is not None else f"c{i}"}" datatype="int"/>'
        for i in range(n_fields)
    )
    row = "<TR>" + "<TD>1</TD>" * n_fields + "</TR>"
    return votable(fields, f"<TABLEDATA>{row}</TABLEDATA>")


def bomb(kind: str, n_bytes: int) -> bytes:
    """A compressed VOTable (``gzip`` or ``bz2``) that expands to about ``n_bytes``."""
    cell = "<TR><TD>" + "0" * 1000 + "</TD></TR>"
    doc = votable(_CHAR_FIELD, "<TABLEDATA>" + cell * (n_bytes // len(cell)) + "</TABLEDATA>")
    return gzip.compress(doc, 9) if kind == "gzip" else bz2.compress(doc, 9)


def form_body(total: int, prefix: bytes = b"", *, chunk: int = 1 << 16):
    """A url-encoded form body of ``total`` bytes as a generator of ``chunk``-byte pieces:
    ``prefix``, then fields ``&p=aaa...`` of one piece each, so that neither a per-field
    size limit nor a field count limit stops it before the body size limit does. httpx
    sends a generator with ``Transfer-Encoding: chunked``; ``b"".join`` it for a body with
    Content-Length."""

    def gen():
        yield prefix
        sent = len(prefix)
        block = b"&p=" + b"a" * (chunk - 3)
        while sent < total:
            piece = block[: min(chunk, total - sent)]
            sent += len(piece)
            yield piece

    return gen()


# ---------------------------------------------------------------------------------------------
# the intranet


class Intranet:
    """HTTP servers on 127.0.0.1 and [::1] that serve :data:`INTRANET_SECRET` in every form a
    VOTable reader might ask for, and record each request (``hits``)."""

    def __init__(self):
        self.hits: list[str] = []
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self.port4 = self._start(socket.AF_INET, "127.0.0.1")
        self.port6 = self._start(socket.AF_INET6, "::1")

    def _start(self, family: int, host: str) -> int | None:
        intranet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with intranet._lock:
                    intranet.hits.append(f"{host} {self.path}")
                body = intranet.body(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        try:
            server = Server((host, 0), Handler)
        except OSError:  # no IPv6 loopback here: hrefs to it then simply fail to connect
            return None
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server.server_address[1]

    @staticmethod
    def body(path: str) -> bytes:
        if path.endswith(".bin"):
            return binary_stream(INTRANET_SECRET)
        if path.endswith(".bin2"):
            return binary2_stream(INTRANET_SECRET)
        if path.endswith(".fits"):
            return fits_stream(INTRANET_SECRET)
        if path.endswith(".vot"):
            return entity_votable("", INTRANET_SECRET)
        if path.endswith(".dtd"):
            return f'<!ENTITY secret "{INTRANET_SECRET}">'.encode()
        return INTRANET_SECRET.encode()

    def url(self, path: str, *, ipv6: bool = False, host: str | None = None) -> str:
        if ipv6:
            return f"http://[::1]:{self.port6 or 9}/{path}"
        return f"http://{host or '127.0.0.1'}:{self.port4}/{path}"

    def hit_count(self) -> int:
        with self._lock:
            return len(self.hits)

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


# ---------------------------------------------------------------------------------------------
# answers


@dataclass
class AsyncRun:
    """Everything an async job answered: the creation response, the job document once the
    job ended (or gave up waiting), and its stored result or error document."""

    created: httpx.Response
    job: httpx.Response | None = None
    stored: httpx.Response | None = None
    phase: str | None = None


@dataclass
class RawAnswer:
    """What a raw socket read back: ``data`` and whether the server closed the connection
    (``closed``) within the wait."""

    data: bytes
    closed: bool

    @property
    def status(self) -> int | None:
        first = self.data.split(b"\r\n", 1)[0].split()
        if len(first) >= 2 and first[0].startswith(b"HTTP/") and first[1].isdigit():
            return int(first[1])
        return None


def flatten(answer) -> list:
    """The list of httpx.Response / RawAnswer objects inside a case's answer."""
    if isinstance(answer, (list, tuple)):
        return [a for item in answer for a in flatten(item)]
    if isinstance(answer, AsyncRun):
        return [a for a in (answer.created, answer.job, answer.stored) if a is not None]
    return [answer]


def _text(item) -> str:
    data = item.data if isinstance(item, RawAnswer) else item.content
    return data.decode("utf-8", "replace")


def leaks(item) -> list[str]:
    """The markers that appear in an answer (file contents or intranet answers)."""
    text = _text(item)
    return [m for m in (FILE_MARKER, INTRANET_SECRET, PASSWD_MARKER) if m in text]


def _error_document(resp: httpx.Response) -> bool:
    text = resp.text
    return 'value="ERROR"' in text or 'name="Error"' in text


def is_refusal(answer) -> bool:
    """True when the server refused the request: a 4xx, a DAL error document (SCS and SIA
    answer errors with HTTP 200), an async job ending in ERROR, or a raw connection closed
    or answered with a 4xx."""
    if isinstance(answer, AsyncRun):
        if 400 <= answer.created.status_code < 500:
            return True
        return answer.phase == "ERROR"
    if isinstance(answer, RawAnswer):
        return answer.closed and (answer.status is None or 400 <= answer.status < 500)
    if isinstance(answer, (list, tuple)):
        return any(is_refusal(a) for a in answer)
    if 400 <= answer.status_code < 500:
        return True
    return answer.status_code == 200 and _error_document(answer)


# ---------------------------------------------------------------------------------------------
# raw sockets


def raw_exchange(
    port: int, parts: list[bytes], *, pause_s: float = 0.0, wait_s: float
) -> RawAnswer:
    """Send ``parts`` (``pause_s`` apart), then read until the server closes or ``wait_s``
    (counted from the connection) runs out."""
    start = time.monotonic()
    deadline = start + wait_s
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        for i, part in enumerate(parts):
            if i and pause_s:
                time.sleep(pause_s)
            if time.monotonic() > deadline:
                break
            try:
                sock.sendall(part)
            except OSError:  # the server closed the connection already: that is an answer
                return RawAnswer(data, closed=True)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return RawAnswer(data, closed=False)
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return RawAnswer(data, closed=False)
            except OSError:
                return RawAnswer(data, closed=True)
            if not chunk:
                return RawAnswer(data, closed=True)
            data += chunk


def raw_get(port: int, target: str, *, wait_s: float) -> RawAnswer:
    """GET ``target`` (path and query, sent as they are: httpx refuses URLs this long)."""
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    return raw_exchange(port, [head], wait_s=wait_s)


@contextlib.contextmanager
def open_sockets(port: int, n: int, first: bytes):
    """``n`` connections that each sent ``first`` and then stall (closed on exit)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            with contextlib.suppress(OSError):
                s.sendall(first)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def served(app, settings):
    """Serve ``app`` on 127.0.0.1:<free port> in a daemon thread with the production uvicorn
    configuration (:func:`skysense.vo.serve.server_config`: header deadline, keep-alive
    timeout, connection limit); yields the base URL."""
    import uvicorn

    from skysense.vo.serve import server_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
