"""pyvo end to end against a real uvicorn server (DuckDB and PostgreSQL): run_sync, run_async,
uploads (inline and by URL), overflow, errors as DALQueryError."""

from __future__ import annotations

import urllib.parse
import warnings

import numpy as np
import pytest
import pyvo
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table


@pytest.fixture(scope="module")
def service(live):
    url, _ = live
    return pyvo.dal.TAPService(f"{url}/tap")


def _brute(sky, ra0, dec0, radius_deg):
    c = SkyCoord(sky.column("ra").to_numpy() * u.deg, sky.column("dec").to_numpy() * u.deg)
    sep = c.separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
    return set(sky.column("object_id").to_numpy()[sep < radius_deg].tolist())


def test_run_sync_cone(service, sky):
    result = service.run_sync(
        "SELECT object_id, ra, dec, mag_r FROM demo.sky "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 0.2, -0.3, 1.0))"
    )
    table = result.to_table()
    assert set(table["object_id"].tolist()) == _brute(sky, 0.2, -0.3, 1.0)
    assert table["ra"].unit == u.deg and table["mag_r"].unit == u.mag
    assert result.resultstable.get_field_by_id_or_name("ra").ucd == "pos.eq.ra;meta.main"


def test_run_async(service):
    result = service.run_async(
        "SELECT kind, COUNT(*) AS n FROM demo.sky GROUP BY kind ORDER BY kind"
    )
    table = result.to_table()
    assert [str(k) for k in table["kind"]] == ["galaxy", "star"]
    assert int(table["n"].sum()) == 3000


def test_upload_astropy_table(service, sky):
    pick = np.arange(0, 3000, 150)
    t = Table(
        {
            "ra": sky.column("ra").to_numpy()[pick],
            "dec": sky.column("dec").to_numpy()[pick],
            "tag": pick,
        }
    )
    result = service.run_sync(
        "SELECT u.tag, s.object_id FROM TAP_UPLOAD.t AS u JOIN demo.sky AS s "
        "ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 1e-6))",
        uploads={"t": t},
    ).to_table()
    assert sorted(zip(result["tag"].tolist(), result["object_id"].tolist())) == [
        (int(i), int(i) + 1) for i in pick
    ]
    async_result = service.run_async("SELECT COUNT(*) AS n FROM TAP_UPLOAD.t", uploads={"t": t})
    assert int(async_result.to_table()["n"][0]) == len(pick)


def test_upload_by_url(service, live):
    url, _ = live
    # The source of the upload is a VOTable served over HTTP (here: by this very server).
    source = f"{url}/tap/sync?" + urllib.parse.urlencode(
        {
            "LANG": "ADQL",
            "QUERY": "SELECT TOP 5 object_id, ra, dec FROM demo.sky ORDER BY object_id",
        }
    )
    result = service.run_sync(
        "SELECT COUNT(*) AS n, MAX(object_id) AS m FROM TAP_UPLOAD.remote",
        uploads={"remote": source},
    ).to_table()
    assert int(result["n"][0]) == 5 and int(result["m"][0]) == 5


def test_overflow(service):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = service.run_sync("SELECT object_id FROM demo.sky", maxrec=25)
    assert len(result) == 25
    assert result.query_status == "OVERFLOW"
    full = service.run_sync("SELECT TOP 10 object_id FROM demo.sky")
    assert full.query_status == "OK"


def test_errors_surface_as_dal_query_error(service):
    with pytest.raises(pyvo.dal.DALQueryError, match=r"line 1, column \d+"):
        service.run_sync("SELECT object_id FROM demo.sky WHERE")
    with pytest.raises(pyvo.dal.DALQueryError, match="nonexistent"):
        service.run_sync("SELECT nonexistent FROM demo.sky")
    with pytest.raises(pyvo.dal.DALQueryError):
        service.run_async("SELECT * FROM demo.nothere")


def test_service_metadata(service):
    assert "demo.sky" in [t.name for t in service.tables]
    assert service.maxrec == 1000 and service.hardlimit == 5000
    assert "upload-inline" in [m.ivo_id.rsplit("#", 1)[1] for m in service.upload_methods]


# --------------------------------------------------------------------------------------------
# SIA2 -> DataLink -> SODA, as a pyvo user does it


@pytest.fixture(scope="module")
def maps_site(tmp_path_factory):
    from _vo_support import ServerThread, server_settings
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysense.vo.app import create_app
    from skysense.vo.backends import open_backend
    from skysense.vo.maps import publish_map

    tmp = tmp_path_factory.mktemp("pyvo_maps")
    for name, ra0 in (("spire250", 150.0), ("spire350", 150.02)):
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [ra0, 2.0]
        w.wcs.crpix = [40.5, 30.5]
        w.wcs.cdelt = [-6 / 3600, 6 / 3600]
        data = np.random.default_rng(len(name) + int(ra0 * 100)).normal(size=(60, 80))
        hdu = fits.ImageHDU(data.astype(np.float32), w.to_header(), name="IMAGE")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp / f"{name}.fits")
    db = str(tmp / "maps.duckdb")
    backend = open_backend(db)
    try:
        for name in ("spire250", "spire350"):
            publish_map(backend, tmp / f"{name}.fits", name=name)
    finally:
        backend.close()
    with ServerThread(create_app(server_settings(db, tmp))) as server:
        yield server.url, tmp


def test_sia2_record_datalink_then_cutout(maps_site):
    import io

    from astropy.io import fits

    from skysense.vo.cutout import Circle, cutout_hdulist

    url, tmp = maps_site
    # The root URL is enough: pyvo finds /sia/query in {root}/capabilities.
    sia = pyvo.dal.SIA2Service(url)
    records = sia.search(pos=(150.0, 2.0, 0.01))
    rec = next(r for r in records if r.obs_id == "spire250")
    links = rec.getdatalink()
    this = next(links.bysemantics("#this", include_narrower=False))
    assert this.access_url == f"{url}/maps/spire250.fits"
    assert this.content_type == "application/fits"
    cutout = next(links.bysemantics("#cutout", include_narrower=False))
    got = fits.open(io.BytesIO(cutout.processed(circle=(150.005, 2.003, 0.01)).read()))
    with fits.open(tmp / "spire250.fits") as parent:
        want = cutout_hdulist(parent, Circle(150.005, 2.003, 0.01))
        np.testing.assert_array_equal(got["IMAGE"].data, want["IMAGE"].data)
    preview = next(links.bysemantics("#preview", include_narrower=False))
    assert preview.content_type == "image/png"
    # The whole result set at once (pyvo batches the IDs into one DataLink request).
    both = sia.search(pos=(150.01, 2.0, 0.01))
    per_record = {
        str(dl.original_row["obs_id"]): {str(r.semantics) for r in dl}
        for dl in both.iter_datalinks()
    }
    assert per_record == {
        "spire250": {"#this", "#cutout", "#preview"},
        "spire350": {"#this", "#cutout", "#preview"},
    }
