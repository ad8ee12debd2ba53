"""Simple Cone Search 1.03: pyvo end to end (both backends) and results against brute force."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import pyvo
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse as parse_votable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skysense.errors import InputError
from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_arrow
from skysense.vo.scs import cone_rows, cone_search_sync, parse_cone, scs_columns
from skysense.vo.settings import Settings


def brute_force(sky, ra, dec, sr):
    """object_id of the rows within ``sr`` deg of (ra, dec), by astropy, and a flag saying
    whether some row sits within 1e-9 deg of the edge (ambiguous in floating point)."""
    c = SkyCoord(np.asarray(sky["ra"]) * u.deg, np.asarray(sky["dec"]) * u.deg)
    sep = c.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    ids = set(np.asarray(sky["object_id"])[sep <= sr].tolist())
    return ids, bool(np.any(np.abs(sep - sr) < 1e-9))


CONES = [
    (0.3, 0.2, 1.0),  # straddles RA = 0/360
    (359.2, -1.5, 0.7),
    (150.0, 2.0, 0.5),
    (42.0, 89.5, 1.2),  # holds the north pole
    (271.0, 87.0, 0.8),
    (100.0, -40.0, 2.0),  # empty
]


def ucds(vot) -> dict[str, str]:
    return {f.name: f.ucd for f in vot.get_first_table().fields}


@pytest.mark.parametrize(("ra", "dec", "sr"), CONES)
def test_pyvo_scs_matches_brute_force(live, sky, ra, dec, sr):
    url, _ = live
    service = pyvo.dal.SCSService(f"{url}/scs/demo.sky")
    result = service.search(pos=(ra, dec), radius=sr)
    want, _ = brute_force(sky, ra, dec, sr)
    got = set(np.asarray(result["object_id"]).tolist())
    assert got == want
    # pyvo finds the SCS id/ra/dec through the UCD1 names.
    if len(result):
        rec = result[0]
        assert rec.id is not None and rec.pos is not None


def test_ucd1_names_and_verbosity(live):
    url, _ = live
    base = f"{url}/scs/demo.sky?RA=0.3&DEC=0.2&SR=0.5"
    seen = {}
    for verb in ("1", "2", "3"):
        body = httpx.get(f"{base}&VERB={verb}", timeout=30).content
        vot = parse_votable(io.BytesIO(body))
        fields = ucds(vot)
        seen[verb] = list(fields)
        values = list(fields.values())
        for required in ("ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"):
            assert values.count(required) == 1
        assert fields["object_id"] == "ID_MAIN"
        assert fields["ra"] == "POS_EQ_RA_MAIN" and fields["dec"] == "POS_EQ_DEC_MAIN"
    assert seen["1"] == ["object_id", "ra", "dec"]
    assert set(seen["3"]) == {"object_id", "ra", "dec", "mag_r", "kind", "flag"}
    assert set(seen["1"]) <= set(seen["2"]) <= set(seen["3"])
    # Units and descriptions come from the published metadata.
    vot = parse_votable(io.BytesIO(httpx.get(f"{base}&VERB=3", timeout=30).content))
    field = {f.name: f for f in vot.get_first_table().fields}["mag_r"]
    assert str(field.unit) == "mag" and field.ucd == "phot.mag;em.opt.R"


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("RA=10&DEC=20", "SR is missing"),
        ("RA=abc&DEC=20&SR=1", "RA='abc' is not a number"),
        ("RA=10&DEC=95&SR=1", "DEC=95 is outside"),
        ("RA=10&DEC=0&SR=-1", "must not be negative"),
        ("RA=10&DEC=0&SR=30", "exceeds the maximum search radius"),
        ("RA=10&DEC=0&SR=1&VERB=7", "VERB='7' must be 1, 2 or 3"),
    ],
)
def test_errors_are_scs_error_documents(live, query, fragment):
    url, _ = live
    r = httpx.get(f"{url}/scs/demo.sky?{query}", timeout=30)
    assert r.status_code == 200
    vot = parse_votable(io.BytesIO(r.content))
    errors = [i for i in vot.infos if i.name == "Error"]
    assert len(errors) == 1 and fragment in errors[0].value
    q = pyvo.dal.scs.SCSQuery(f"{url}/scs/demo.sky")
    q.update(dict(p.split("=") for p in query.split("&")))
    with pytest.raises(pyvo.dal.DALQueryError, match=re.escape(fragment)):
        q.execute()


def test_unknown_and_position_free_tables(live):
    url, _ = live
    with pytest.raises(pyvo.dal.DALQueryError, match="no published table 'demo.nope'"):
        pyvo.dal.SCSService(f"{url}/scs/demo.nope").search(pos=(1, 2), radius=0.1)
    with pytest.raises(pyvo.dal.DALQueryError, match="has no RA/Dec columns"):
        pyvo.dal.SCSService(f"{url}/scs/demo.small").search(pos=(1, 2), radius=0.1)
    with pytest.raises(pyvo.dal.DALQueryError, match="no published table"):
        pyvo.dal.SCSService(f"{url}/scs/tap_schema.tables").search(pos=(1, 2), radius=0.1)


def test_sr_zero_gives_the_columns_and_no_rows(live):
    url, _ = live
    r = httpx.post(f"{url}/scs/demo.sky", data={"ra": "0.3", "dec": "0.2", "sr": "0"}, timeout=30)
    table = parse_votable(io.BytesIO(r.content)).get_first_table()
    assert len(table.array) == 0 and "ID_MAIN" in [f.ucd for f in table.fields]


# --------------------------------------------------------------------------------------------
# without HTTP: the same code path, with a small MAXREC and random cones


def _state(tmp, sky, **changes):
    backend = open_backend(tmp / "scs.duckdb")
    meta = {
        "columns": {
            "object_id": {"ucd": "meta.id;meta.main"},
            "mag_r": {"unit": "mag", "principal": True},
        }
    }
    publish_arrow(backend, sky, "demo.sky", meta=meta)
    settings = Settings(db=str(tmp / "scs.duckdb"), maxrec_default=1000, **changes)
    return SimpleNamespace(backend=backend, settings=settings)


@pytest.fixture(scope="module")
def direct(tmp_path_factory, sky):
    st_ = _state(tmp_path_factory.mktemp("scs"), sky)
    yield st_
    st_.backend.close()


def _ids(body: bytes) -> tuple[set[int], list[str]]:
    vot = parse_votable(io.BytesIO(body))
    table = vot.get_first_table()
    status = [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    return set(np.asarray(table.array["object_id"]).tolist()), status


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ra=st.one_of(
        st.floats(0, 360, exclude_max=True), st.floats(358, 360, exclude_max=True), st.floats(0, 2)
    ),
    dec=st.one_of(st.floats(-90, 90), st.floats(85, 90), st.floats(-3, 3)),
    sr=st.floats(0.01, 3.0),
)
def test_random_cones_match_brute_force(direct, sky, ra, dec, sr):
    want, ambiguous = brute_force(sky, ra, dec, sr)
    if ambiguous:
        return
    got, status = _ids(cone_search_sync(direct, "demo.sky", str(ra), str(dec), str(sr)))
    assert status == ["OK"] or (status == ["OK", "OVERFLOW"] and len(want) > 1000)
    assert got == want


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ra=st.one_of(st.floats(0, 360, exclude_max=True), st.floats(359, 360, exclude_max=True)),
    dec=st.one_of(st.floats(-90, 90), st.floats(86, 90), st.floats(-3, 3)),
    sr=st.one_of(st.floats(0, 3.0), st.floats(0, 0.05)),
    verb=st.sampled_from([1, 2, 3]),
    maxrec=st.sampled_from([3, 1000]),
)
def test_duckdb_healpix_road_equals_the_adql_query(direct, ra, dec, sr, verb, maxrec):
    # DuckDB's cone (HEALPix ranges in SQL, the exact test in NumPy) gives the TAP query's
    # rows, in its order, with its FIELDs and its overflow flag, at the pole and RA = 0/360.
    table = direct.backend.catalog().tables["demo.sky"]
    cols = scs_columns(table, verb)
    ra, dec, sr = parse_cone(str(ra), str(dec), str(sr))
    fast = cone_rows(direct, table, cols, ra, dec, sr, maxrec)
    ref = cone_rows(direct, table, cols, ra, dec, sr, maxrec, adql=True)
    assert fast[0].schema.equals(ref[0].schema) and fast[1] == ref[1] and fast[2] == ref[2]
    # (NaN magnitudes: frames compare NaN as equal, Arrow's equals does not)
    pd.testing.assert_frame_equal(fast[0].to_pandas(), ref[0].to_pandas(), check_exact=True)


def test_overflow_marker_and_principal_columns(tmp_path, sky):
    st_ = _state(tmp_path, sky)
    try:
        st_ = SimpleNamespace(backend=st_.backend, settings=st_.settings.replace(maxrec_default=5))
        got, status = _ids(cone_search_sync(st_, "demo.sky", "0", "0", "2"))
        assert len(got) == 5 and status == ["OK", "OVERFLOW"]
        table = st_.backend.catalog().tables["demo.sky"]
        assert scs_columns(table, 2) == ["object_id", "ra", "dec", "mag_r"]
        assert scs_columns(table, 1) == ["object_id", "ra", "dec"]
    finally:
        st_.backend.close()


def test_parse_cone():
    assert parse_cone("370", "-10", "0.1") == (10.0, -10.0, 0.1)
    assert parse_cone("-10", "90", "0") == (350.0, 90.0, 0.0)
    with pytest.raises(InputError, match="RA is missing"):
        parse_cone(None, "1", "1")
    with pytest.raises(InputError, match="must be finite"):
        parse_cone("inf", "1", "1")


# --------------------------------------------------------------------------------------------
# the fast TABLEDATA writer against astropy's reader


def _roundtrip(table, cols):
    from skysense.vo.scs import tabledata_votable

    body = tabledata_votable(table, cols, overflow=True, description="d <&>")
    vot = parse_votable(io.BytesIO(body))
    status = [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status == ["OK", "OVERFLOW"]
    return vot.get_first_table()


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        min_size=0,
        max_size=30,
    ),
    text=st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
        ),
        min_size=30,
        max_size=30,
    ),
)
def test_tabledata_writer_roundtrip(values, text):
    from skysense.vo.schema import ColumnInfo

    n = len(values)
    ints = [None if v is None else i for i, v in enumerate(values)]
    table = pa.table(
        {
            "x": pa.array(values, pa.float64()),
            "y": pa.array(values, pa.float64()).cast(pa.float32(), safe=False),
            "i": pa.array(ints, pa.int64()),
            "s": pa.array(text[:n], pa.string()),
            "b": pa.array([None if v is None else (i % 2 == 0) for i, v in enumerate(values)]),
        }
    )
    cols = [
        ColumnInfo(
            name="x", datatype="double", unit="deg", ucd="POS_EQ_RA_MAIN", description="a <b> & c"
        ),
        ColumnInfo(name="y", datatype="float"),
        ColumnInfo(name="i", datatype="long", ucd="ID_MAIN"),
        ColumnInfo(name="s", datatype="unicodeChar", arraysize="*"),
        ColumnInfo(name="b", datatype="boolean"),
    ]
    got = _roundtrip(table, cols)
    fields = {f.name: f for f in got.fields}
    assert fields["x"].ucd == "POS_EQ_RA_MAIN" and str(fields["x"].unit) == "deg"
    assert fields["x"].description == "a <b> & c"
    arr = got.array
    assert len(arr) == n
    for name in ("x", "y"):
        want = table[name].to_numpy(zero_copy_only=False)
        col = np.ma.filled(arr[name].astype(float), np.nan)
        np.testing.assert_array_equal(col, np.where(np.isnan(want), np.nan, want))
    for k in range(n):
        assert (arr["i"][k] is np.ma.masked) == (ints[k] is None)
        if ints[k] is not None:
            assert arr["i"][k] == ints[k]
        s = text[k]
        if s is not None and s.strip() == s and s != "":
            assert arr["s"][k] == s


def test_verbosity_levels_differ_and_nest(live):
    url, _ = live
    base = f"{url}/scs/demo.sky?RA=0.3&DEC=0.2&SR=0.5"
    seen = {}
    for verb in ("1", "2", "3"):
        vot = parse_votable(io.BytesIO(httpx.get(f"{base}&VERB={verb}", timeout=30).content))
        seen[verb] = [f.name for f in vot.get_first_table().fields]
    assert seen["1"] == ["object_id", "ra", "dec"]
    # demo.sky flags no principal column: the id, positions and photometry are (by UCD).
    assert seen["2"] == ["object_id", "ra", "dec", "mag_r"]
    assert set(seen["3"]) == {"object_id", "ra", "dec", "mag_r", "kind", "flag"}
    assert set(seen["1"]) < set(seen["2"]) < set(seen["3"])


def test_help_tables_verbosity_from_pipeline_metadata(tmp_path):
    from skysense.pipeline.metadata import masterlist_meta, xid_meta

    n = 5
    ml = pa.table(
        {
            "help_id": [f"HELP_J{i}" for i in range(n)],
            "object_key": np.arange(n),
            "ra": np.linspace(150, 150.01, n),
            "dec": np.linspace(2, 2.01, n),
            "cfhtls_id": np.arange(n),
            "stellarity": np.zeros(n),
            "f_megacam_g": np.ones(n),
            "ferr_megacam_g": np.ones(n),
            "m_megacam_g": np.ones(n),
            "merr_megacam_g": np.ones(n),
            "flag_megacam_g": np.zeros(n, bool),
            "zphot": np.ones(n),
            "zphot_err": np.ones(n),
            "zphot_flag": np.zeros(n, np.int16),
        }
    )
    xid = pa.table(
        {
            "HELP_ID": [f"HELP_J{i}" for i in range(n)],
            "RA": np.linspace(150, 150.01, n),
            "Dec": np.linspace(2, 2.01, n),
            "F_SPIRE_250": np.ones(n),
            "FErr_SPIRE_250_u": np.ones(n),
            "FErr_SPIRE_250_l": np.ones(n),
            "Bkg_SPIRE_250": np.ones(n),
            "Rhat_SPIRE_250": np.ones(n),
            "xid_tile": np.zeros(n, np.int64),
            "zphot": np.ones(n),
            "zphot_err": np.ones(n),
        }
    )
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        meta = masterlist_meta(ml.column_names, ["cfhtls"])
        publish_arrow(backend, ml, "help.masterlist", meta=meta, ra="ra", dec="dec")
        publish_arrow(backend, xid, "help.xid", meta=xid_meta(xid.column_names), ra="RA", dec="Dec")
        catalog = backend.catalog()
        ml_t, xid_t = catalog.tables["help.masterlist"], catalog.tables["help.xid"]
        assert scs_columns(ml_t, 1) == ["help_id", "ra", "dec"]
        assert scs_columns(ml_t, 2) == [
            "help_id",
            "ra",
            "dec",
            "f_megacam_g",
            "ferr_megacam_g",
            "m_megacam_g",
            "merr_megacam_g",
            "zphot",
            "zphot_err",
        ]
        assert scs_columns(ml_t, 3) == ["help_id", "ra", "dec"] + [
            c for c in ml.column_names if c not in ("help_id", "ra", "dec")
        ]
        assert scs_columns(xid_t, 1) == ["help_id", "ra", "dec"]
        assert scs_columns(xid_t, 2) == [
            "help_id",
            "ra",
            "dec",
            "f_spire_250",
            "ferr_spire_250_u",
            "ferr_spire_250_l",
            "zphot",
            "zphot_err",
        ]
        assert len(scs_columns(xid_t, 3)) == xid.num_columns
        # TAP_SCHEMA says the same.
        flags = backend.query(
            'SELECT column_name, principal FROM "TAP_SCHEMA"."columns" '
            "WHERE table_name = 'help.xid' ORDER BY column_index"
        ).to_pydict()
        principal = [c for c, p in zip(flags["column_name"], flags["principal"]) if p]
        assert principal == scs_columns(xid_t, 2)
    finally:
        backend.close()
