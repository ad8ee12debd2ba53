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
from skysense.vo.votable import (
    error_votable,
    read_votable,
    result_votable,
    result_votable_chunks,
)

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


def _batches(table: pa.Table, sizes):
    start = 0
    for n in sizes:
        yield from table.slice(start, n).to_batches()
        start += n


@pytest.mark.parametrize("binary2", [False, True])
def test_streamed_votable_equals_whole_document_for_any_batching(binary2):
    """The streamed writer gives the document of the whole table however the rows are cut
    into batches (BINARY2's base64 lines carry bytes across batches)."""
    rng = np.random.default_rng(7)
    n = 1000
    table = pa.table(
        {
            "id": pa.array(np.arange(n), pa.int64()),
            "ra": rng.uniform(0, 360, n),
            "mag": pa.array(rng.normal(20, 1, n), pa.float32()),
            "name": [f"src{i}" if i % 7 else None for i in range(n)],
            "ok": rng.random(n) < 0.5,
            "n": pa.array(rng.integers(-5, 5, n), pa.int16()),
        }
    )
    whole = result_votable(table, COLUMNS, binary2=binary2, overflow=True)
    for sizes in ([n], [1, 2, 997], [333, 0, 333, 334], [57] * 17 + [31]):
        chunks = list(
            result_votable_chunks(
                _batches(table, sizes),
                COLUMNS,
                schema=table.schema,
                overflow=lambda: True,
                binary2=binary2,
            )
        )
        assert b"".join(chunks) == whole
    got = _parse(whole).get_first_table().array
    np.testing.assert_array_equal(np.asarray(got["id"]), np.arange(n))
    np.testing.assert_allclose(np.asarray(got["ra"]), table.column("ra").to_numpy())


def test_streamed_votable_error_after_the_head_is_an_error_info_after_the_table():
    table = _table()

    def batches():
        yield from table.slice(0, 2).to_batches()
        raise QueryError("query exceeded the time limit of 1 s")

    data = b"".join(result_votable_chunks(batches(), COLUMNS, schema=table.schema))
    assert data.count(b"<TR>") == 2
    tail = data[data.index(b"</TABLE>") :]
    assert b'<INFO name="QUERY_STATUS" value="ERROR">query exceeded the time limit' in tail
    statuses = [i.value for i in _parse(data).resources[0].infos if i.name == "QUERY_STATUS"]
    assert statuses == ["OK", "ERROR"]


def test_streamed_votable_error_before_any_row_propagates():
    table = _table()

    def batches():
        raise QueryError("database error: boom")
        yield  # pragma: no cover

    with pytest.raises(QueryError, match="boom"):
        b"".join(result_votable_chunks(batches(), COLUMNS, schema=table.schema))


def test_streamed_binary2_char_column_keeps_its_type_across_batches():
    """A later batch with a non-ASCII text keeps the column's char type (a '?' per such
    character in BINARY2); the first batch's unicodeChar column stays UCS-2."""
    schema = pa.schema([("a", pa.string()), ("b", pa.string())])
    first = pa.record_batch([pa.array(["x"]), pa.array(["Ω"])], schema=schema)
    later = pa.record_batch([pa.array(["Ωy"]), pa.array(["z"])], schema=schema)
    cols = [ColumnInfo("a", "char", arraysize="*"), ColumnInfo("b", "char", arraysize="*")]
    data = b"".join(result_votable_chunks([first, later], cols, schema=schema, binary2=True))
    table = _parse(data).get_first_table()
    assert [f.datatype for f in table.fields] == ["char", "unicodeChar"]
    assert [str(v) for v in table.array["a"]] == ["x", "?y"]
    assert [str(v) for v in table.array["b"]] == ["Ω", "z"]
