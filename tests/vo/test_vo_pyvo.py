"""pyvo end to end against a real uvicorn server (DuckDB and PostgreSQL): run_sync, run_async,
uploads (inline and by URL), overflow, errors as DALQueryError."""

from __future__ import annotations

import urllib.parse
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

pyvo = pytest.importorskip("pyvo")


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
