"""DataLink 1.1 {links} for the published maps and for the rows of published tables.

Endpoints (see :func:`routes`):

- ``/datalink/links?ID=...[&TABLE=schema.table]`` (GET or POST, several ``ID`` values
  allowed, at most :data:`MAX_IDS` per request): the DataLink ``{links}`` VOTable
  (``application/x-votable+xml;content=datalink``), one or more rows per ``ID``; an ``ID`` that
  names nothing gets one row with ``error_message`` ``NotFoundFault: ...``.
- ``/datalink/capabilities``, ``/datalink/availability``: VOSI (pyvo's ``DatalinkService``).
- ``/preview/{name}.png``: a PNG preview of a published map (:mod:`skysense.vo.preview`).

Identifiers:

- a map: its publisher DID ``ivo://skysense/maps?<name>`` (:func:`skysense.vo.sia.map_did`),
  the ``obs_publisher_did`` of the SIA2 records. Links: ``#this`` (the FITS file), ``#cutout``
  (the SODA service, ``service_def`` pointing at the descriptor RESOURCE that follows the
  table) and ``#preview`` (the PNG).
- a source: ``ivo://skysense/<schema.table>?<id>`` (:func:`source_did`), the row of a published
  table whose identifier column (the ``meta.id;meta.main`` column, e.g. ``help_id``) equals
  ``<id>``. Links: ``#this`` (the row through TAP), ``#auxiliary`` (a cone search of the table
  around the source, when it has positions) and every link the table declares. With
  ``TABLE=<schema.table>``, a bare ``<id>`` means the same; cone-search results carry a
  service descriptor doing this (:func:`skysense.vo.scs.cone_search_sync`), so pyvo's
  ``getdatalink()`` works on their records.

Declared links (:func:`declare_links`, or ``publish_arrow(..., links=...)``) are a small
registry: a JSON record of kind :data:`RECORD_KIND` per table, holding :class:`LinkTemplate`
entries. A template is either a URL (``{root}``, ``{id}`` and the row's column values, all
URL-quoted, are filled in) or another published table (``table``/``column``: the rows of that
table whose ``column`` equals the source's identifier, e.g. a best-fit SED spectrum; the link
is given only when such rows exist). New kinds of per-source products therefore need a
declaration at publication time and no change here.
"""

from __future__ import annotations

import math
import os
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from skysense.errors import InputError, SkysenseError
from skysense.vo import vosi
from skysense.vo._dalparams import base_url, read_params
from skysense.vo.links import (
    RECORD_KIND,
    TABLE_NAME,
    LinkTemplate,
    declare_links,
    declared_links,
)
from skysense.vo.maps import MapInfo, get_map
from skysense.vo.sia import (
    DATALINK_PATH,
    DATALINK_STANDARD_ID,
    DID_PREFIX,
    soda_descriptor,
)

__all__ = [
    "routes",
    "Link",
    "LinkTemplate",
    "declare_links",
    "declared_links",
    "source_did",
    "parse_source_did",
    "map_links",
    "source_links",
    "resolve_links",
    "links_votable",
    "capabilities_xml",
    "DATALINK_MIME",
    "DATALINK_STANDARD_ID",
    "RECORD_KIND",
    "SOURCE_PREFIX",
    "MAX_IDS",
    "CONE_RADIUS_ARCSEC",
]

DATALINK_MIME = "application/x-votable+xml;content=datalink"
SOURCE_PREFIX = "ivo://skysense/"
#: Most IDs answered per request; further ones are cut (``QUERY_STATUS=OVERFLOW``), and
#: pyvo's batched ``iter_datalinks`` asks again for the rest.
MAX_IDS = 100
#: Radius of the per-source cone-search link.
CONE_RADIUS_ARCSEC = 10.0
_MAX_ID_CHARS = 512
_VOTABLE_MIME = "application/x-votable+xml"
_INT_TYPES = ("short", "int", "long")


@dataclass(frozen=True)
class Link:
    """One row of a DataLink {links} table (DataLink 1.1 section 3.2)."""

    id: str
    access_url: str = ""
    service_def: str = ""
    error_message: str = ""
    semantics: str = ""
    description: str = ""
    content_type: str = ""
    content_length: int | None = None
    content_qualifier: str = ""
    local_semantics: str = ""


def source_did(table: str, key) -> str:
    """The DataLink ``ID`` of the row of ``table`` whose identifier is ``key``."""
    return f"{SOURCE_PREFIX}{table.lower()}?{key}"


def parse_source_did(value: str) -> tuple[str, str] | None:
    """``(table, key)`` of a source ID (see :func:`source_did`), or None for other IDs."""
    if not value.startswith(SOURCE_PREFIX) or "?" not in value:
        return None
    table, key = value[len(SOURCE_PREFIX) :].split("?", 1)
    table = table.lower()
    if not TABLE_NAME.match(table) or not key:
        return None
    return table, key


# --------------------------------------------------------------------------------------------
# links of one ID


def map_links(info: MapInfo, root: str, did: str) -> list[Link]:
    """The links of a published map: ``#this``, ``#cutout`` and ``#preview``."""
    return [
        Link(
            id=did,
            access_url=f"{root}/maps/{info.name}.fits",
            semantics="#this",
            description=f"The full map {info.name} ({info.description or info.band})",
            content_type="application/fits",
            content_length=info.size_bytes or None,
            content_qualifier="#image",
        ),
        Link(
            id=did,
            service_def="soda",
            semantics="#cutout",
            description="SODA cutout of the map to a CIRCLE, POLYGON or POS region",
            content_type="application/fits",
            content_qualifier="#image",
        ),
        Link(
            id=did,
            access_url=f"{root}/preview/{info.name}.png",
            semantics="#preview",
            description=f"PNG preview of {info.name}",
            content_type="image/png",
        ),
    ]


def _adql_literal(value: str, datatype: str) -> str | None:
    if datatype in _INT_TYPES:
        return str(int(value)) if re.fullmatch(r"[+-]?\d{1,19}", value) else None
    if datatype in ("char", "unicodeChar"):
        return "'" + value.replace("'", "''") + "'"
    return None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tap_url(root: str, adql: str) -> str:
    query = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql})
    return f"{root}/tap/sync?{query}"


def _format_url(template: str, values: Mapping[str, object], root: str) -> str:
    def q(v) -> str:
        return urllib.parse.quote("" if v is None else str(v), safe="")

    quoted = {k: q(v) for k, v in values.items()}
    quoted["root"] = root
    return template.format_map(quoted)


def source_links(state, table: str, key: str, root: str, did: str) -> list[Link]:
    """The links of the row of ``table`` whose identifier is ``key`` (blocking).

    Parameters
    ----------
    state : object
        With ``backend`` and ``settings`` (``request.app.state``).
    table, key : str
        From :func:`parse_source_did`.
    root : str
        Public root URL of the service.
    did : str
        The ID as asked (repeated in every row).

    Raises
    ------
    LookupError
        No such table or row (reported as ``NotFoundFault``).
    """
    from skysense.vo.schema import id_column as main_id_column
    from skysense.vo.tap import run_adql_sync

    catalog = state.backend.catalog()
    info = catalog.tables.get(table)
    if info is None or table.startswith(("tap_schema.", "tap_upload.")):
        raise LookupError(f"no published table {table!r}")
    declared_column, templates = declared_links(state.backend, table)
    column = declared_column or main_id_column(info)
    col = info.columns.get(column.lower())
    literal = None if col is None else _adql_literal(key, col.datatype)
    if literal is None:
        raise LookupError(f"{key!r} is not an identifier of {table}")
    wanted = [column]
    if info.ra and info.dec:
        wanted += [info.ra, info.dec]
    for t in templates:
        wanted += [f for f in t.fields() if f.lower() in info.columns]
    # Quote the stored (physical) names: delimited identifiers are exact-case.
    wanted = list(dict.fromkeys(info.columns[c.lower()].name for c in wanted))
    where = f"{_ident(col.name)} = {literal}"
    adql = f"SELECT TOP 1 {', '.join(_ident(c) for c in wanted)} FROM {table} WHERE {where}"
    result = run_adql_sync(state, adql, maxrec=1)
    if result.table.num_rows == 0:
        raise LookupError(f"no row of {table} has {column} = {key!r}")
    row = {name.lower(): result.table.column(name)[0].as_py() for name in result.table.column_names}
    links = [
        Link(
            id=did,
            access_url=_tap_url(root, f"SELECT * FROM {table} WHERE {where}"),
            semantics="#this",
            description=f"The row of {table} (TAP query)",
            content_type=_VOTABLE_MIME,
        )
    ]
    ra = row.get((info.ra or "").lower())
    dec = row.get((info.dec or "").lower())
    if isinstance(ra, float) and isinstance(dec, float) and math.isfinite(ra + dec):
        cone = urllib.parse.urlencode(
            {"RA": repr(ra), "DEC": repr(dec), "SR": repr(CONE_RADIUS_ARCSEC / 3600.0)}
        )
        links.append(
            Link(
                id=did,
                access_url=f"{root}/scs/{table}?{cone}",
                semantics="#auxiliary",
                description=f"Sources of {table} within {CONE_RADIUS_ARCSEC:g} arcsec "
                "(cone search)",
                content_type=_VOTABLE_MIME,
            )
        )
    for t in templates:
        links.extend(_declared_link(state, t, row, key, root, did))
    return links


def _declared_link(state, t: LinkTemplate, row: dict, key: str, root: str, did: str) -> list:
    from skysense.vo.tap import run_adql_sync

    common = {
        "id": did,
        "semantics": t.semantics,
        "description": t.description,
        "content_qualifier": t.content_qualifier,
        "local_semantics": t.local_semantics,
    }
    if t.url:
        try:
            url = _format_url(t.url, {**row, "id": key}, root)
        except (KeyError, IndexError, ValueError) as exc:
            # The table was republished without a column the template names.
            return [Link(error_message=f"Error: link template {t.url!r}: {exc}", **common)]
        return [Link(access_url=url, content_type=t.content_type, **common)]
    other = state.backend.catalog().tables.get(t.table.lower())
    col = None if other is None else other.columns.get(t.column.lower())
    literal = None if col is None else _adql_literal(key, col.datatype)
    if literal is None:
        return []
    where = f"{_ident(col.name)} = {literal}"
    probe = run_adql_sync(state, f"SELECT TOP 1 1 AS one FROM {other.name} WHERE {where}", maxrec=1)
    if probe.table.num_rows == 0:
        return []  # nothing published for this source (yet)
    return [
        Link(
            access_url=_tap_url(root, f"SELECT * FROM {other.name} WHERE {where}"),
            content_type=t.content_type or _VOTABLE_MIME,
            **common,
        )
    ]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (no database can store them)
        return False
    return True


def resolve_links(
    state,
    ids: Sequence[str],
    root: str,
    *,
    table: str | None = None,
    time_budget_s: float | None = None,
) -> tuple[list[Link], int]:
    """The links of the IDs, in order; unknown IDs give a ``NotFoundFault`` row (blocking).

    Parameters
    ----------
    state : object
        With ``backend`` and ``settings`` (``request.app.state``).
    ids : sequence of str
        The ``ID`` values.
    root : str
        Public root URL of the service.
    table : str, optional
        IDs that are not ``ivo://`` identifiers are identifiers of rows of this table (the
        ``TABLE`` input of the descriptor in cone-search results, whose ``ID`` is bound to the
        table's identifier column).
    time_budget_s : float, optional
        Stop starting new IDs once this much time has passed (each lookup has the query time
        limit too), so a request never runs much longer than one query may.

    Returns
    -------
    links : list of Link
    n_done : int
        How many of ``ids`` were answered (the rest are for another request).
    """
    out: list[Link] = []
    start = time.monotonic()
    for n, did in enumerate(ids):
        if time_budget_s is not None and n and time.monotonic() - start > time_budget_s:
            return out, n
        did = did.strip()
        try:
            if len(did) > _MAX_ID_CHARS:
                raise LookupError(f"an ID is at most {_MAX_ID_CHARS} characters")
            if not did.isprintable() or not _utf8(did):
                raise LookupError("an ID holds control characters or invalid text")
            source = parse_source_did(did)
            if source is None and table and not did.startswith("ivo://"):
                source = (table.strip().lower(), did)
            if source is not None:
                out.extend(source_links(state, *source, root, did))
                continue
            name = did[len(DID_PREFIX) :] if did.startswith(DID_PREFIX) else None
            info = None if name is None else get_map(state.backend, name)
            if info is None or not os.path.isfile(info.path):
                raise LookupError(f"no dataset {did!r}")
            out.extend(map_links(info, root, did))
        # DataLink requires semantics on every row; a failed ID's row stands for #this.
        except LookupError as exc:
            out.append(Link(id=did, semantics="#this", error_message=f"NotFoundFault: {exc}"))
        except SkysenseError as exc:
            out.append(Link(id=did, semantics="#this", error_message=f"Error: {exc}"))
    return out, len(ids)


# --------------------------------------------------------------------------------------------
# the {links} document

# DataLink 1.1 section 3.2: name, datatype, unit, ucd, description
_FIELDS = (
    ("ID", "char", "", "meta.id;meta.main", "Input identifier"),
    ("access_url", "char", "", "meta.ref.url", "Link to data or a service"),
    ("service_def", "char", "", "meta.ref", "Reference to a service descriptor resource"),
    ("error_message", "char", "", "meta.code.error", "Why no access_url could be made"),
    ("semantics", "char", "", "meta.code", "Term of the DataLink vocabulary"),
    ("description", "char", "", "meta.note", "What the link points to"),
    ("content_type", "char", "", "meta.code.mime", "MIME type of the linked content"),
    ("content_length", "long", "byte", "phys.size;meta.file", "Size of the download"),
    ("content_qualifier", "char", "", "meta.code.class", "Product type of the linked content"),
    ("local_semantics", "char", "", "meta.code", "Local refinement of semantics"),
    ("link_auth", "char", "", "meta.code", "Authentication: false, optional or true"),
    ("link_authorized", "boolean", "", "meta.code", "Whether the caller may access the link"),
)


def _cell(value) -> str:
    if value is None or value == "":
        return "<TD/>"
    if isinstance(value, bool):
        return f"<TD>{'T' if value else 'F'}</TD>"
    return f"<TD>{escape(str(value))}</TD>"


def links_votable(links: Sequence[Link], root: str, *, overflow: bool = False) -> bytes:
    """The DataLink {links} VOTable of ``links`` (with the SODA descriptor when needed)."""
    from skysense.vo.votable import votable_document

    fields = []
    for name, datatype, unit, ucd, desc in _FIELDS:
        size = ' arraysize="*"' if datatype == "char" else ""
        unit_attr = f' unit="{unit}"' if unit else ""
        fields.append(
            f'<FIELD name="{name}" ID="{name}" datatype="{datatype}"{size}{unit_attr} '
            f'ucd="{ucd}"><DESCRIPTION>{escape(desc)}</DESCRIPTION></FIELD>'
        )
    rows = []
    for link in links:
        auth = None if link.error_message else "false"
        authorized = None if link.error_message else True
        cells = (
            link.id,
            link.access_url,
            link.service_def,
            link.error_message,
            link.semantics,
            link.description,
            link.content_type,
            link.content_length,
            link.content_qualifier,
            link.local_semantics,
            auth,
            authorized,
        )
        rows.append("<TR>" + "".join(_cell(v) for v in cells) + "</TR>")
    cut = (
        f"not every ID was answered (at most {MAX_IDS} per request, within the time limit): "
        "ask again for the rest"
    )
    # One descriptor serves every #cutout row: its ID input is bound to the row's ID.
    soda = any(link.service_def == "soda" for link in links)
    return votable_document(
        "links",
        fields,
        rows,
        standard_id=DATALINK_STANDARD_ID,
        overflow=cut if overflow else None,
        resources=soda_descriptor(root, id_ref="ID", resource_id="soda") if soda else (),
    )


def capabilities_xml(root: str) -> str:
    """VOSI capabilities of the DataLink service."""
    return vosi.capabilities_document(
        vosi.vosi_capability("capabilities", f"{root}/datalink/capabilities"),
        vosi.vosi_capability("availability", f"{root}/datalink/availability"),
        vosi.std_capability(DATALINK_STANDARD_ID, f"{root}{DATALINK_PATH}", "1.1"),
    )


# --------------------------------------------------------------------------------------------
# HTTP


def _error(message: str, status: int) -> Response:
    from skysense.vo.votable import error_votable

    return Response(error_votable(message), status_code=status, media_type=_VOTABLE_MIME)


async def links_endpoint(request: Request) -> Response:
    """``/datalink/links``: the DataLink {links} of one or more IDs."""
    state = request.app.state
    try:
        params = await read_params(request)
        fmt = (params.get("RESPONSEFORMAT") or "").strip().lower().replace(" ", "")
        if fmt and not fmt.startswith((_VOTABLE_MIME, "votable", "text/xml")):
            raise InputError(f"RESPONSEFORMAT {fmt!r} is not supported; use {DATALINK_MIME}")
    except SkysenseError as exc:
        return _error(f"UsageError: {exc}", 400)
    ids = [v for v in params.getlist("ID") if v.strip()]
    if not ids:
        return _error("UsageError: the ID parameter is missing", 400)
    table = params.getlist("TABLE")
    table = table[0] if table else None
    root = base_url(request)
    budget = state.settings.query_timeout_s
    links, n_done = await anyio.to_thread.run_sync(
        lambda: resolve_links(state, ids[:MAX_IDS], root, table=table, time_budget_s=budget)
    )
    overflow = n_done < len(ids)
    return Response(links_votable(links, root, overflow=overflow), media_type=DATALINK_MIME)


async def capabilities_endpoint(request: Request) -> Response:
    """``/datalink/capabilities``."""
    return Response(capabilities_xml(base_url(request)), media_type="text/xml")


async def availability_endpoint(request: Request) -> Response:
    """``/datalink/availability``."""
    return Response(vosi.availability_xml(True), media_type="text/xml")


async def preview_endpoint(request: Request) -> Response:
    """``/preview/{name}.png``: PNG preview of a published map (drawn once, then cached)."""
    from skysense.vo.preview import cached_preview

    state = request.app.state
    name = request.path_params["name"]
    info = await anyio.to_thread.run_sync(lambda: get_map(state.backend, name))
    if info is None or not os.path.isfile(info.path):
        return _error(f"NotFoundFault: no map {name!r}", 404)
    folder = state.settings.resolved_workdir / "previews"
    try:
        path = await anyio.to_thread.run_sync(lambda: cached_preview(info, folder))
    except InputError as exc:
        return _error(f"Error: {exc}", 500)
    return FileResponse(path, media_type="image/png")


def routes() -> list[Route]:
    """The Starlette routes of the DataLink service and the map previews."""
    return [
        Route(DATALINK_PATH, links_endpoint, methods=["GET", "POST"], name="datalink_links"),
        Route(
            "/datalink/capabilities",
            capabilities_endpoint,
            methods=["GET"],
            name="datalink_capabilities",
        ),
        Route(
            "/datalink/availability",
            availability_endpoint,
            methods=["GET"],
            name="datalink_availability",
        ),
        Route("/preview/{name}.png", preview_endpoint, methods=["GET"], name="map_preview"),
    ]
