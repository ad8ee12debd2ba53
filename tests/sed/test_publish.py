"""help.sed and its best-fit spectra in the VO database, reached from pyvo (TAP join, cone
search row -> DataLink -> spectrum as VOTable)."""

import io as _io
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import pyvo
from astropy.io.votable import parse as parse_votable

from skysense.sed import io
from skysense.vo.app import create_app
from skysense.vo.backends import open_backend
from skysense.vo.links import declared_links
from skysense.vo.publish import publish_arrow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vo"))
from _vo_support import ServerThread, server_settings  # noqa: E402

N = 12


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sedvo")
    db = str(tmp / "vo.duckdb")
    rng = np.random.default_rng(5)
    ids = [f"HELP_J{i:04d}" for i in range(N)]
    backend = open_backend(db)
    try:
        ml = pa.table(
            {"help_id": ids, "ra": rng.uniform(149.9, 150.1, N), "dec": rng.uniform(1.9, 2.1, N)}
        )
        publish_arrow(backend, ml, "help.masterlist", ra="ra", dec="dec")
        table = pd.DataFrame({"help_id": ids, "redshift": rng.uniform(0.1, 1, N),
                              "bayes_mstar": rng.uniform(9, 11, N), "bayes_mstar_err": 0.1,
                              "chi2": 3.0, "flag_energy_balance": False, "best_model": 1})  # fmt: skip
        wave = np.tile(np.geomspace(0.1, 1000, 20), (N, 1))
        fnu = rng.uniform(0, 1, (N, 20))
        names = io.publish_sed(backend, table, wave, fnu, masterlist="help.masterlist")
        assert names == ["help.sed", "help.sed_spectra"]
        _, links = declared_links(backend, "help.masterlist")
        assert {t.table for t in links} == {"help.sed", "help.sed_spectra"}
    finally:
        backend.close()
    with ServerThread(create_app(server_settings(db, tmp))) as server:
        yield server.url, table, wave, fnu


def test_tap_join_with_masterlist(site):
    url, table, *_ = site
    tap = pyvo.dal.TAPService(f"{url}/tap")
    res = tap.run_sync("SELECT m.help_id, m.ra, s.bayes_mstar FROM help.masterlist AS m "
                       "JOIN help.sed AS s ON m.help_id = s.help_id ORDER BY m.help_id").to_table()  # fmt: skip
    assert len(res) == N
    np.testing.assert_allclose(np.asarray(res["bayes_mstar"]), table["bayes_mstar"].to_numpy())
    col = [c for c in tap.tables["help.sed"].columns if c.name == "bayes_mstar"][0]
    assert col.unit == "log(solMass)" and "phys.mass" in col.ucd


def test_spectrum_from_a_cone_search_row(site):
    url, table, wave, fnu = site
    result = pyvo.dal.SCSService(f"{url}/scs/help.masterlist").search(pos=(150.0, 2.0), radius=0.3)
    rec = next(r for r in result if str(r["help_id"]) == "HELP_J0003")
    links = rec.getdatalink()
    spec = [r for r in links if str(r.get("content_qualifier")) == "#spectrum"]
    assert len(spec) == 1
    body = httpx.get(spec[0].access_url, timeout=60).content
    got = parse_votable(_io.BytesIO(body)).get_first_table().to_table()
    order = np.argsort(np.asarray(got["wavelength_um"]))
    np.testing.assert_allclose(np.asarray(got["fnu_mjy"])[order], fnu[3], rtol=1e-6)


def test_nothing_fitted_publishes_nothing(tmp_path):
    backend = open_backend(str(tmp_path / "e.duckdb"))
    try:
        assert io.publish_sed(backend, pd.DataFrame(), np.empty((0, 0)), np.empty((0, 0))) == []
        assert "help.sed" not in backend.catalog().tables
    finally:
        backend.close()


def test_spectrum_as_fits_from_a_sed_row(site):
    from astropy.io import fits

    from skysense.vo.datalink import source_did

    url, table, wave, fnu = site
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(
        f"{url}/datalink/links?ID="
        + httpx.QueryParams({"x": source_did("help.sed", "HELP_J0005")})["x"]
    )
    got = [r for r in links if str(r.get("content_type")) == "application/fits"]
    assert len(got) == 1
    with fits.open(_io.BytesIO(httpx.get(got[0].access_url, timeout=60).content)) as hdul:
        data = hdul[1].data
        order = np.argsort(data["wavelength_um"])
        np.testing.assert_allclose(data["fnu_mjy"][order], fnu[5], rtol=1e-6)
