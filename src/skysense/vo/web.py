"""Server-rendered web pages of the VO server (Jinja2; no JavaScript, no CDN).

Pages (see :func:`routes`):

- ``/``: the services: each published table (information page, cone-search form and SCS URL),
  the TAP service (ADQL form, VOSI documents) and SIA v2/SODA for the maps;
- ``/table/{schema.table}``: columns with datatype, unit, UCD and description; row count;
  sample queries;
- ``/query``: an ADQL form with worked examples; with ``QUERY`` it runs the query (through the
  shared TAP runner, so the same limits apply) and shows a paginated HTML table with download
  links (VOTable, CSV, FITS) pointing at ``/tap/sync``;
- ``/cone``: a cone-search form over the tables with positions;
- ``/maps``: the published maps with download links, SIA queries and a cutout form that asks
  ``/soda/sync`` for a FITS cutout.

Everything shown is HTML-escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import urlencode

import anyio.to_thread
import jinja2
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from skysense.errors import InputError, SkysenseError
from skysense.vo._dalparams import base_url, read_params
from skysense.vo.schema import featured_tables

__all__ = ["routes", "examples", "PAGE_SIZES", "render"]

_HERE = Path(__file__).resolve().parent
TEMPLATES = _HERE / "templates"
STATIC = _HERE / "static"

#: Rows per page offered by the result table.
PAGE_SIZES = (25, 50, 100, 500)
#: Rows the HTML result view fetches at most (pages beyond need the download links).
MAX_HTML_ROWS = 10_000
_FETCH_ROWS = 1000

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(("html",), default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, request: Request, status_code: int = 200, **context) -> HTMLResponse:
    """Render template ``name`` with the site-wide context (title, nav, root URL)."""
    settings = request.app.state.settings
    page = _env.get_template(name).render(
        site_title=settings.title,
        site_description=settings.description,
        root=base_url(request),
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def _public_tables(backend) -> list:
    catalog = backend.catalog()
    return [
        catalog.tables[k]
        for k in sorted(catalog.tables)
        if not k.startswith("tap_schema.") and not k.startswith("tap_upload.")
    ]


def _id_of(table) -> str:
    from skysense.vo.schema import id_column

    return id_column(table)


def examples(tables: list) -> list[dict]:
    """Worked ADQL examples (title, explanation, query) for the published tables.

    Always at least: a cone search, a self cross-match join (no upload), an aggregate, TOP with
    ORDER BY, and a TAP_SCHEMA query; table-specific queries use the first table with
    positions (or the first table).
    """
    tables = featured_tables(tables)
    positional = [t for t in tables if t.ra and t.dec]
    t = positional[0] if positional else (tables[0] if tables else None)
    out = []
    if t is not None and t.ra:
        ra, dec = t.ra, t.dec
        ident = _id_of(t)
        # A point inside the data: the centre of the published positions is unknown here,
        # so queries use the table's own first row through a subquery-free cone around it.
        out.append(
            {
                "title": "Cone search",
                "text": f"Rows of {t.name} within 1 arcmin of a position (uses the HEALPix index).",
                "query": (
                    f"SELECT {ident}, {ra}, {dec}\nFROM {t.name}\n"
                    f"WHERE 1 = CONTAINS(POINT('ICRS', {ra}, {dec}),\n"
                    f"                   CIRCLE('ICRS', {{ra}}, {{dec}}, 1.0/60))"
                ),
            }
        )
        other = positional[1] if len(positional) > 1 else t
        out.append(
            {
                "title": "Cross-match join",
                "text": (
                    f"Pairs of {t.name} and {other.name} rows closer than 2 arcsec "
                    "(a positional join, no upload needed)."
                ),
                "query": (
                    f"SELECT TOP 100 a.{ident} AS id_a, b.{_id_of(other)} AS id_b,\n"
                    f"       DISTANCE(POINT('ICRS', a.{ra}, a.{dec}),\n"
                    f"                POINT('ICRS', b.{other.ra}, b.{other.dec})) * 3600 AS sep_arcsec\n"
                    f"FROM {t.name} AS a JOIN {other.name} AS b\n"
                    f"  ON 1 = CONTAINS(POINT('ICRS', a.{ra}, a.{dec}),\n"
                    f"                  CIRCLE('ICRS', b.{other.ra}, b.{other.dec}, 2.0/3600))\n"
                    f"WHERE 1 = CONTAINS(POINT('ICRS', b.{other.ra}, b.{other.dec}),\n"
                    f"                   CIRCLE('ICRS', {{ra}}, {{dec}}, 0.05))"
                    + (f"\n  AND a.{ident} <> b.{ident}" if other is t else "")
                ),
            }
        )
        out.append(
            {
                "title": "Aggregates",
                "text": "Row counts and mean position in one-degree declination strips.",
                "query": (
                    f"SELECT FLOOR({dec}) AS dec_strip, COUNT(*) AS n,\n"
                    f"       AVG({ra}) AS mean_ra, MIN({dec}) AS min_dec, MAX({dec}) AS max_dec\n"
                    f"FROM {t.name}\nGROUP BY FLOOR({dec})\nORDER BY dec_strip"
                ),
            }
        )
        out.append(
            {
                "title": "TOP and ORDER BY",
                "text": "The 10 most northern rows.",
                "query": f"SELECT TOP 10 {ident}, {ra}, {dec}\nFROM {t.name}\nORDER BY {dec} DESC",
            }
        )
    elif t is not None:
        cols = [c for c in t.columns if not c.startswith("_")][:3]
        out.append(
            {
                "title": "TOP",
                "text": f"The first rows of {t.name}.",
                "query": f"SELECT TOP 10 {', '.join(cols)}\nFROM {t.name}",
            }
        )
        out.append(
            {
                "title": "Aggregates",
                "text": f"Number of rows of {t.name}.",
                "query": f"SELECT COUNT(*) AS n FROM {t.name}",
            }
        )
    out.append(
        {
            "title": "TAP_SCHEMA: tables",
            "text": "Every table of the service with its description.",
            "query": (
                "SELECT table_name, description\nFROM TAP_SCHEMA.tables\nORDER BY table_name"
            ),
        }
    )
    out.append(
        {
            "title": "TAP_SCHEMA: columns",
            "text": "Columns with units and UCDs" + (f" of {t.name}." if t is not None else "."),
            "query": (
                "SELECT column_name, datatype, unit, ucd, description\n"
                "FROM TAP_SCHEMA.columns\n"
                + (f"WHERE table_name = '{t.name}'\n" if t is not None else "")
                + "ORDER BY column_index"
            ),
        }
    )
    return out


def _centre(backend, table, cache: dict | None = None) -> tuple[float, float] | None:
    """A position inside the table's data (its middle row in HEALPix order), or None.

    ``cache`` (kept in the app state) maps (table, row count) to the answer, so the scan runs
    once per published version of a table.
    """
    if not table.ra or not table.dec:
        return None
    key = (table.name, table.n_rows)
    if cache is not None and key in cache:
        return cache[key]
    value = _query_centre(backend, table)
    if cache is not None:
        cache[key] = value
    return value


def _query_centre(backend, table) -> tuple[float, float] | None:
    from skysense.vo.backends import quote_ident

    ra, dec = quote_ident(table.ra), quote_ident(table.dec)
    middle = max(0, (table.n_rows or 1) // 2)
    base = f"SELECT {ra}, {dec} FROM {table.physical} WHERE {ra} IS NOT NULL AND {dec} IS NOT NULL"
    try:
        rows = backend.query(f"{base} LIMIT 1 OFFSET {middle}", timeout_s=5.0)
        if rows.num_rows == 0:
            rows = backend.query(f"{base} LIMIT 1", timeout_s=5.0)
    except SkysenseError:
        return None
    if rows.num_rows == 0:
        return None
    ra_v, dec_v = rows.column(0)[0].as_py(), rows.column(1)[0].as_py()
    return round(float(ra_v), 5), round(float(dec_v), 5)


def _fill_examples(items: list[dict], centre: tuple[float, float] | None) -> list[dict]:
    ra, dec = centre if centre is not None else (0.0, 0.0)
    return [
        {**e, "query": e["query"].replace("{ra}", f"{ra:g}").replace("{dec}", f"{dec:g}")}
        for e in items
    ]


def _cache(request: Request) -> dict:
    state = request.app.state
    cache = getattr(state, "web_centres", None)
    if cache is None:
        cache = {}
        state.web_centres = cache
    return cache


def _site_examples(backend, cache: dict | None = None) -> list[dict]:
    tables = _public_tables(backend)
    positional = [t for t in featured_tables(tables) if t.ra and t.dec]
    centre = _centre(backend, positional[0], cache) if positional else None
    return _fill_examples(examples(tables), centre)


# --------------------------------------------------------------------------------------------
# pages


async def index_page(request: Request) -> Response:
    """``/``: the list of services."""
    backend = request.app.state.backend

    def work():
        from skysense.vo.maps import list_maps

        return _public_tables(backend), list_maps(backend)

    tables, maps = await anyio.to_thread.run_sync(work)
    return render("index.html", request, tables=tables, maps=maps, page_title="Services")


async def table_page(request: Request) -> Response:
    """``/table/{name}``: metadata of one published table."""
    backend = request.app.state.backend
    name = request.path_params["name"].lower()
    cache = _cache(request)

    def work():
        catalog = backend.catalog()
        table = catalog.tables.get(name)
        if table is None or name.startswith("tap_upload."):
            return None, None, []
        centre = _centre(backend, table, cache)
        return table, centre, _fill_examples(examples([table]), centre)[:4]

    table, centre, ex = await anyio.to_thread.run_sync(work)
    if table is None:
        return render(
            "error.html",
            request,
            status_code=404,
            page_title="Not found",
            message=f"There is no published table {name!r}.",
        )
    columns = [c for c in table.columns.values() if not c.name.startswith("_")]
    return render(
        "table.html",
        request,
        table=table,
        columns=columns,
        centre=centre,
        examples=ex,
        id_column=_id_of(table) if table.ra else None,
        page_title=table.name,
    )


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.10g}"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _tap_link(root: str, query: str, fmt: str, maxrec: int | None = None) -> str:
    params = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "FORMAT": fmt}
    if maxrec is not None:
        params["MAXREC"] = str(maxrec)
    return f"{root}/tap/sync?{urlencode(params)}"


def _int_param(params, name: str, default: int, lo: int, hi: int) -> int:
    text = params.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {text!r}") from None
    return max(lo, min(hi, value))


async def query_page(request: Request) -> Response:
    """``/query``: ADQL form; with ``QUERY`` also the paginated result."""
    state = request.app.state
    backend = state.backend
    try:
        params = await read_params(request)
        query = (params.get("QUERY") or "").strip()
        page_size = _int_param(params, "PAGESIZE", PAGE_SIZES[0], 1, max(PAGE_SIZES))
        page = _int_param(params, "PAGE", 1, 1, MAX_HTML_ROWS)
    except SkysenseError as exc:
        query, page, page_size = "", 1, PAGE_SIZES[0]
        error = str(exc)
    else:
        error = None
    cache = _cache(request)
    ex = await anyio.to_thread.run_sync(lambda: _site_examples(backend, cache))
    context = {
        "query": query,
        "examples": ex,
        "page_title": "ADQL query",
        "page_size": page_size,
        "page_sizes": PAGE_SIZES,
        "error": error,
        "result": None,
    }
    if query and error is None:
        from skysense.vo.tap import run_adql_sync

        # Fetch at least _FETCH_ROWS so typical results show an exact row count and page
        # count; deeper pages fetch up to their last row (MAX_HTML_ROWS at most).
        wanted = min(max(page * page_size, _FETCH_ROWS), MAX_HTML_ROWS)

        def work():
            return run_adql_sync(state, query, maxrec=wanted)

        try:
            result = await anyio.to_thread.run_sync(work)
        except SkysenseError as exc:
            context["error"] = str(exc)
            return render("query.html", request, status_code=400, **context)
        table: pa.Table = result.table
        n = table.num_rows
        n_pages = max(1, math.ceil(n / page_size))
        page = min(page, n_pages)
        start = (page - 1) * page_size
        chunk = table.slice(start, page_size)
        columns = result.column_infos
        rows = [[_cell(v) for v in row.values()] for row in chunk.to_pylist()]
        if len(chunk.column_names) != len(set(chunk.column_names)):
            # to_pylist merges duplicate names; read column by column instead.
            cols = [chunk.column(i).to_pylist() for i in range(chunk.num_columns)]
            rows = [[_cell(c[i]) for c in cols] for i in range(chunk.num_rows)]
        root = base_url(request)

        def page_link(p: int) -> str:
            return "?" + urlencode({"QUERY": query, "PAGE": p, "PAGESIZE": page_size})

        context["result"] = {
            "columns": columns,
            "rows": rows,
            "n_rows": n,
            "truncated": result.overflow,
            "page": page,
            "n_pages": n_pages,
            "first_row": start + 1,
            "last_row": start + chunk.num_rows,
            "prev": page_link(page - 1) if page > 1 else None,
            # Past MAX_HTML_ROWS the pages stop; the download links give every row.
            "next": page_link(page + 1)
            if page < n_pages or (result.overflow and page * page_size < MAX_HTML_ROWS)
            else None,
            "downloads": [
                ("VOTable", _tap_link(root, query, "votable")),
                ("CSV", _tap_link(root, query, "csv")),
                ("FITS", _tap_link(root, query, "fits")),
            ],
        }
    return render("query.html", request, **context)


async def cone_page(request: Request) -> Response:
    """``/cone``: cone-search form and its HTML result."""
    from skysense.vo.scs import MAX_SR_DEG, cone_adql, parse_cone, parse_verb, scs_columns

    state = request.app.state
    backend = state.backend
    params = await read_params(request)
    tables = await anyio.to_thread.run_sync(
        lambda: [t for t in featured_tables(_public_tables(backend)) if t.ra and t.dec]
    )

    def first(name: str, default: str = "") -> str:
        values = params.getlist(name)
        return values[0] if values else default

    form = {
        "table": first("TABLE") or (tables[0].name if tables else ""),
        "ra": first("RA"),
        "dec": first("DEC"),
        "sr": first("SR"),
        "verb": first("VERB", "2") or "2",
    }
    context = {
        "tables": tables,
        "form": form,
        "max_sr": MAX_SR_DEG,
        "page_title": "Cone search",
        "error": None,
        "result": None,
    }
    if not (form["ra"] or form["dec"] or form["sr"]):
        if tables and not form["ra"]:
            cache = _cache(request)
            centre = await anyio.to_thread.run_sync(lambda: _centre(backend, tables[0], cache))
            if centre is not None:
                form.update(ra=f"{centre[0]:g}", dec=f"{centre[1]:g}", sr="0.01")
        return render("cone.html", request, **context)
    try:
        ra, dec, sr = parse_cone(form["ra"], form["dec"], form["sr"])
        verb = parse_verb(form["verb"])
        table = next((t for t in tables if t.name == form["table"].lower()), None)
        if table is None:
            raise InputError(f"no published table with positions named {form['table']!r}")
        adql = cone_adql(table, scs_columns(table, verb), ra, dec, sr)
        from skysense.vo.tap import run_adql_sync

        result = await anyio.to_thread.run_sync(
            lambda: run_adql_sync(state, adql, maxrec=MAX_HTML_ROWS)
        )
    except SkysenseError as exc:
        context["error"] = str(exc)
        return render("cone.html", request, status_code=400, **context)
    cols = [result.table.column(i).to_pylist() for i in range(result.table.num_columns)]
    root = base_url(request)
    scs_url = f"{root}/scs/{table.name}?" + urlencode(
        {"RA": f"{ra:g}", "DEC": f"{dec:g}", "SR": f"{sr:g}", "VERB": verb}
    )
    context["result"] = {
        "columns": result.column_infos,
        "rows": [[_cell(c[i]) for c in cols] for i in range(result.table.num_rows)],
        "n_rows": result.table.num_rows,
        "truncated": result.overflow,
        "scs_url": scs_url,
        "adql": adql,
        "query_link": f"{root}/query?" + urlencode({"QUERY": adql}),
    }
    return render("cone.html", request, **context)


async def maps_page(request: Request) -> Response:
    """``/maps``: published maps, SIA queries and the cutout form."""
    from skysense.vo.maps import list_maps
    from skysense.vo.sia import DATALINK_PATH, map_did

    backend = request.app.state.backend
    maps = await anyio.to_thread.run_sync(lambda: list_maps(backend))
    root = base_url(request)
    rows = []
    for m in maps:
        rows.append(
            {
                "info": m,
                "did": map_did(m.name),
                "file_url": f"{root}/maps/{m.name}.fits",
                "datalink_url": f"{root}{DATALINK_PATH}?" + urlencode({"ID": map_did(m.name)}),
                "preview_url": f"{root}/preview/{m.name}.png",
                "sia_url": f"{root}/sia/query?"
                + urlencode({"POS": f"CIRCLE {m.center_ra:.5f} {m.center_dec:.5f} 0.01"}),
                "example_cutout": f"{root}/soda/sync?"
                + urlencode(
                    {
                        "ID": map_did(m.name),
                        "CIRCLE": f"{m.center_ra:.5f} {m.center_dec:.5f} "
                        f"{max(m.pixel_arcsec * 20 / 3600, 0.001):.4f}",
                    }
                ),
            }
        )
    return render("maps.html", request, maps=rows, page_title="Maps and cutouts")


def routes() -> list[Route | Mount]:
    """The Starlette routes of the web pages and their stylesheet."""
    return [
        Route("/", index_page, methods=["GET"], name="index"),
        Route("/table/{name}", table_page, methods=["GET"], name="table_page"),
        Route("/query", query_page, methods=["GET", "POST"], name="query_page"),
        Route("/cone", cone_page, methods=["GET", "POST"], name="cone_page"),
        Route("/maps", maps_page, methods=["GET"], name="maps_page"),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
