"""SIA v2 discovery and SODA cutouts, end to end with pyvo against a live uvicorn server."""

from __future__ import annotations

import contextlib
import io

import httpx
import numpy as np
import pytest
import pyvo
from _vo_support import ServerThread
from astropy.io import fits
from astropy.io.votable import parse as parse_votable
from astropy.wcs import WCS

from skysense.vo._dalparams import DALParams
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.cutout import Circle, cutout_hdulist
from skysense.vo.maps import publish_map
from skysense.vo.settings import Settings
from skysense.vo.sia import discover, map_did, sia_votable


def write_map(path, ra0, dec0, nx, ny, pix_arcsec, band, seed):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cdelt = [-pix_arcsec / 3600, pix_arcsec / 3600]
    header = w.to_header()
    header["BUNIT"] = "mJy/beam"
    header["BAND"] = band
    header["FWHM"] = 18.15 if band.startswith("spire") else 5.9
    rng = np.random.default_rng(seed)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(rng.normal(size=(ny, nx)).astype(np.float32), header, name="IMAGE"),
            fits.ImageHDU(rng.random((ny, nx)).astype(np.float32), header, name="ERROR"),
        ]
    ).writeto(path)


@contextlib.contextmanager
def serve(app):
    """uvicorn on a free 127.0.0.1 port in a daemon thread; yields the base URL."""
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sia")
    write_map(tmp / "a.fits", 150.0, 2.0, 120, 100, 6.0, "spire_250", 1)
    write_map(tmp / "b.fits", 0.0, -1.0, 200, 200, 1.2, "mips_24", 2)  # straddles RA = 0
    backend = open_backend(tmp / "vo.duckdb")
    publish_map(backend, tmp / "a.fits", name="spire250", description="SPIRE 250 um")
    publish_map(backend, tmp / "b.fits", name="mips24", description="MIPS 24 um <&>")
    settings = Settings(db=str(tmp / "vo.duckdb"), workdir=str(tmp / "work"))
    try:
        with serve(create_app(settings, backend=backend)) as url:
            yield url, tmp
    finally:
        backend.close()


def value(x, unit: str) -> float:
    """A pyvo attribute as a float in ``unit`` (pyvo gives Quantities for some)."""
    return float(x.to_value(unit)) if hasattr(x, "to_value") else float(x)


def names(results) -> set[str]:
    return {str(r["obs_id"]) for r in results}


def test_pyvo_sia2_discovery(site):
    url, _ = site
    service = pyvo.dal.SIA2Service(url + "/sia")
    assert names(service.search(pos=(150.05, 2.05, 0.01))) == {"spire250"}
    assert names(service.search(pos=(200.0, 30.0, 1.0))) == set()
    # RA wrap: a cone at RA 359.99 finds the map centred on RA 0.
    assert names(service.search(pos=(359.99, -1.0, 0.01))) == {"mips24"}
    # RANGE and POLYGON shapes.
    assert names(service.search(pos=(149.9, 150.1, 1.9, 2.1))) == {"spire250"}
    assert names(service.search(pos=(359.95, -1.05, 0.05, -1.05, 0.0, -0.95))) == {"mips24"}
    # Several POS values are ORed; BAND (m) is ANDed with them.
    both = service.search(pos=[(150.0, 2.0, 0.01), (0.0, -1.0, 0.01)])
    assert names(both) == {"spire250", "mips24"}
    only = service.search(pos=[(150.0, 2.0, 0.01), (0.0, -1.0, 0.01)], band=(2.0e-4, 3.0e-4))
    assert names(only) == {"spire250"}
    assert names(service.search(band=(2.2e-5, 2.3e-5))) == {"mips24"}
    rec = service.search(pos=(150.0, 2.0, 0.01))[0]
    assert rec.s_xel1 == 120 and rec.s_xel2 == 100
    assert value(rec.s_pixel_scale, "arcsec") == pytest.approx(6.0)
    assert value(rec.em_min, "m") == pytest.approx(2.1e-4)
    assert value(rec.s_fov, "deg") == pytest.approx(2 * np.hypot(60, 50) * 6 / 3600, rel=1e-3)
    assert rec.obs_publisher_did == map_did("spire250")
    assert rec.dataproduct_type == "image"


def test_access_url_serves_the_map(site):
    url, tmp = site
    rec = pyvo.dal.SIA2Service(url + "/sia").search(pos=(150.0, 2.0, 0.01))[0]
    body = httpx.get(rec.access_url, timeout=30).content
    with fits.open(io.BytesIO(body)) as got, fits.open(tmp / "a.fits") as want:
        np.testing.assert_array_equal(got["IMAGE"].data, want["IMAGE"].data)


def test_soda_through_the_service_descriptor(site):
    url, tmp = site
    rec = pyvo.dal.SIA2Service(url + "/sia").search(pos=(150.0, 2.0, 0.01))[0]
    stream = rec.processed(circle=(150.01, 2.01, 0.02))
    got = fits.open(io.BytesIO(stream.read()))
    with fits.open(tmp / "a.fits") as parent:
        want = cutout_hdulist(parent, Circle(150.01, 2.01, 0.02))
        assert [h.name for h in got] == ["PRIMARY", "IMAGE", "ERROR"]
        for ext in ("IMAGE", "ERROR"):
            np.testing.assert_array_equal(got[ext].data, want[ext].data)
        # World coordinates of the cutout pixel centres equal those of the parent pixels.
        x0, y0 = got["IMAGE"].header["SSXORIG"], got["IMAGE"].header["SSYORIG"]
        yy, xx = np.mgrid[0 : got["IMAGE"].data.shape[0], 0 : got["IMAGE"].data.shape[1]]
        a = WCS(got["IMAGE"].header).pixel_to_world_values(xx, yy)
        b = WCS(parent["IMAGE"].header).pixel_to_world_values(xx + x0, yy + y0)
        np.testing.assert_allclose(a, b, atol=1e-10)
        np.testing.assert_array_equal(
            got["IMAGE"].data,
            parent["IMAGE"].data[y0 : y0 + yy.shape[0], x0 : x0 + yy.shape[1]],
        )


def test_soda_direct_requests_and_errors(site):
    url, _ = site
    r = httpx.get(
        f"{url}/soda/sync", params={"ID": "mips24", "POS": "RANGE 359.99 0.01 -1.01 -0.99"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/fits"
    hdul = fits.open(io.BytesIO(r.content))
    ra, _ = WCS(hdul["IMAGE"].header).pixel_to_world_values(
        *np.meshgrid(np.arange(hdul["IMAGE"].data.shape[1]), [0])
    )
    assert (ra > 359.9).any() and (ra < 0.1).any()  # cut across RA = 0
    r = httpx.post(
        f"{url}/soda/sync",
        data={"ID": map_did("spire250"), "POLYGON": "150 2 150.02 2 150.01 2.02"},
    )
    assert r.status_code == 200 and fits.open(io.BytesIO(r.content))["IMAGE"].data.size > 0

    def error(params, status):
        resp = httpx.get(f"{url}/soda/sync", params=params)
        assert resp.status_code == status
        vot = parse_votable(io.BytesIO(resp.content))
        info = next(i for i in vot.resources[0].infos if i.name == "QUERY_STATUS")
        assert info.value == "ERROR"
        return str(info.content)

    assert error({"ID": "nope", "CIRCLE": "1 2 3"}, 404).startswith("NotFoundFault")
    assert error({"ID": "../../etc/passwd", "CIRCLE": "1 2 3"}, 404).startswith("NotFoundFault")
    assert error({"CIRCLE": "1 2 3"}, 400).startswith("UsageError")
    assert error({"ID": "mips24"}, 400).startswith("UsageError")
    assert "NoOverlap" in error({"ID": "mips24", "CIRCLE": "180 40 0.1"}, 400)
    msg = error({"ID": "mips24", "CIRCLE": "0 -1 0.01", "POS": "CIRCLE 0 -1 0.02"}, 400)
    assert msg.startswith("MultiValuedParamNotSupported")
    assert "value 2 ('x')" in error({"ID": "mips24", "CIRCLE": "0 x 1"}, 400)
    assert httpx.get(f"{url}/maps/nope.fits").status_code == 404
    assert httpx.get(f"{url}/maps/..%2F..%2Fvo.duckdb.fits").status_code == 404


def test_sia_errors_reach_pyvo_as_query_errors(site):
    url, _ = site
    query = pyvo.dal.sia2.SIA2Query(url + "/sia/query")
    query["POS"] = "CIRCLE 10 100 1"
    with pytest.raises(pyvo.dal.DALQueryError, match="Dec must be in"):
        query.execute()
    r = httpx.get(f"{url}/sia/query", params={"BAND": "3 1"})
    assert "exceeds upper bound" in r.text


def test_maxrec_overflow_and_votable_structure(site):
    url, _ = site
    r = httpx.get(f"{url}/sia/query", params={"MAXREC": "1"})
    vot = parse_votable(io.BytesIO(r.content))
    table = vot.get_first_table()
    assert len(table.array) == 1
    status = [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status == ["OK", "OVERFLOW"]
    descriptor = vot.resources[1]
    assert descriptor.type == "meta" and descriptor.utype == "adhoc:service"
    params = {p.name: p.value for p in descriptor.params}
    assert params["standardID"] == "ivo://ivoa.net/std/SODA#sync-1.0"
    assert params["accessURL"] == f"{url}/soda/sync"
    # Descriptions are escaped (the map's description holds "<&>").
    r = httpx.get(f"{url}/sia/query", params={"ID": "mips24"})
    rows = parse_votable(io.BytesIO(r.content)).get_first_table().to_table()
    assert list(rows["description"]) == ["MIPS 24 um <&>"]


def test_discover_constraints_without_server(tmp_path):
    write_map(tmp_path / "a.fits", 10.0, 10.0, 50, 50, 6.0, "spire_350", 0)
    from skysense.vo.maps import map_info_from_fits

    info = map_info_from_fits(tmp_path / "a.fits", name="a")

    def run(**params):
        items = [
            (k, v)
            for k, vals in params.items()
            for v in (vals if isinstance(vals, list) else [vals])
        ]
        return [m.name for m in discover([info], DALParams(items))[0]]

    assert run() == ["a"]
    assert run(FOV="0.1 0.2") == ["a"]  # diagonal of 50 * 6 arcsec = 0.118 deg
    assert run(FOV="0.2 1") == []
    assert run(SPATRES="15 20") == ["a"] and run(SPATRES="1 2") == []
    assert run(COLLECTION="skysense-maps", DPTYPE="image", CALIB="3") == ["a"]
    assert run(DPTYPE="cube") == [] and run(CALIB=["1", "2"]) == []
    assert run(FACILITY="Herschel", INSTRUMENT="SPIRE") == ["a"]
    assert run(TIME="50000 60000") == []  # maps carry no time: constraints exclude them
    assert run(FORMAT="application/fits") == ["a"]
    body = sia_votable([info], "http://x")
    assert body.count(b"<TR>") == 1


def test_sia2_service_found_from_the_root(site):
    url, _ = site
    service = pyvo.dal.SIA2Service(url)
    assert service.query_ep == f"{url}/sia/query"
    assert names(service.search(pos=(150.05, 2.05, 0.01))) == {"spire250"}
    # The root capabilities name every protocol; the SIA ones name DataLink too.
    root = {c.standardid for c in service.capabilities}
    assert {
        "ivo://ivoa.net/std/TAP",
        "ivo://ivoa.net/std/SIA#query-2.0",
        "ivo://ivoa.net/std/SODA#sync-1.0",
        "ivo://ivoa.net/std/DataLink#links-1.1",
    } <= root
    sia = {c.standardid for c in pyvo.dal.SIA2Service(url + "/sia").capabilities}
    assert "ivo://ivoa.net/std/DataLink#links-1.1" in sia


def test_sia2_records_carry_a_datalink_descriptor(site):
    url, _ = site
    body = httpx.get(f"{url}/sia/query", params={"POS": "CIRCLE 150 2 0.01"}, timeout=30).content
    vot = parse_votable(io.BytesIO(body))
    services = {r.ID: r for r in vot.resources if r.type == "meta"}
    assert set(services) == {"soda_sync", "datalink"}
    params = {p.name: p.value for p in services["datalink"].params}
    assert params["standardID"] == "ivo://ivoa.net/std/DataLink#links-1.1"
    assert params["accessURL"] == f"{url}/datalink/links"
    rec = pyvo.dal.SIA2Service(url + "/sia").search(pos=(150.0, 2.0, 0.01))[0]
    links = rec.getdatalink()
    assert {str(r.semantics) for r in links} == {"#this", "#cutout", "#preview"}
    assert {str(r.id) for r in links} == {map_did("spire250")}
