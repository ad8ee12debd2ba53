"""Publishing tables: formats, metadata, RA/Dec detection, the HEALPix column, atomic replace;
run against DuckDB and PostgreSQL."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
from astropy import units as u
from astropy.table import Table

from skysense.errors import InputError
from skysense.vo.backends import open_backend
from skysense.vo.publish import adql_column_name, publish_arrow, publish_file


@pytest.fixture
def backend(db_url):
    b = open_backend(db_url)
    yield b
    b.close()


def _astropy_table(n=50, seed=3):
    rng = np.random.default_rng(seed)
    t = Table()
    t["SeqNr"] = np.arange(n, dtype=np.int32)
    t["ALPHA_J2000"] = rng.uniform(10, 11, n) * u.deg
    t["DELTA_J2000"] = rng.uniform(-5, -4, n) * u.deg
    t["MAG_AUTO"] = rng.normal(21, 1, n) * u.mag
    t["MAG_AUTO"].description = "Kron magnitude"
    t["CLASS"] = np.where(rng.random(n) < 0.5, "star", "gal")
    return t


def _column(backend, table, name):
    return backend.catalog().tables[table].columns[name]


def test_fits_keeps_units_descriptions_and_detects_positions(backend, tmp_path):
    from cdshealpix.nested import lonlat_to_healpix

    t = _astropy_table()
    path = tmp_path / "cat.fits"
    t.write(path)
    spec = publish_file(backend, path, "help.cat", description="a FITS catalogue")
    assert (spec.ra, spec.dec) == ("alpha_j2000", "delta_j2000")
    info = backend.catalog().tables["help.cat"]
    assert info.n_rows == 50 and info.description == "a FITS catalogue"
    assert info.ra == "alpha_j2000" and info.hpx_column == "_hpx"
    assert _column(backend, "help.cat", "alpha_j2000").unit == "deg"
    assert _column(backend, "help.cat", "alpha_j2000").ucd == "pos.eq.ra;meta.main"
    assert _column(backend, "help.cat", "alpha_j2000").indexed
    assert _column(backend, "help.cat", "mag_auto").unit == "mag"
    assert _column(backend, "help.cat", "mag_auto").description == "Kron magnitude"
    assert "_hpx" not in info.columns
    rows = backend.query(
        f'SELECT "seqnr", "_hpx" FROM {info.physical} ORDER BY "seqnr"'
    ).to_pydict()
    # Independent HEALPix computation (cdshealpix directly, order 14, NESTED).
    expected = lonlat_to_healpix(
        np.asarray(t["ALPHA_J2000"]) * u.deg, np.asarray(t["DELTA_J2000"]) * u.deg, 14
    )
    np.testing.assert_array_equal(rows["_hpx"], np.asarray(expected, dtype=np.int64))


def test_votable_ucds_and_parquet_units(backend, tmp_path):
    from astropy.io.votable import from_table

    t = _astropy_table()
    vot = from_table(t)
    for field in vot.get_first_table().fields:
        if field.name == "MAG_AUTO":
            field.ucd = "phot.mag;em.opt.R"
    vot_path = tmp_path / "cat.vot"
    vot.to_xml(str(vot_path))
    publish_file(backend, vot_path, "help.vot")
    assert _column(backend, "help.vot", "mag_auto").ucd == "phot.mag;em.opt.R"
    assert _column(backend, "help.vot", "mag_auto").unit == "mag"

    pq_path = tmp_path / "cat.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.write(pq_path)
    publish_file(backend, pq_path, "help.pq")
    assert _column(backend, "help.pq", "delta_j2000").unit == "deg"
    assert _column(backend, "help.pq", "mag_auto").description == "Kron magnitude"
    assert backend.catalog().tables["help.pq"].n_rows == 50


def test_csv_with_metadata_file_and_explicit_positions(backend, tmp_path):
    csv = tmp_path / "obs.csv"
    csv.write_text("Name,RA_x,Dec_x,Flux mJy\nA,10.5,-3.25,1.5\nB,11.0,-3.5,\n", encoding="utf-8")
    meta = tmp_path / "obs.yaml"
    meta.write_text(
        "description: two observations\n"
        "columns:\n"
        "  Flux mJy: {unit: mJy, ucd: phot.flux.density, description: total flux}\n"
        "  name: object name\n",
        encoding="utf-8",
    )
    spec = publish_file(backend, csv, "obs.list", meta=meta, ra="RA_x", dec="Dec_x")
    assert spec.ra == "ra_x" and spec.dec == "dec_x"
    info = backend.catalog().tables["obs.list"]
    assert info.description == "two observations"
    flux = info.columns["flux_mjy"]
    assert (flux.unit, flux.ucd, flux.description) == ("mJy", "phot.flux.density", "total flux")
    assert info.columns["name"].description == "object name"
    rows = backend.query(f'SELECT * FROM {info.physical} ORDER BY "name"').to_pydict()
    assert rows["name"] == ["A", "B"] and rows["flux_mjy"] == [1.5, None]


def _write_hats_collection(root, df_main, df_margin):
    """A HATS collection laid out as lsdb 0.11 ``write_catalog`` writes it (primary catalogue +
    margin cache, hive-partitioned Parquet, properties files); written by hand so the test does
    not pay for importing lsdb/Dask."""
    import pyarrow.parquet as pq

    root.mkdir()
    (root / "collection.properties").write_text(
        "#HATS Collection\nobs_collection=toy\nhats_primary_table_url=toy\n"
        "all_margins=toy_5arcs\ndefault_margin=toy_5arcs\n",
        encoding="utf-8",
    )
    for name, df in (("toy", df_main), ("toy_5arcs", df_margin)):
        part = root / name / "dataset" / "Norder=1" / "Dir=0"
        part.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), part / "Npix=17.parquet")
        (root / name / "hats.properties").write_text(
            f"#HATS catalog\nobs_collection={name}\ndataproduct_type=object\n"
            f"hats_nrows={len(df)}\nhats_col_ra=ra\nhats_col_dec=dec\n",
            encoding="utf-8",
        )


def test_hats_directory(tmp_path):
    import pandas as pd

    from skysense.vo.hpx import hpx_index

    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(30, 31, 200), rng.uniform(5, 6, 200)
    df = pd.DataFrame(
        {"_healpix_29": hpx_index(ra, dec, 29), "id": np.arange(200), "ra": ra, "dec": dec}
    )
    _write_hats_collection(tmp_path / "toy", df, df.iloc[:3])
    backend = open_backend(tmp_path / "hats.duckdb")  # the reader is backend-independent
    spec = publish_file(backend, tmp_path / "toy", "help.toy")
    assert (spec.ra, spec.dec) == ("ra", "dec")
    info = backend.catalog().tables["help.toy"]
    assert info.n_rows == 200  # the margin cache is not part of the catalogue
    assert not {"norder", "dir", "npix", "healpix_29"} & set(info.columns)
    got = backend.query(f'SELECT sum("id") AS s FROM {info.physical}').column(0)[0].as_py()
    backend.close()
    assert got == sum(range(200))


def test_replace_is_atomic_and_metadata_not_duplicated(backend):
    first = pa.table({"id": [1, 2], "ra": [1.0, 2.0], "dec": [0.0, 0.5]})
    second = pa.table(
        {"id": [7, 8, 9], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.5, 1.0], "extra": ["x", "y", "z"]}
    )
    publish_arrow(backend, first, "help.swap")
    publish_arrow(backend, second, "help.swap", description="second")
    info = backend.catalog().tables["help.swap"]
    assert info.n_rows == 3 and "extra" in info.columns and info.description == "second"
    rows = (
        backend.query(
            'SELECT count(*) AS n FROM "TAP_SCHEMA"."columns" WHERE table_name = \'help.swap\''
        )
        .column(0)[0]
        .as_py()
    )
    assert rows == 4
    n_tables = (
        backend.query(
            'SELECT count(*) AS n FROM "TAP_SCHEMA"."tables" WHERE table_name = \'help.swap\''
        )
        .column(0)[0]
        .as_py()
    )
    assert n_tables == 1
    assert backend.query(f"SELECT * FROM {info.physical}").num_rows == 3
    # No temporary load table is left behind.
    leftovers = [k for k in backend.catalog().tables if "_load_" in k]
    assert leftovers == []
    backend.drop_table("help.swap")
    assert "help.swap" not in backend.catalog().tables
    # The now empty schema disappears from TAP_SCHEMA.schemas too.
    schemas = backend.query('SELECT schema_name FROM "TAP_SCHEMA"."schemas"').column(0)
    assert "help" not in schemas.to_pylist()


def test_publish_errors_name_the_problem(backend, tmp_path):
    bad = pa.table({"ra": [1.0, 2.0, 3.0], "dec": [0.0, 95.0, 1.0]})
    with pytest.raises(InputError, match=r"row 1.*outside"):
        publish_arrow(backend, bad, "help.bad")
    with pytest.raises(InputError, match="SCHEMA.NAME"):
        publish_arrow(backend, bad, "nodot")
    with pytest.raises(InputError, match="reserved"):
        publish_arrow(backend, pa.table({"a": [1]}), "tap_schema.mine")
    with pytest.raises(InputError, match="both become"):
        publish_arrow(backend, pa.table({"A b": [1], "a_b": [2]}), "help.dup")
    with pytest.raises(InputError, match="no RA column 'nope'"):
        publish_arrow(backend, bad, "help.bad", ra="nope", dec="dec")
    with pytest.raises(FileNotFoundError):
        publish_file(backend, tmp_path / "missing.fits", "help.m")
    assert "help.bad" not in backend.catalog().tables


def test_adql_column_names():
    assert adql_column_name("ALPHA_J2000") == "alpha_j2000"
    assert adql_column_name("Flux (mJy)") == "flux__mjy_"
    assert adql_column_name("2mass_j") == "c2mass_j"
    assert adql_column_name("_healpix_29") == "healpix_29"
