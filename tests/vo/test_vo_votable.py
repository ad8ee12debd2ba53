"""Arrow <-> VOTable and the other output formats, read back with astropy (an independent
VOTable/FITS implementation)."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from astropy.io.votable import parse

from skysense.errors import QueryError
from skysense.vo.formats import FORMATS, resolve_format, serialise
from skysense.vo.schema import ColumnInfo
from skysense.vo.votable import error_votable, read_votable, result_votable

COLUMNS = [
    ColumnInfo("id", "long", ucd="meta.id;meta.main", description="identifier"),
    ColumnInfo("ra", "double", unit="deg", ucd="pos.eq.ra;meta.main"),
    ColumnInfo("mag", "float", unit="mag"),
    ColumnInfo("name", "char", arraysize="*"),
    ColumnInfo("ok", "boolean"),
    ColumnInfo("n", "short"),
]


def _table():
    return pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "ra": [10.5, 359.999999999, float("inf")],
            "mag": pa.array([21.5, np.nan, 19.0], pa.float32()),
            "name": ["a<b&c>", "Ω-cen", None],
            "ok": [True, False, None],
            "n": pa.array([1, -2, 3], pa.int16()),
        }
    )


def _parse(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse(io.BytesIO(data))


@pytest.mark.parametrize("binary2", [False, True])
def test_result_votable_round_trip_with_metadata(binary2):
    data = result_votable(_table(), COLUMNS, binary2=binary2)
    vot = _parse(data)
    resource = vot.resources[0]
    assert resource.type == "results"
    assert [(i.name, i.value) for i in resource.infos][0] == ("QUERY_STATUS", "OK")
    table = resource.tables[0]
    fields = {f.name: f for f in table.fields}
    assert fields["ra"].unit == "deg" and fields["ra"].ucd == "pos.eq.ra;meta.main"
    assert fields["id"].datatype == "long" and fields["id"].description == "identifier"
    assert fields["mag"].datatype == "float" and fields["n"].datatype == "short"
    # a non-ASCII string turns the column into unicodeChar
    assert fields["name"].datatype == "unicodeChar"
    arr = table.array
    assert list(arr["id"].data[:2]) == [1, 2] and bool(arr["id"].mask[2])
    assert arr["ra"][1] == pytest.approx(359.999999999, abs=1e-12)
    assert np.isnan(arr["mag"][1]) or bool(np.ma.getmaskarray(arr["mag"])[1])
    assert arr["name"][1] == "Ω-cen" and arr["name"][0] == "a<b&c>"
    assert np.isinf(arr["ra"][2])
    assert bool(arr["ok"][0]) and not bool(arr["ok"][1])


def test_overflow_info_follows_the_table():
    data = result_votable(_table(), COLUMNS, overflow=True)
    text = data.decode()
    assert text.index('value="OVERFLOW"') > text.index("</TABLE>")
    vot = _parse(data)
    statuses = [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert statuses[-1] == "OVERFLOW"


def test_error_document():
    vot = _parse(error_votable("syntax error at <bad> & more (line 1, column 8)"))
    info = vot.resources[0].infos[0]
    assert (info.name, info.value) == ("QUERY_STATUS", "ERROR")
    assert "line 1, column 8" in info.content and "<bad> & more" in info.content


def test_read_votable_upload():
    data = result_votable(_table(), COLUMNS)
    table, infos = read_votable(data)
    assert table.column_names == [c.name for c in COLUMNS]
    assert table.column("id").to_pylist() == [1, 2, None]
    assert table.column("name").to_pylist()[:2] == ["a<b&c>", "Ω-cen"]
    assert {i.name: i.ucd for i in infos}["ra"] == "pos.eq.ra;meta.main"
    with pytest.raises(Exception, match="not a readable VOTable"):
        read_votable(b"<html>nope</html>")


def test_empty_result_keeps_fields():
    vot = _parse(result_votable(_table().slice(0, 0), COLUMNS))
    assert [f.name for f in vot.resources[0].tables[0].fields] == [c.name for c in COLUMNS]
    assert len(vot.resources[0].tables[0].array) == 0


def test_duplicate_names_get_unique_ids():
    t = pa.table({"a": [1], "b": [2]})
    cols = [ColumnInfo("ra", "long"), ColumnInfo("ra", "long")]
    vot = _parse(result_votable(t, cols))
    names = [f.name for f in vot.resources[0].tables[0].fields]
    assert len(set(names)) == 2


def test_other_formats():
    t = _table()
    csv = serialise(resolve_format("csv"), t, COLUMNS).decode()
    assert csv.splitlines()[0].replace('"', "") == "id,ra,mag,name,ok,n"
    assert len(csv.strip().splitlines()) == 4
    tsv = serialise(resolve_format("text/tab-separated-values"), t, COLUMNS).decode()
    assert tsv.splitlines()[0].count("\t") == 5
    doc = json.loads(serialise(resolve_format("json"), t, COLUMNS, overflow=True))
    assert doc["overflow"] is True and doc["data"][0][0] == 1 and doc["data"][1][2] is None
    assert doc["metadata"][1]["unit"] == "deg"
    data = serialise(resolve_format("application/fits"), t, COLUMNS)
    with fits.open(io.BytesIO(data)) as hdul:
        rows = hdul[1].data
        assert hdul[1].columns["ra"].unit == "deg"
        assert list(rows["n"]) == [1, -2, 3]


def test_format_resolution():
    assert resolve_format(None).key == "votable"
    assert resolve_format("application/x-votable+xml").key == "votable"
    assert resolve_format("application/x-votable+xml;serialization=BINARY2").key == (
        "votable-binary2"
    )
    assert resolve_format("VOTABLE").key == "votable"
    assert resolve_format("text/csv").key == "csv"
    assert {f.key for f in FORMATS} == {"votable", "votable-binary2", "csv", "tsv", "fits", "json"}
    with pytest.raises(QueryError, match="unsupported RESPONSEFORMAT"):
        resolve_format("image/png")


def _special_table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 10.0 ** rng.integers(-6, 6, n), n)
    if n >= 3:
        f[:3] = [np.nan, np.inf, -np.inf]
    null = rng.random(n) < 0.2
    names = rng.choice(["a&b", "<x>", "plain", "q > p", "é"], n).tolist()
    return pa.table(
        {
            "id": pa.array(rng.integers(-(10**12), 10**12, n), mask=rng.random(n) < 0.1),
            "ra": pa.array(f, mask=null),
            "mag": pa.array(rng.normal(20, 2, n).astype(np.float32)),
            "name": pa.array([None if k % 7 == 3 else s for k, s in enumerate(names)]),
        }
    )


@pytest.mark.parametrize("writer", ["tap", "scs"])
@pytest.mark.parametrize("n", [0, 1, 250])
def test_tabledata_writers_read_back_by_astropy(writer, n):
    """Both TABLEDATA writers (TAP results and cone search) give documents whose cells astropy
    reads back as the input: shortest round-trip floats, NaN/+Inf/-Inf, nulls, escaped text."""
    from skysense.vo.scs import tabledata_votable

    table = _special_table(n, seed=n + 3)
    cols = [
        ColumnInfo("id", "long"),
        ColumnInfo("ra", "double", unit="deg"),
        ColumnInfo("mag", "float"),
        ColumnInfo("name", "char"),
    ]
    if writer == "tap":
        body = result_votable(table, cols)
    else:
        body = tabledata_votable(table, cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = parse(io.BytesIO(body)).get_first_table().to_table()
    assert len(got) == n
    for name in ("id", "ra", "mag"):
        want = table.column(name).to_numpy(zero_copy_only=False)
        mask = table.column(name).is_null().to_numpy(zero_copy_only=False)
        col = got[name]
        got_mask = np.ma.getmaskarray(col)
        assert np.array_equal(got_mask, mask) if name != "ra" else np.all(got_mask[mask])
        keep = ~mask
        np.testing.assert_array_equal(np.ma.getdata(col)[keep], want[keep].astype(col.dtype))
    names = table.column("name").to_pylist()
    got_names = [None if v is np.ma.masked or v == "" else str(v) for v in got["name"]]
    assert got_names == names
