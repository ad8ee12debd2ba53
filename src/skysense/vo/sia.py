"""SIA v2 discovery of the published maps, and SODA synchronous cutouts.

Endpoints (see :func:`routes`):

- ``/sia/query``: SIA 2.0 discovery. ``POS`` (``CIRCLE``/``RANGE``/``POLYGON``), ``BAND``
  (wavelength interval, m), ``FOV`` (deg), ``SPATRES`` (arcsec), ``ID``, ``COLLECTION``,
  ``FACILITY``, ``INSTRUMENT``, ``DPTYPE``, ``CALIB``, ``FORMAT``, ``TARGET``, ``TIME``,
  ``POL``, ``EXPTIME`` and ``MAXREC``. Repeated values of one parameter are ORed, different
  parameters ANDed; maps carry no time, polarisation, exposure or target, so constraints on
  those match nothing. The answer is a VOTable of ObsCore columns (``access_url`` points at
  the full map) followed by two service descriptors (DataLink ``adhoc:service`` resources,
  ``ID`` bound to ``obs_publisher_did``): SODA, so clients can ask for cutouts, and the
  DataLink {links} service (:mod:`skysense.vo.datalink`), so pyvo's ``getdatalink()`` finds
  each map's file, cutout service and preview.
- ``/sia/capabilities``, ``/sia/availability``: the VOSI documents pyvo's ``SIA2Service``
  reads first (given the service root instead, it reads ``/capabilities``, see
  :func:`skysense.vo.vosi.root_capabilities_xml`).
- ``/soda/sync``: SODA 1.0 cutout of one map (``ID``) to one of ``POS``, ``CIRCLE`` or
  ``POLYGON``; the answer is a FITS file (an empty primary HDU, then each image extension of
  the map cut to the region, with a WCS that keeps every pixel's world coordinates).
- ``/maps/{name}.fits``: the full registered map.

Maps are found only through the registry (:mod:`skysense.vo.maps`): a request names a map
id, never a path.
"""

from __future__ import annotations

import functools
import io
import math
import os
from xml.sax.saxutils import escape, quoteattr

import anyio.to_thread
from astropy.io import fits
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from skysense._resources import read_ecsv
from skysense.errors import InputError, SkysenseError
from skysense.vo._dalparams import DALParams, base_url, read_params
from skysense.vo.cutout import (
    NoOverlapError,
    Region,
    cutout_hdulist,
    parse_circle,
    parse_polygon,
    parse_pos,
    region_pixel_bounds,
)
from skysense.vo.limits import Deadline
from skysense.vo.maps import MapInfo, get_map, list_maps
from skysense.vo.vosi import (
    DATALINK_PATH,
    DATALINK_STANDARD_ID,
    SIA2_STANDARD_ID,
    SODA_STANDARD_ID,
    availability_xml,
    capabilities_document,
    std_capability,
    vosi_capability,
)

__all__ = [
    "routes",
    "discover",
    "sia_votable",
    "map_did",
    "map_name_from_id",
    "soda_cutout",
    "soda_region",
    "DID_PREFIX",
    "SIA2_STANDARD_ID",
    "SODA_STANDARD_ID",
    "DATALINK_STANDARD_ID",
    "DATALINK_PATH",
    "COLLECTION",
    "soda_descriptor",
    "datalink_descriptor",
]

DID_PREFIX = "ivo://skysense/maps?"
COLLECTION = "skysense-maps"
_VOTABLE_MIME = "application/x-votable+xml"


def map_did(name: str) -> str:
    """The publisher dataset identifier (``obs_publisher_did``) of a map."""
    return DID_PREFIX + name


def map_name_from_id(value: str) -> str:
    """Map id from a SODA/SIA ``ID`` value (the publisher DID or the bare map name)."""
    value = value.strip()
    return value[len(DID_PREFIX) :] if value.startswith(DID_PREFIX) else value


# --------------------------------------------------------------------------------------------
# discovery (pure given the list of maps)


def _interval(text: str, param: str) -> tuple[float, float]:
    parts = text.split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"{param}: {text!r} is not one or two numbers") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or any(math.isnan(v) for v in values):
        raise InputError(f"{param}: expected 'lower upper' (two numbers), got {text!r}")
    lo, hi = values
    if lo > hi:
        raise InputError(f"{param}: lower bound {lo:g} exceeds upper bound {hi:g}")
    return lo, hi


def _overlaps(lo: float, hi: float, vmin: float | None, vmax: float | None) -> bool:
    if vmin is None or vmax is None:
        return False
    return vmin <= hi and vmax >= lo


def _record_values(info: MapInfo) -> dict:
    return {
        "obs_publisher_did": map_did(info.name),
        "obs_id": info.name,
        "obs_collection": COLLECTION,
        "facility_name": info.facility,
        "instrument_name": info.instrument,
        "dataproduct_type": "image",
        "calib_level": 3,
        "access_format": "image/fits",
        "s_fov": 2.0 * info.radius_deg,
        "s_resolution": info.fwhm_arcsec,
    }


def discover(maps: list[MapInfo], params: DALParams) -> tuple[list[MapInfo], bool]:
    """The maps matching SIA 2.0 query parameters.

    Parameters
    ----------
    maps : list of MapInfo
        Every registered map.
    params : DALParams
        The request parameters.

    Returns
    -------
    matches : list of MapInfo
        In registry order, cut at MAXREC.
    overflow : bool
        True when MAXREC cut the list.

    Raises
    ------
    InputError
        A malformed value (the message names the parameter).
    """
    # SIA 2.0: unknown parameters are ignored.
    regions: list[Region] = [parse_pos(v) for v in params.getlist("POS")]
    bands = [_interval(v, "BAND") for v in params.getlist("BAND")]
    fovs = [_interval(v, "FOV") for v in params.getlist("FOV")]
    spatres = [_interval(v, "SPATRES") for v in params.getlist("SPATRES")]
    calibs = []
    for v in params.getlist("CALIB"):
        try:
            calibs.append(int(v))
        except ValueError:
            raise InputError(f"CALIB: {v!r} is not an integer level (0-4)") from None
    maxrec_text = params.get("MAXREC")
    maxrec = None
    if maxrec_text is not None:
        try:
            maxrec = int(maxrec_text)
        except ValueError:
            raise InputError(f"MAXREC: {maxrec_text!r} is not an integer") from None
        if maxrec < 0:
            raise InputError("MAXREC must not be negative")
    equal = {
        "ID": "obs_publisher_did",
        "COLLECTION": "obs_collection",
        "FACILITY": "facility_name",
        "INSTRUMENT": "instrument_name",
        "DPTYPE": "dataproduct_type",
        "FORMAT": "access_format",
    }
    # Maps have no time, polarisation, exposure or target metadata: such constraints exclude.
    for name in ("TIME", "POL", "EXPTIME", "TARGET", "TIMERES", "SPECRP"):
        if params.getlist(name):
            return [], False
    out = []
    for info in maps:
        rec = _record_values(info)
        ok = True
        for param, key in equal.items():
            wanted = params.getlist(param)
            if not wanted:
                continue
            value = str(rec[key])
            if param == "ID":
                wanted = [map_did(map_name_from_id(w)) for w in wanted]
            if param == "FORMAT":
                wanted = ["image/fits" if w.lower() == "application/fits" else w for w in wanted]
            if value not in wanted:
                ok = False
                break
        if ok and calibs and rec["calib_level"] not in calibs:
            ok = False
        if ok and bands:
            ok = any(_overlaps(lo, hi, info.em_min_m, info.em_max_m) for lo, hi in bands)
        if ok and fovs:
            ok = any(lo <= rec["s_fov"] <= hi for lo, hi in fovs)
        if ok and spatres:
            res = rec["s_resolution"]
            ok = res is not None and any(lo <= res <= hi for lo, hi in spatres)
        if ok and regions:
            wcs = info.wcs()
            ok = any(region_pixel_bounds(r, wcs, info.shape) is not None for r in regions)
        if ok:
            out.append(info)
    if maxrec is not None and len(out) > maxrec:
        return out[:maxrec], True
    return out, False


@functools.cache
def _obscore_fields() -> tuple[tuple[str, str, str, str, str, str], ...]:
    """ObsCore 1.1 columns, in FIELD order: (name, datatype, unit, ucd, utype, description),
    from the package data file ``vo/data/obscore.ecsv`` (read at first use)."""
    rows, _ = read_ecsv("skysense.vo", "obscore.ecsv")
    keys = ("name", "datatype", "unit", "ucd", "utype", "description")
    return tuple(tuple(row[k] for k in keys) for row in rows)


_LONG_NULL = -9223372036854775808


def _row(info: MapInfo, root: str) -> dict:
    flux_ucd = "phot.flux.density" if "jy" in info.unit.lower() else ""
    return {
        "dataproduct_type": "image",
        "calib_level": 3,
        "obs_collection": COLLECTION,
        "obs_id": info.name,
        "obs_publisher_did": map_did(info.name),
        "access_url": f"{root}/maps/{info.name}.fits",
        "access_format": "image/fits",
        "access_estsize": max(1, int(math.ceil(info.size_bytes / 1024))),
        "target_name": None,
        "s_ra": info.center_ra,
        "s_dec": info.center_dec,
        "s_fov": 2.0 * info.radius_deg,
        "s_region": info.polygon_deg,
        "s_resolution": info.fwhm_arcsec,
        "s_xel1": info.shape[1],
        "s_xel2": info.shape[0],
        "s_pixel_scale": info.pixel_arcsec,
        "t_min": None,
        "t_max": None,
        "t_exptime": None,
        "t_resolution": None,
        "t_xel": None,
        "em_min": info.em_min_m,
        "em_max": info.em_max_m,
        "em_res_power": None,
        "em_xel": 1,
        "o_ucd": flux_ucd or None,
        "pol_states": None,
        "pol_xel": None,
        "facility_name": info.facility or None,
        "instrument_name": info.instrument or None,
        "band": info.band,
        "bunit": info.unit,
        "description": info.description,
    }


def _td(value, datatype: str) -> str:
    if value is None:
        return f"<TD>{_null(datatype)}</TD>" if datatype in ("long", "short") else "<TD/>"
    if datatype == "double":
        return f"<TD>{float(value)!r}</TD>"
    if datatype in ("long", "short"):
        return f"<TD>{int(value)}</TD>"
    return f"<TD>{escape(str(value))}</TD>"


def _null(datatype: str) -> str:
    return str(_LONG_NULL) if datatype == "long" else "-32768"


def soda_descriptor(root: str, *, id_ref: str, resource_id: str = "soda_sync") -> list[str]:
    """The SODA sync service descriptor (a DataLink ``adhoc:service`` RESOURCE), as lines.

    Parameters
    ----------
    root : str
        Public root URL of the service.
    id_ref : str
        XML ID of the FIELD whose value is the dataset ``ID`` of each row.
    resource_id : str
        XML ID of the RESOURCE (what a DataLink ``service_def`` names).
    """
    return [
        f'<RESOURCE type="meta" utype="adhoc:service" name="{resource_id}" ID="{resource_id}">',
        "<DESCRIPTION>SODA synchronous cutouts of the published maps</DESCRIPTION>",
        f'<PARAM name="standardID" datatype="char" arraysize="*" value="{SODA_STANDARD_ID}"/>',
        f'<PARAM name="accessURL" datatype="char" arraysize="*" value={quoteattr(root + "/soda/sync")}/>',
        '<GROUP name="inputParams">',
        '<PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main" '
        f'ref="{id_ref}" value=""/>',
        '<PARAM name="CIRCLE" datatype="double" arraysize="3" xtype="circle" unit="deg" '
        'ucd="obs.field" value=""><DESCRIPTION>Cutout circle: ra dec radius (deg)'
        "</DESCRIPTION></PARAM>",
        '<PARAM name="POLYGON" datatype="double" arraysize="*" xtype="polygon" unit="deg" '
        'ucd="obs.field" value=""><DESCRIPTION>Cutout polygon: ra1 dec1 ra2 dec2 ... (deg)'
        "</DESCRIPTION></PARAM>",
        '<PARAM name="POS" datatype="char" arraysize="*" ucd="obs.field" value="">'
        "<DESCRIPTION>Cutout region: CIRCLE, RANGE or POLYGON (DALI syntax, deg)"
        "</DESCRIPTION></PARAM>",
        "</GROUP>",
        "</RESOURCE>",
    ]


def datalink_descriptor(root: str, *, id_ref: str) -> list[str]:
    """The DataLink {links} service descriptor (``adhoc:service`` RESOURCE), as lines.

    pyvo's ``getdatalink()`` and ``iter_datalinks()`` find the links of a record through it
    (``ID`` bound to the FIELD ``id_ref``).
    """
    return [
        '<RESOURCE type="meta" utype="adhoc:service" name="datalink" ID="datalink">',
        "<DESCRIPTION>DataLink: the map file, its SODA cutouts and a PNG preview</DESCRIPTION>",
        f'<PARAM name="standardID" datatype="char" arraysize="*" value="{DATALINK_STANDARD_ID}"/>',
        '<PARAM name="accessURL" datatype="char" arraysize="*" '
        f"value={quoteattr(root + DATALINK_PATH)}/>",
        '<GROUP name="inputParams">',
        '<PARAM name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main" '
        f'ref="{id_ref}" value=""/>',
        "</GROUP>",
        "</RESOURCE>",
    ]


def sia_votable(maps: list[MapInfo], root: str, *, overflow: bool = False) -> bytes:
    """The SIA 2.0 response: ObsCore rows plus a SODA service descriptor.

    Parameters
    ----------
    maps : list of MapInfo
        The matching maps.
    root : str
        Public root URL of the service (for ``access_url`` and the SODA ``accessURL``).
    overflow : bool
        Add ``QUERY_STATUS=OVERFLOW`` after the table.
    """
    from skysense.vo.votable import votable_document

    fields = []
    for name, datatype, unit, ucd, utype, desc in _obscore_fields():
        attrs = [f'name="{name}"', f'ID="{name}"']
        if datatype == "polygon":
            attrs += ['datatype="double"', 'arraysize="*"', 'xtype="polygon"']
        else:
            attrs.append(f'datatype="{datatype}"')
        if datatype == "char":
            attrs.append('arraysize="*"')
        if unit:
            attrs.append(f'unit="{unit}"')
        if ucd:
            attrs.append(f'ucd="{ucd}"')
        if utype:
            attrs.append(f'utype="{utype}"')
        inner = f"<DESCRIPTION>{escape(desc)}</DESCRIPTION>"
        if datatype in ("long", "short"):
            inner += f'<VALUES null="{_null(datatype)}"/>'
        fields.append(f"<FIELD {' '.join(attrs)}>{inner}</FIELD>")
    rows = []
    for info in maps:
        row = _row(info, root)
        rows.append("<TR>" + "".join(_td(row[f[0]], f[1]) for f in _obscore_fields()) + "</TR>")
    return votable_document(
        "results",
        fields,
        rows,
        standard_id=SIA2_STANDARD_ID,
        overflow="" if overflow else None,
        resources=[
            *soda_descriptor(root, id_ref="obs_publisher_did"),
            *datalink_descriptor(root, id_ref="obs_publisher_did"),
        ],
    )


def _dali_error(message: str) -> bytes:
    from skysense.vo.votable import error_votable

    return error_votable(message)


async def sia_query_endpoint(request: Request) -> Response:
    """``/sia/query``: SIA 2.0 discovery (errors: DALI error VOTable, HTTP 200)."""
    backend = request.app.state.backend
    try:
        params = await read_params(request)
        fmt = (params.get("RESPONSEFORMAT") or "").strip().lower()
        if fmt and not fmt.startswith(("application/x-votable+xml", "votable", "text/xml")):
            raise InputError(f"RESPONSEFORMAT {fmt!r} is not supported; use VOTable")

        def work():
            return discover(list_maps(backend), params)

        matches, overflow = await anyio.to_thread.run_sync(work)
    except SkysenseError as exc:
        return Response(_dali_error(f"UsageError: {exc}"), media_type=_VOTABLE_MIME)
    return Response(
        sia_votable(matches, base_url(request), overflow=overflow), media_type=_VOTABLE_MIME
    )


def _capabilities(root: str) -> bytes:
    return capabilities_document(
        vosi_capability("capabilities", f"{root}/sia/capabilities"),
        vosi_capability("availability", f"{root}/sia/availability"),
        std_capability(SIA2_STANDARD_ID, f"{root}/sia/query", "2.0"),
        std_capability(SODA_STANDARD_ID, f"{root}/soda/sync", "1.0"),
        std_capability(DATALINK_STANDARD_ID, f"{root}{DATALINK_PATH}", "1.1"),
    ).encode()


async def sia_capabilities_endpoint(request: Request) -> Response:
    """``/sia/capabilities``: VOSI capabilities of the SIA/SODA services."""
    return Response(_capabilities(base_url(request)), media_type="text/xml")


async def sia_availability_endpoint(request: Request) -> Response:
    """``/sia/availability``: VOSI availability."""
    return Response(availability_xml(True), media_type="text/xml")


# --------------------------------------------------------------------------------------------
# SODA


def soda_region(params: DALParams) -> Region:
    """The one cutout region of a SODA request (``POS``, ``CIRCLE`` or ``POLYGON``).

    Raises
    ------
    InputError
        No region, several regions (SODA ``MultiValuedParamNotSupported``), or a bad value.
    """
    given = [(n, v) for n in ("POS", "CIRCLE", "POLYGON") for v in params.getlist(n)]
    if not given:
        raise InputError("UsageError: give one of POS, CIRCLE or POLYGON")
    if len(given) > 1:
        names = ", ".join(n for n, _ in given)
        raise InputError(
            f"MultiValuedParamNotSupported: only one cutout region per request (got {names})"
        )
    name, value = given[0]
    try:
        if name == "POS":
            return parse_pos(value)
        if name == "CIRCLE":
            return parse_circle(value)
        return parse_polygon(value)
    except InputError as exc:
        raise InputError(f"UsageError: {exc}") from None


def soda_cutout(info: MapInfo, region: Region, *, deadline: Deadline | None = None) -> bytes:
    """FITS bytes of the cutout of a registered map (blocking), within ``deadline``.

    Raises
    ------
    NoOverlapError
        The region misses the map.
    CutoutTimeout
        The deadline passed.
    """
    with fits.open(info.path, memmap=True) as hdul:
        selected = fits.HDUList([h for h in hdul if (h.name or "") in info.extensions])
        if not len(selected):
            selected = hdul
        out = cutout_hdulist(selected, region, source=info.name, deadline=deadline)
        out[0].header["OBJECT"] = (info.name, "map id")
        # One 80-character card holds the keyword, the value and the comment: a long polygon
        # is shortened visibly rather than letting astropy cut the comment with a warning.
        text = region.to_dali()
        text = text if len(text) <= 45 else text[:41] + " ..."
        out[0].header["SODAREG"] = (text, "cutout region (deg)")
        buf = io.BytesIO()
        out.writeto(buf)
    return buf.getvalue()


class _SodaError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _soda_map(backend, params: DALParams) -> MapInfo:
    ids = params.getlist("ID")
    if not ids:
        raise _SodaError(400, "UsageError: the ID parameter is missing")
    if len(ids) > 1:
        raise _SodaError(400, "MultiValuedParamNotSupported: give one ID per request")
    info = get_map(backend, map_name_from_id(ids[0]))
    if info is None:
        raise _SodaError(404, f"NotFoundFault: {ids[0]}")
    if not os.path.isfile(info.path):
        raise _SodaError(404, f"NotFoundFault: the file of {ids[0]} is missing on the server")
    return info


async def soda_sync_endpoint(request: Request) -> Response:
    """``/soda/sync``: FITS cutout of one map (errors: DALI VOTable, 400/404)."""
    backend = request.app.state.backend
    try:
        params = await read_params(request)
        info = await anyio.to_thread.run_sync(lambda: _soda_map(backend, params))
        try:
            region = soda_region(params)
        except InputError as exc:
            raise _SodaError(400, str(exc)) from None
        try:
            # Cutouts get the time limit of a synchronous query.
            deadline = Deadline(request.app.state.settings.query_timeout_s)
            body = await anyio.to_thread.run_sync(
                lambda: soda_cutout(info, region, deadline=deadline)
            )
        except NoOverlapError as exc:
            raise _SodaError(400, f"NoOverlap: {exc}") from None
        except InputError as exc:
            raise _SodaError(400, f"UsageError: {exc}") from None
    except _SodaError as exc:
        return Response(_dali_error(str(exc)), status_code=exc.status, media_type=_VOTABLE_MIME)
    except SkysenseError as exc:
        return Response(
            _dali_error(f"UsageError: {exc}"), status_code=400, media_type=_VOTABLE_MIME
        )
    filename = f"{info.name}_cutout.fits"
    return Response(
        body,
        media_type="application/fits",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


async def map_file_endpoint(request: Request) -> Response:
    """``/maps/{name}.fits``: the full registered map (registry lookup only)."""
    backend = request.app.state.backend
    name = request.path_params["name"]
    info = await anyio.to_thread.run_sync(lambda: get_map(backend, name))
    if info is None or not os.path.isfile(info.path):
        return Response(
            _dali_error(f"NotFoundFault: no map {name!r}"),
            status_code=404,
            media_type=_VOTABLE_MIME,
        )
    return FileResponse(info.path, media_type="application/fits", filename=f"{info.name}.fits")


def routes() -> list[Route]:
    """The Starlette routes of SIA v2, SODA and the map downloads."""
    return [
        Route("/sia/query", sia_query_endpoint, methods=["GET", "POST"], name="sia_query"),
        Route(
            "/sia/capabilities", sia_capabilities_endpoint, methods=["GET"], name="sia_capabilities"
        ),
        Route(
            "/sia/availability", sia_availability_endpoint, methods=["GET"], name="sia_availability"
        ),
        Route("/soda/sync", soda_sync_endpoint, methods=["GET", "POST"], name="soda_sync"),
        Route("/maps/{name}.fits", map_file_endpoint, methods=["GET"], name="map_file"),
    ]
