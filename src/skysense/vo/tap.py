"""TAP 1.1 synchronous queries, request parameters and table uploads.

- :func:`run_adql` / :func:`run_adql_sync`: ADQL text -> :class:`QueryResult` (the one path every
  query takes: TAP sync and async, the web pages, cone search). The catalog comes from the
  backend, uploads appear as ``TAP_UPLOAD.<name>``, the translator adds the MAXREC+1 probe, the
  backend runs the SQL in a worker thread under the time limit.
- :func:`read_params`: the request's parameters, names case-insensitive (TAP 1.1 section 2.3),
  from the query string and a urlencoded or multipart body.
- :func:`resolve_uploads`: ``UPLOAD=name,param:part`` (inline multipart) and
  ``UPLOAD=name,http(s)://...`` (fetched with a size limit) -> :class:`UploadTable` objects.
- :func:`sync_endpoint`: ``/tap/sync`` (GET and POST).
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import re
import socket
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict, Unpack

import anyio.to_thread
import numpy as np
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from skysense.errors import InputError, QueryError
from skysense.vo.backends import QueryHandle, UploadTable, quote_ident
from skysense.vo.bodylimit import read_form
from skysense.vo.formats import OutputFormat, resolve_format, serialise
from skysense.vo.limits import Deadline
from skysense.vo.publish import adql_column_name, detect_radec
from skysense.vo.schema import ColumnInfo, SchemaCatalog, TableInfo
from skysense.vo.settings import Settings
from skysense.vo.upload_guard import MAX_UPLOAD_TABLES, UPLOAD_MEMORY_LIMIT_BYTES
from skysense.vo.votable import read_votable, result_votable_chunks

__all__ = [
    "QueryOptions",
    "QueryResult",
    "StreamedResult",
    "column_infos",
    "stream_adql",
    "TapParams",
    "run_adql",
    "run_adql_sync",
    "read_params",
    "parse_maxrec",
    "parse_upload_param",
    "make_upload",
    "fetch_url",
    "resolve_uploads",
    "sync_endpoint",
    "check_query_params",
    "query_request",
    "run_adql_serialised",
]

_UPLOAD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Longest UPLOAD table name: PostgreSQL cuts identifiers at 63 bytes, and the temporary table
#: is ``_tap_upload_<name>``, so longer names could collide.
MAX_UPLOAD_NAME = 48
_MAX_FORM_FIELD_BYTES = 1 << 20


class QueryOptions(TypedDict, total=False):
    """The options of one query (:func:`run_adql_sync`, :func:`stream_adql`, :func:`run_adql`).

    Attributes
    ----------
    maxrec : int, optional
        Row limit (default ``settings.maxrec_default``; never above ``settings.maxrec_hard``).
    uploads : sequence of UploadTable
        Tables visible as ``TAP_UPLOAD.<name>`` (default none).
    timeout_s : float, optional
        Time limit (default ``settings.query_timeout_s``). It covers parsing and translation
        too: they stop once it has passed, and the database gets what remains.
    handle : QueryHandle, optional
        Lets another thread abort the query (translation included).
    deadline : Deadline, optional
        A clock already started for this request (e.g. when its uploads were read under it);
        replaces ``timeout_s``.
    """

    maxrec: int | None
    uploads: Sequence[UploadTable]
    timeout_s: float | None
    handle: QueryHandle | None
    deadline: Deadline | None


@dataclass
class QueryResult:
    """Rows and column metadata of one query.

    ``table`` is already cut at MAXREC; ``overflow`` says rows were cut.
    """

    table: pa.Table
    columns: list  # list[OutputColumn] (name, info: ColumnInfo)
    overflow: bool

    @property
    def column_infos(self) -> list[ColumnInfo]:
        """FIELD metadata: each output column's ColumnInfo under its output name."""
        return column_infos(self.columns)


class StreamedResult:
    """Rows of one running query as record batches, cut at MAXREC as they pass.

    Iterate :attr:`batches` once; :attr:`overflow` is known after the last batch.
    """

    def __init__(self, stream, columns: list, maxrec: int, probe: bool):
        self.columns = columns
        names = [c.name for c in columns]
        schema = stream.schema
        if len(names) == len(schema) and schema.names != names:
            # Output names come from the translation (the SQL may alias them for safety).
            schema = pa.schema([f.with_name(n) for f, n in zip(schema, names)])
        self.schema = schema
        self.overflow = False
        self._stream = stream
        self._maxrec = maxrec
        self._probe = probe

    @property
    def column_infos(self) -> list[ColumnInfo]:
        """FIELD metadata: each output column's ColumnInfo under its output name."""
        return column_infos(self.columns)

    @property
    def batches(self) -> Iterator[pa.RecordBatch]:
        left = self._maxrec if self._probe else None
        for batch in self._stream:
            if left is not None and batch.num_rows > left:
                # The translator's MAXREC+1 probe row: the result was cut.
                self.overflow = True
                batch = batch.slice(0, left)
            if left is not None:
                left -= batch.num_rows
            yield pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
            if self.overflow:
                return


def column_infos(columns) -> list[ColumnInfo]:
    """The FIELD metadata of a translation's output columns (each with an ``info``)."""
    return [replace(col.info, name=col.name) for col in columns]


@dataclass
class TapParams:
    """Request parameters: ``values`` keyed by lower-case name (last value wins, except
    ``upload`` whose values are all kept in ``uploads``); ``files`` are multipart file parts
    keyed by their (case-sensitive) field name, as bytes."""

    values: dict[str, str] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name.lower(), default)


def parse_maxrec(value: str | None, *, default: int, hard: int) -> int:
    """MAXREC as an int in [0, hard] (``default`` when absent).

    Raises
    ------
    QueryError
        When not a non-negative integer.
    """
    if value is None or value.strip() == "":
        return min(default, hard)
    try:
        maxrec = int(value.strip())
    except ValueError:
        raise QueryError(f"MAXREC must be a non-negative integer, got {value!r}") from None
    if maxrec < 0:
        raise QueryError(f"MAXREC must be a non-negative integer, got {value!r}")
    return min(maxrec, hard)


def run_adql_sync(state, adql: str, **options: Unpack[QueryOptions]) -> QueryResult:
    """Translate and run one ADQL query (blocking; call from a worker thread).

    Parameters
    ----------
    state : object
        Has ``backend`` (:class:`~skysense.vo.backends.Backend`) and ``settings``
        (:class:`~skysense.vo.settings.Settings`), e.g. ``request.app.state``.
    adql : str
        The query.
    **options
        :class:`QueryOptions`: ``maxrec``, ``uploads``, ``timeout_s``, ``handle``,
        ``deadline``.

    Raises
    ------
    QueryError
        Syntax errors (with line and column), unknown tables/columns, database errors,
        timeouts.
    """
    with stream_adql(state, adql, **options) as result:
        table = pa.Table.from_batches(list(result.batches), schema=result.schema)
    return QueryResult(table=table, columns=result.columns, overflow=result.overflow)


@contextlib.contextmanager
def stream_adql(state, adql: str, **options: Unpack[QueryOptions]) -> Iterator[StreamedResult]:
    """:func:`run_adql_sync`, with the rows read from the database batch by batch while the
    block runs (blocking; a worker thread). Parameters and errors as :func:`run_adql_sync`;
    errors met while batches are read are :class:`~skysense.errors.QueryError` too (a time
    limit one names the whole limit)."""
    from skysense.vo.backends import QueryTimeout

    translation, maxrec, limit_s, deadline = _translate(state, adql, options)
    uploads, handle = options.get("uploads", ()), options.get("handle")
    remaining = deadline.remaining()
    try:
        with state.backend.query_stream(
            translation.sql,
            uploads=uploads,
            aux=translation.aux,
            # What is left of the limit (at least a millisecond: PostgreSQL reads 0 as none).
            timeout_s=None if remaining is None else max(remaining, 0.001),
            handle=handle,
        ) as stream:
            yield StreamedResult(
                stream, list(translation.columns), maxrec, translation.overflow_probe
            )
    except QueryTimeout:
        # Name the limit the user knows, not the remainder the database was given.
        raise QueryTimeout(f"query exceeded the time limit of {limit_s:g} s") from None


def _translate(state, adql: str, options: QueryOptions):
    """The translation of one query, its MAXREC, its whole time limit and its clock."""
    from skysense.vo.backends import QueryTimeout
    from skysense.vo.sql import translate

    unknown = sorted(set(options) - QueryOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"unknown query option(s): {', '.join(unknown)}")
    maxrec = options.get("maxrec")
    uploads = options.get("uploads", ())
    timeout_s = options.get("timeout_s")
    handle = options.get("handle")
    deadline = options.get("deadline")
    settings = state.settings
    backend = state.backend
    if not adql or not adql.strip():
        raise QueryError("QUERY is empty")
    limit_s = settings.query_timeout_s if timeout_s is None else timeout_s
    # One clock for the whole request: parsing and translation spend from the same budget
    # as the database.
    if deadline is None:
        deadline = Deadline(
            limit_s,
            error=QueryTimeout,
            aborted=None if handle is None else (lambda: handle.cancelled),
        )
    else:
        limit_s = deadline.seconds
    maxrec = settings.maxrec_default if maxrec is None else maxrec
    maxrec = max(0, min(int(maxrec), settings.maxrec_hard))
    catalog = backend.catalog()
    if uploads:
        tables = dict(catalog.tables)
        for up in uploads:
            tables[up.info.name] = up.info
        catalog = SchemaCatalog(tables=tables)
    translation = translate(
        adql,
        dialect=backend.dialect,
        catalog=catalog,
        maxrec=maxrec,
        deadline=deadline,
        # Positional joins that cannot use the sky index are refused above this (issue #23).
        max_unindexed_pairs=settings.max_unindexed_pairs,
        # Tables published field by field: region constraints read only their blocks.
        blocks=getattr(backend, "hpx_blocks", None),
        # Tables served over Parquet files: region constraints read only the files they touch.
        parts=getattr(backend, "parquet_parts", None),
    )
    deadline.check("translating")
    return translation, maxrec, limit_s, deadline


async def run_adql(state, adql: str, **options: Unpack[QueryOptions]) -> QueryResult:
    """:func:`run_adql_sync` in a worker thread (for request handlers: ``await run_adql(...)``)."""
    return await anyio.to_thread.run_sync(lambda: run_adql_sync(state, adql, **options))


# ---------------------------------------------------------------------------------------------
# parameters and uploads


async def read_params(request: Request, *, upload_limit_bytes: int) -> TapParams:
    """Collect the request's parameters (query string, then the body of a POST).

    The body's total size and read timeout are enforced while it streams in, by
    :class:`~skysense.vo.bodylimit.BodyLimitMiddleware`; file parts spool to
    ``<workdir>/spool``.

    Raises
    ------
    InputError
        When a file part exceeds ``upload_limit_bytes`` or the form is malformed.
    """
    params = TapParams()

    def add(name: str, value: str) -> None:
        key = name.lower()
        if key == "upload":
            params.uploads.append(value)
        params.values[key] = value

    for name, value in request.query_params.multi_items():
        add(name, value)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data") or ctype.startswith(
            "application/x-www-form-urlencoded"
        ):
            spool = Path(request.app.state.settings.resolved_workdir) / "spool"
            form = await read_form(request, spool_dir=spool, max_part_size=_MAX_FORM_FIELD_BYTES)
            try:
                for name, value in form.multi_items():
                    if isinstance(value, str):
                        add(name, value)
                        continue
                    data = await value.read(upload_limit_bytes + 1)
                    if len(data) > upload_limit_bytes:
                        raise InputError(
                            f"upload {name!r} exceeds the limit of {upload_limit_bytes} bytes"
                        )
                    params.files[name] = data
            finally:
                await form.close()
    return params


def parse_upload_param(value: str) -> list[tuple[str, str]]:
    """Split an UPLOAD value ``name,uri;name2,uri2`` into (name, uri) pairs.

    Raises
    ------
    QueryError
        Malformed value or table name (must be an ADQL regular identifier).
    """
    pairs = []
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        if "," not in item:
            raise QueryError(f"UPLOAD item {item!r} must be 'name,uri'")
        name, uri = (s.strip() for s in item.split(",", 1))
        if not _UPLOAD_NAME.match(name):
            raise QueryError(f"UPLOAD table name {name!r} is not a valid ADQL identifier")
        if len(name) > MAX_UPLOAD_NAME:
            raise QueryError(
                f"UPLOAD table name {name[:20]!r}... has {len(name)} characters; "
                f"at most {MAX_UPLOAD_NAME} are accepted"
            )
        pairs.append((name, uri))
    return pairs


def make_upload(
    name: str,
    data: bytes,
    *,
    source: str | None = None,
    limit_bytes: int = Settings.upload_limit_bytes,
    deadline: Deadline | None = None,
) -> UploadTable:
    """Parse an uploaded VOTable into an :class:`UploadTable` named ``TAP_UPLOAD.<name>``.

    The document passes :func:`~skysense.vo.upload_guard.check_votable` first (no external
    streams, DTDs or entities; compressed documents decompress to at most ``limit_bytes``; the
    declared table may take at most ``max(UPLOAD_MEMORY_LIMIT_BYTES, 20 * limit_bytes)`` of
    memory; reading stops once ``deadline`` has passed). Column names become lower-case ADQL
    identifiers; a ``_rowid`` column (0..n-1) is added; RA/Dec are detected (UCD, then name) so
    cross-matches can use the HEALPix index.

    Raises
    ------
    InputError
        A refused or unreadable document, or two columns with the same ADQL name.
    QueryError
        From ``deadline``.
    """
    source = source or f"upload {name}"
    table, infos = read_votable(
        data,
        source=source,
        limit_bytes=limit_bytes,
        memory_limit_bytes=max(UPLOAD_MEMORY_LIMIT_BYTES, 20 * limit_bytes),
        deadline=deadline,
    )
    arrays, cols, seen = [], [], {}
    for info, original in zip(infos, table.column_names):
        adql = adql_column_name(original)
        if adql in seen:
            raise InputError(
                f"columns {seen[adql]!r} and {original!r} both become the ADQL column "
                f"{adql!r}; rename one",
                path=source,
                column=original,
            )
        seen[adql] = original
        arrays.append(table.column(original))
        cols.append(
            ColumnInfo(
                name=adql,
                datatype=info.datatype,
                arraysize=info.arraysize,
                unit=info.unit,
                ucd=info.ucd,
                description=info.description,
            )
        )
    arrays.append(pa.array(np.arange(table.num_rows, dtype=np.int64)))
    data_table = pa.Table.from_arrays(arrays, names=[c.name for c in cols] + ["_rowid"])
    lname = name.lower()
    physical = quote_ident(f"_tap_upload_{lname}")
    ra, dec = detect_radec(cols)
    info = TableInfo(
        name=f"tap_upload.{lname}",
        physical=physical,
        columns={c.name: c for c in cols},
        description=f"uploaded table {name}",
        ra=ra,
        dec=dec,
        hpx_column=None,
        n_rows=table.num_rows,
    )
    return UploadTable(name=lname, physical=physical, data=data_table, info=info)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _is_public_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a global unicast address, also through the IPv4 it embeds when it is IPv6."""
    if addr.version == 6:
        # IPv4-mapped (::ffff:127.0.0.1), 6to4, Teredo and NAT64 addresses reach an IPv4
        # host; Python 3.11 does not look inside them, so the embedded address is checked too.
        embedded = [addr.ipv4_mapped, addr.sixtofour, *(addr.teredo or ())]
        if addr in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        if any(e is not None and not _is_public_address(e) for e in embedded):
            return False
        if addr.is_site_local:
            return False
    return addr.is_global and not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def _check_public_host(host: str) -> list[str]:
    """The addresses ``host`` resolves to, when every one of them is public.

    Raises
    ------
    InputError
        When the name does not resolve, or any of its addresses is private, loopback,
        link-local, multicast, reserved or unspecified (also as IPv4 inside IPv6).
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"cannot resolve upload host {host!r}: {exc}") from None
    addresses = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not _is_public_address(addr):
            raise InputError(f"upload URL host {host!r} is not a public address ({addr})")
        addresses.append(str(addr))
    if not addresses:
        raise InputError(f"cannot resolve upload host {host!r}")
    return addresses


def fetch_url(
    url: str, *, limit_bytes: int, allow_private: bool = False, timeout_s: float = 30.0
) -> bytes:
    """Fetch an upload by URL.

    Only http and https, at most ``limit_bytes`` (sent uncompressed), at most 3 redirects,
    each re-checked like the first URL, at most ``timeout_s`` in all, never through the
    proxies of the environment. Unless ``allow_private``, the host's addresses must all be
    public and the connection goes to the address that was checked (the Host header and TLS
    name stay the URL's), so a name that resolves differently on a second look (DNS
    rebinding) cannot reach an internal address.

    Raises
    ------
    InputError
        Bad scheme, refused host, HTTP error, a too large document or too slow an answer.
    """
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout_s) as client:
        for _ in range(4):  # the URL and at most 3 redirects, each checked again
            try:
                parts = urllib.parse.urlsplit(url)
                parts.port  # noqa: B018 - raises ValueError when out of range
                target = httpx.URL(url)
            except (ValueError, httpx.InvalidURL) as exc:
                raise InputError(f"upload URL {url!r} is not a valid URL: {exc}") from None
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise InputError(f"upload URL must be http(s)://..., got {url!r}")
            headers = {"Accept-Encoding": "identity"}
            extensions = {}
            if not allow_private:
                address = _check_public_host(parts.hostname)[0]
                headers["Host"] = target.netloc.decode("ascii").rsplit("@", 1)[-1]
                extensions["sni_hostname"] = parts.hostname
                target = target.copy_with(host=address)
            try:
                with client.stream("GET", target, headers=headers, extensions=extensions) as resp:
                    if resp.is_redirect:
                        url = urllib.parse.urljoin(url, resp.headers.get("location", ""))
                        continue
                    if resp.status_code != 200:
                        raise InputError(f"upload URL {url} answered HTTP {resp.status_code}")
                    chunks, size = [], 0
                    for chunk in resp.iter_raw():
                        size += len(chunk)
                        if size > limit_bytes:
                            raise InputError(
                                f"upload URL {url} exceeds the limit of {limit_bytes} bytes"
                            )
                        if time.monotonic() > deadline:
                            raise InputError(f"upload URL {url} took longer than {timeout_s:g} s")
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.HTTPError as exc:
                raise InputError(f"cannot fetch upload URL {url}: {exc}") from None
    raise InputError(f"upload URL {url}: too many redirects")


def resolve_uploads(
    params: TapParams,
    *,
    limit_bytes: int,
    allow_private: bool = False,
    loader: Mapping[str, bytes] | None = None,
    deadline: Deadline | None = None,
) -> list[UploadTable]:
    """All UPLOAD tables of a request (blocking: URLs are fetched; call in a worker thread).

    ``loader`` replaces ``params.files`` (async jobs keep their inline parts on disk). Inline
    and fetched documents pass the same checks (:func:`make_upload`). With ``deadline``
    (e.g. ``Deadline(settings.query_timeout_s)``), fetching and parsing stop once it has
    passed, with the query's time-limit error.
    """
    files = params.files if loader is None else loader
    pairs = [pair for value in params.uploads for pair in parse_upload_param(value)]
    if len(pairs) > MAX_UPLOAD_TABLES:
        raise QueryError(
            f"UPLOAD names {len(pairs)} tables; at most {MAX_UPLOAD_TABLES} are accepted"
        )
    uploads: dict[str, UploadTable] = {}
    for name, uri in pairs:
        if name.lower() in uploads:
            raise QueryError(f"UPLOAD table {name!r} given twice")
        if uri.startswith("param:"):
            part = uri[len("param:") :]
            if part not in files:
                raise QueryError(f"UPLOAD {name!r} refers to a missing form part {part!r}")
            data = files[part]
        elif uri.lower().startswith(("http://", "https://")):
            remaining = None if deadline is None else deadline.remaining()
            data = fetch_url(
                uri,
                limit_bytes=limit_bytes,
                allow_private=allow_private,
                timeout_s=30.0 if remaining is None else max(0.001, min(30.0, remaining)),
            )
        else:
            raise QueryError(f"UPLOAD {name!r}: only param:<part> and http(s):// URIs are accepted")
        uploads[name.lower()] = make_upload(name, data, limit_bytes=limit_bytes, deadline=deadline)
    return list(uploads.values())


def check_query_params(params: TapParams) -> str:
    """Validate REQUEST/LANG/QUERY; return the query text.

    Raises
    ------
    QueryError
    """
    request = params.get("request")
    if request is not None and request.strip() and request.strip().lower() != "doquery":
        raise QueryError(f"REQUEST={request!r} is not supported (use doQuery)")
    lang = (params.get("lang") or "ADQL").strip()
    if not re.fullmatch(r"(?i)adql(-2\.[01])?", lang):
        raise QueryError(f"LANG={lang!r} is not supported (use ADQL)")
    query = params.get("query")
    if query is None or not query.strip():
        raise QueryError("the QUERY parameter is missing")
    return query


def query_request(params: TapParams, settings: Settings) -> tuple[str, OutputFormat, int]:
    """The query, output format and row limit a TAP request (sync or async) asks for.

    Raises
    ------
    QueryError
        A bad REQUEST/LANG/QUERY/RESPONSEFORMAT/MAXREC.
    """
    query = check_query_params(params)
    fmt = resolve_format(params.get("responseformat") or params.get("format"))
    maxrec = parse_maxrec(
        params.get("maxrec"), default=settings.maxrec_default, hard=settings.maxrec_hard
    )
    return query, fmt, maxrec


def run_adql_serialised(
    state,
    query: str,
    fmt: OutputFormat,
    *,
    maxrec: int,
    uploads: Sequence[UploadTable],
    deadline: Deadline,
    handle: QueryHandle | None = None,
) -> tuple[bytes, QueryResult]:
    """:func:`run_adql_sync`, the result written in ``fmt`` (the query as its QUERY info).

    Returns
    -------
    body : bytes
    result : QueryResult
        The rows behind ``body`` (for their count and overflow flag).
    """
    result = run_adql_sync(
        state, query, maxrec=maxrec, uploads=uploads, handle=handle, deadline=deadline
    )
    body = serialise(
        fmt, result.table, result.column_infos, overflow=result.overflow, infos={"QUERY": query}
    )
    return body, result


async def sync_endpoint(request: Request) -> Response:
    """``/tap/sync``: run the query and answer the result in the requested format."""
    state = request.app.state
    settings = state.settings
    params = await read_params(request, upload_limit_bytes=settings.upload_limit_bytes)
    query, fmt, maxrec = query_request(params, settings)

    streamed = fmt.key in ("votable", "votable-binary2") and hasattr(state.backend, "query_stream")

    def work() -> Response:
        from skysense.vo.backends import QueryTimeout

        # Reading uploads spends from the query's time limit, as translation does.
        deadline = Deadline(settings.query_timeout_s, error=QueryTimeout)
        uploads = resolve_uploads(
            params,
            limit_bytes=settings.upload_limit_bytes,
            allow_private=settings.upload_allow_private_urls,
            deadline=deadline,
        )
        if streamed:
            return _streamed_votable(
                state, query, maxrec, uploads, deadline, fmt, binary2=fmt.key != "votable"
            )
        body, _ = run_adql_serialised(
            state, query, fmt, maxrec=maxrec, uploads=uploads, deadline=deadline
        )
        return Response(body, media_type=fmt.mime, headers=_headers(fmt))

    return await anyio.to_thread.run_sync(work)


#: A VOTable answer up to this size is sent whole (one write, a Content-Length); a larger one
#: streams as its batches come from the database.
_WHOLE_BYTES = 1 << 20


def _streamed_votable(state, query, maxrec, uploads, deadline, fmt, *, binary2: bool) -> Response:
    """The answer of ``/tap/sync`` in VOTable: the query runs and its first pieces are written
    here (an error so far is an ordinary error answer); the rest streams."""

    def pieces() -> Iterator[bytes]:
        with stream_adql(state, query, maxrec=maxrec, uploads=uploads, deadline=deadline) as res:
            yield from result_votable_chunks(
                res.batches,
                res.column_infos,
                schema=res.schema,
                overflow=lambda: res.overflow,
                binary2=binary2,
                infos={"QUERY": query},
            )

    chunks = pieces()
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > _WHOLE_BYTES:
            break
    else:
        return Response(b"".join(head), media_type=fmt.mime, headers=_headers(fmt))
    return StreamingResponse(
        itertools.chain(head, chunks), media_type=fmt.mime, headers=_headers(fmt)
    )


def _headers(fmt) -> dict[str, str]:
    if fmt.key in ("fits", "csv", "tsv"):
        return {"Content-Disposition": f'inline; filename="result.{fmt.extension}"'}
    return {}
