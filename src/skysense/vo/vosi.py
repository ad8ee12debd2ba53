"""VOSI resources of the TAP service: capabilities (with TAPRegExt), availability, tables.

- ``/tap/capabilities``: TAP 1.1 ``tr:TableAccess`` capability (ADQL 2.0/2.1 with the language
  features the translator declares in :mod:`skysense.vo.features`, output formats, upload
  methods, retention period, execution duration, output limits, upload limit) plus the VOSI
  capabilities, availability and tables capabilities.
- ``/tap/availability``: VOSI availability (the database answers a trivial query).
- ``/tap/tables`` (``detail=min`` omits columns) and ``/tap/tables/{name}``: VODataService 1.1
  tableset built from the same catalog the translator uses (so TAP_SCHEMA and /tables agree).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from skysense.errors import SkysenseError
from skysense.vo.backends import TAP_SCHEMA_KEYS
from skysense.vo.formats import FORMATS
from skysense.vo.reserved import tap_column_name
from skysense.vo.schema import SchemaCatalog, TableInfo, featured_tables

__all__ = [
    "capabilities_xml",
    "root_capabilities_xml",
    "tables_xml",
    "table_xml",
    "examples_xhtml",
    "availability_xml",
    "capabilities_document",
    "std_capability",
    "vosi_capability",
    "language_features",
    "SIA2_STANDARD_ID",
    "SODA_STANDARD_ID",
    "DATALINK_STANDARD_ID",
    "DATALINK_PATH",
    "KNOWN_FEATURE_TYPES",
    "routes",
    "TableNotFound",
]

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_VR = 'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"'
_VS = 'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
_TR = 'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"'

#: Standard identifiers of the services beside TAP (their capabilities are listed here).
SIA2_STANDARD_ID = "ivo://ivoa.net/std/SIA#query-2.0"
SODA_STANDARD_ID = "ivo://ivoa.net/std/SODA#sync-1.0"
DATALINK_STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
#: Path of the DataLink {links} endpoint (served by :mod:`skysense.vo.datalink`).
DATALINK_PATH = "/datalink/links"


class TableNotFound(SkysenseError, LookupError):
    """``/tap/tables/{name}`` for an unknown table (HTTP 404)."""


_TR_NS = "ivo://ivoa.net/std/TAPRegExt#"

#: Language feature types advertised in the capabilities (those validators know).
KNOWN_FEATURE_TYPES = frozenset(
    _TR_NS + name
    for name in (
        "features-udf",
        "features-adqlgeo",
        "features-adql-string",
        "features-adql-sets",
        "features-adql-type",
        "features-adql-unit",
        "features-adql-offset",
        "features-adql-common-table",
        "features-adql-bitwise",
    )
)


def language_features() -> dict[str, list[tuple[str, str]]]:
    """TAPRegExt language features: {feature type ivo-id: [(form, description), ...]}.

    Taken from :mod:`skysense.vo.features` (the translator's own declaration).
    """
    try:
        from skysense.vo import features as feat
    except ImportError:
        return {}

    for attr in ("TAPREGEXT_FEATURES", "LANGUAGE_FEATURES", "FEATURES"):
        value = getattr(feat, attr, None)
        if value is not None:
            break
    else:
        func = getattr(feat, "language_features", None)
        value = func() if callable(func) else {}
    out: dict[str, list[tuple[str, str]]] = {}
    items = value.items() if isinstance(value, dict) else value
    for type_id, forms in items:
        if type_id not in KNOWN_FEATURE_TYPES:
            # Validators (STILTS taplint 3.4) reject feature types outside the TAPRegExt/ADQL
            # 2.1 vocabulary they know, e.g. ADQL 2.1's "features-adql-conditional"
            # (COALESCE); such features still work, they are just not advertised.
            continue
        rows = []
        for f in forms:
            if isinstance(f, str):
                rows.append((f, ""))
            elif isinstance(f, dict):
                rows.append((f.get("form", ""), f.get("description", "") or ""))
            else:
                form = getattr(f, "form", None)
                if form is not None:
                    rows.append((form, getattr(f, "description", "") or ""))
                else:
                    rows.append((f[0], f[1] if len(f) > 1 else ""))
        out[type_id] = rows
    return out


def capabilities_xml(base: str, settings) -> str:
    """The VOSI capabilities document of the TAP service rooted at ``{base}/tap``."""
    tap = f"{base}/tap"
    feats = []
    for type_id, forms in language_features().items():
        feats.append(f'      <languageFeatures type="{escape(type_id)}">\n')
        for form, description in forms:
            feats.append(f"        <feature>\n          <form>{escape(form)}</form>\n")
            if description:
                feats.append(f"          <description>{escape(description)}</description>\n")
            feats.append("        </feature>\n")
        feats.append("      </languageFeatures>\n")
    outputs = []
    for fmt in FORMATS:
        ivo = f' ivo-id="{fmt.ivo_id}"' if fmt.ivo_id else ""
        outputs.append(f"    <outputFormat{ivo}>\n      <mime>{escape(fmt.mime)}</mime>\n")
        for alias in fmt.aliases[:1]:
            outputs.append(f"      <alias>{escape(alias)}</alias>\n")
        outputs.append("    </outputFormat>\n")
    retention = int(settings.job_destruction_s)
    default_exec = int(settings.async_timeout_s)
    hard_exec = int(settings.async_timeout_hard_s)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        f"{_XSI} {_VR} {_VS} {_TR}>\n"
        '  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">\n'
        '    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">\n'
        f'      <accessURL use="base">{escape(tap)}</accessURL>\n'
        "    </interface>\n"
        # No <dataModel>: the service implements none of the IVOA data models a TAP service
        # can declare (ObsCore, ObsLocTAP, RegTAP), and TAPRegExt makes the element optional.
        "    <language>\n"
        "      <name>ADQL</name>\n"
        '      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>\n'
        '      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>\n'
        "      <description>ADQL 2.1, translated to the database's SQL by skysense</description>\n"
        + "".join(feats)
        + "    </language>\n"
        + "".join(outputs)
        + '    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>\n'
        '    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>\n'
        '    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-https"/>\n'
        "    <retentionPeriod>\n"
        f"      <default>{retention}</default>\n      <hard>{retention}</hard>\n"
        "    </retentionPeriod>\n"
        "    <executionDuration>\n"
        f"      <default>{default_exec}</default>\n      <hard>{hard_exec}</hard>\n"
        "    </executionDuration>\n"
        "    <outputLimit>\n"
        f'      <default unit="row">{settings.maxrec_default}</default>\n'
        f'      <hard unit="row">{settings.maxrec_hard}</hard>\n'
        "    </outputLimit>\n"
        "    <uploadLimit>\n"
        f'      <default unit="byte">{settings.upload_limit_bytes}</default>\n'
        f'      <hard unit="byte">{settings.upload_limit_bytes}</hard>\n'
        "    </uploadLimit>\n"
        "  </capability>\n"
        + vosi_capability("capabilities", f"{tap}/capabilities")
        + vosi_capability("availability", f"{tap}/availability")
        + vosi_capability("tables", f"{tap}/tables")
        + '  <capability standardID="ivo://ivoa.net/std/DALI#examples">\n'
        '    <interface xsi:type="vr:WebBrowser">\n'
        f'      <accessURL use="full">{escape(tap)}/examples</accessURL>\n'
        "    </interface>\n"
        "  </capability>\n" + "</vosi:capabilities>\n"
    )


def root_capabilities_xml(base: str) -> str:
    """VOSI capabilities of the whole service rooted at ``base`` (``/capabilities``).

    Clients given only the root URL find every protocol here, e.g. pyvo's
    ``SIA2Service(root)`` reads ``{root}/capabilities`` and looks for the SIA 2.0 query
    capability. The full TAPRegExt description stays at ``/tap/capabilities``.
    """
    return capabilities_document(
        vosi_capability("capabilities", f"{base}/capabilities"),
        std_capability("ivo://ivoa.net/std/TAP", f"{base}/tap", "1.1"),
        std_capability(SIA2_STANDARD_ID, f"{base}/sia/query", "2.0"),
        std_capability(SODA_STANDARD_ID, f"{base}/soda/sync", "1.0"),
        std_capability(DATALINK_STANDARD_ID, f"{base}{DATALINK_PATH}", "1.1"),
    )


def capabilities_document(*capabilities: str) -> str:
    """A VOSI capabilities document holding the given ``<capability>`` elements."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        f"{_XSI} {_VR} {_VS}>\n" + "".join(capabilities) + "</vosi:capabilities>\n"
    )


def std_capability(standard_id: str, url: str, version: str) -> str:
    """The ``<capability>`` of a standard DAL interface at ``url`` (``use="base"``)."""
    return (
        f'  <capability standardID="{escape(standard_id)}">\n'
        f'    <interface xsi:type="vs:ParamHTTP" role="std" version="{version}">\n'
        f'      <accessURL use="base">{escape(url)}</accessURL>\n'
        "    </interface>\n"
        "  </capability>\n"
    )


def examples_xhtml(catalog: SchemaCatalog, title: str) -> str:
    """DALI 1.1 examples document (XHTML + RDFa): worked ADQL queries on the published tables.

    The queries are built from the catalog, so they always name tables and columns that exist.
    """
    examples = [
        (
            "tables",
            "List the tables",
            "The tables of this service with their descriptions, from TAP_SCHEMA.",
            "SELECT table_name, description FROM TAP_SCHEMA.tables ORDER BY table_name",
        )
    ]
    positional = featured_tables(
        [
            t
            for k, t in sorted(catalog.tables.items())
            if not k.startswith(("tap_schema.", "tap_upload.")) and t.ra and t.dec
        ]
    )
    if positional:
        t = positional[0]
        ra, dec = t.ra, t.dec
        examples.append(
            (
                "cone",
                f"Cone search in {t.name}",
                f"Rows of {t.name} within 0.05 degrees of the position with the smallest RA, "
                "nearest first; the HEALPix index makes this fast on large tables.",
                f"SELECT TOP 100 t.*, DISTANCE(POINT('ICRS', t.{ra}, t.{dec}), POINT('ICRS', "
                f"c.ra0, c.dec0)) AS dist FROM {t.name} AS t JOIN (SELECT TOP 1 {ra} AS ra0, "
                f"{dec} AS dec0 FROM {t.name} ORDER BY {ra}, {dec}) AS c ON 1 = "
                f"CONTAINS(POINT('ICRS', t.{ra}, t.{dec}), CIRCLE('ICRS', c.ra0, c.dec0, 0.05)) "
                "ORDER BY dist",
            )
        )
        examples.append(
            (
                "count",
                f"Row count of {t.name}",
                "An aggregate over a whole table.",
                f"SELECT COUNT(*) AS n_rows FROM {t.name}",
            )
        )
    if len(positional) > 1:
        a, b = positional[0], positional[1]
        examples.append(
            (
                "crossmatch",
                f"Cross-match {a.name} with {b.name}",
                "Pairs closer than 1 arcsec (joins on CONTAINS use the HEALPix index; the same "
                "works with an uploaded table, TAP_UPLOAD.name).",
                f"SELECT TOP 100 a.{a.ra} AS ra_a, a.{a.dec} AS dec_a, b.{b.ra} AS ra_b, "
                f"b.{b.dec} AS dec_b FROM {a.name} AS a JOIN {b.name} AS b ON 1 = "
                f"CONTAINS(POINT('ICRS', b.{b.ra}, b.{b.dec}), CIRCLE('ICRS', a.{a.ra}, "
                f"a.{a.dec}, 1.0 / 3600))",
            )
        )
    body = []
    for ident, name, text, query in examples:
        body.append(
            f'  <div typeof="example" id="{ident}" resource="#{ident}">\n'
            f'    <h2 property="name">{escape(name)}</h2>\n'
            f"    <p>{escape(text)}</p>\n"
            f'    <pre class="dali-example" property="query">{escape(query)}</pre>\n'
            "  </div>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml">\n'
        f"<head><title>{escape(title)}: ADQL examples</title></head>\n"
        '<body vocab="http://www.ivoa.net/rdf/examples#">\n'
        f"  <h1>{escape(title)}: ADQL examples</h1>\n" + "".join(body) + "</body>\n</html>\n"
    )


def vosi_capability(name: str, url: str) -> str:
    """The ``<capability>`` of the VOSI endpoint ``name`` (``capabilities``, ...) at ``url``."""
    return (
        f'  <capability standardID="ivo://ivoa.net/std/VOSI#{name}">\n'
        '    <interface xsi:type="vs:ParamHTTP">\n'
        f'      <accessURL use="full">{escape(url)}</accessURL>\n'
        "    </interface>\n"
        "  </capability>\n"
    )


def availability_xml(available: bool, note: str | None = None) -> str:
    """The VOSI availability document (with a ``note`` element when ``note`` is given)."""
    note_xml = "" if note is None else f"  <vosi:note>{escape(note)}</vosi:note>\n"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        f"  <vosi:available>{'true' if available else 'false'}</vosi:available>\n"
        f"{note_xml}"
        "</vosi:availability>\n"
    )


def _display_name(info: TableInfo) -> str:
    """The name as written in TAP_SCHEMA (TAP_SCHEMA tables upper-case their schema)."""
    if info.name.startswith("tap_schema."):
        return "TAP_SCHEMA." + info.name.split(".", 1)[1]
    return info.name


def _table_body(info: TableInfo, detail: bool, indent: str) -> str:
    out = [f'{indent}<table type="{escape(info.kind or "table")}">\n']
    out.append(f"{indent}  <name>{escape(_display_name(info))}</name>\n")
    if info.description:
        out.append(f"{indent}  <description>{escape(info.description)}</description>\n")
    if detail:
        for col in info.columns.values():
            out.append(f"{indent}  <column>\n")
            out.append(f"{indent}    <name>{escape(tap_column_name(col.name))}</name>\n")
            if col.description:
                out.append(f"{indent}    <description>{escape(col.description)}</description>\n")
            if col.unit:
                out.append(f"{indent}    <unit>{escape(col.unit)}</unit>\n")
            if col.ucd:
                out.append(f"{indent}    <ucd>{escape(col.ucd)}</ucd>\n")
            datatype, arraysize, xtype = col.datatype, col.arraysize, None
            if datatype == "timestamp":
                datatype, arraysize, xtype = "char", "*", "timestamp"
            attrs = ""
            if arraysize:
                attrs += f' arraysize="{escape(str(arraysize))}"'
            if xtype:
                attrs += f' extendedType="{xtype}"'
            out.append(
                f'{indent}    <dataType xsi:type="vs:VOTableType"{attrs}>{datatype}</dataType>\n'
            )
            if col.indexed:
                out.append(f"{indent}    <flag>indexed</flag>\n")
            if col.principal:
                out.append(f"{indent}    <flag>principal</flag>\n")
            if info.name.startswith("tap_schema."):
                out.append(f"{indent}    <flag>std</flag>\n")
            out.append(f"{indent}  </column>\n")
        for _key, src, dst, from_col, target_col in TAP_SCHEMA_KEYS:
            if info.name == f"tap_schema.{src}":
                out.append(
                    f"{indent}  <foreignKey>\n"
                    f"{indent}    <targetTable>TAP_SCHEMA.{dst}</targetTable>\n"
                    f"{indent}    <fkColumn>\n"
                    f"{indent}      <fromColumn>{from_col}</fromColumn>\n"
                    f"{indent}      <targetColumn>{target_col}</targetColumn>\n"
                    f"{indent}    </fkColumn>\n"
                    f"{indent}  </foreignKey>\n"
                )
    out.append(f"{indent}</table>\n")
    return "".join(out)


def _schemas(catalog: SchemaCatalog) -> dict[str, list[TableInfo]]:
    groups: dict[str, list[TableInfo]] = {}
    for key in sorted(catalog.tables, key=lambda k: (not k.startswith("tap_schema."), k)):
        info = catalog.tables[key]
        if key.startswith("tap_upload."):
            continue
        schema = "TAP_SCHEMA" if key.startswith("tap_schema.") else key.split(".", 1)[0]
        groups.setdefault(schema, []).append(info)
    return groups


def tables_xml(catalog: SchemaCatalog, *, detail: bool = True) -> str:
    """The VOSI tableset (``detail=False``: tables without their columns)."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {_XSI} {_VS}>\n'
    ]
    for schema, infos in _schemas(catalog).items():
        out.append(f"  <schema>\n    <name>{escape(schema)}</name>\n")
        for info in infos:
            out.append(_table_body(info, detail, "    "))
        out.append("  </schema>\n")
    out.append("</vosi:tableset>\n")
    return "".join(out)


def table_xml(catalog: SchemaCatalog, name: str) -> str:
    """One table (VOSI 1.1 ``/tables/{name}``)."""
    info = catalog.tables.get(name.lower())
    if info is None or name.lower().startswith("tap_upload."):
        raise TableNotFound(f"no table {name!r}")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _table_body(info, True, "").replace(
        "<table ",
        f'<vosi:table xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {_XSI} {_VS} ',
        1,
    ).replace("</table>\n", "</vosi:table>\n")


def _base(request: Request) -> str:
    override = request.app.state.settings.base_url
    return (override or str(request.base_url)).rstrip("/")


def _xml(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="text/xml")


async def capabilities_endpoint(request: Request) -> Response:
    return _xml(capabilities_xml(_base(request), request.app.state.settings))


async def root_capabilities_endpoint(request: Request) -> Response:
    return _xml(root_capabilities_xml(_base(request)))


async def availability_endpoint(request: Request) -> Response:
    backend = request.app.state.backend
    try:
        await anyio.to_thread.run_sync(backend.catalog)
        return _xml(availability_xml(True, "service is accepting queries"))
    except Exception as exc:  # the document reports unavailability instead of failing
        return _xml(availability_xml(False, f"database unavailable: {exc}"))


async def tables_endpoint(request: Request) -> Response:
    detail = True
    for key, value in request.query_params.multi_items():
        if key.lower() == "detail" and value.lower() == "min":
            detail = False
    catalog = await anyio.to_thread.run_sync(request.app.state.backend.catalog)
    return _xml(tables_xml(catalog, detail=detail))


async def table_endpoint(request: Request) -> Response:
    catalog = await anyio.to_thread.run_sync(request.app.state.backend.catalog)
    return _xml(table_xml(catalog, request.path_params["name"]))


async def examples_endpoint(request: Request) -> Response:
    catalog = await anyio.to_thread.run_sync(request.app.state.backend.catalog)
    text = examples_xhtml(catalog, request.app.state.settings.title)
    return Response(text, media_type="application/xhtml+xml")


def routes() -> list:
    """Starlette routes of the VOSI resources (and the DALI examples)."""
    from starlette.routing import Route

    return [
        Route("/capabilities", root_capabilities_endpoint, methods=["GET"]),
        Route("/tap/capabilities", capabilities_endpoint, methods=["GET"]),
        Route("/tap/availability", availability_endpoint, methods=["GET"]),
        Route("/tap/tables", tables_endpoint, methods=["GET"]),
        Route("/tap/tables/{name}", table_endpoint, methods=["GET"]),
        Route("/tap/examples", examples_endpoint, methods=["GET"]),
    ]
