"""Table metadata the ADQL translator resolves names against (pure, no database access).

A :class:`SchemaCatalog` maps lower-case ADQL table names (``"schema.table"``) to
:class:`TableInfo`, which carries the physical (quoted) SQL name, the columns users may see
(:class:`ColumnInfo`, keyed by lower-case ADQL name) and the positional index metadata (RA/Dec
columns, the NESTED HEALPix column and its order, Q3C). Physical columns whose names start with
``_`` (``_hpx``, ``_rowid``) are never listed in ``columns``: users can neither name nor see them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from skysense._resources import read_toml

__all__ = [
    "DATATYPES",
    "ColumnInfo",
    "TableInfo",
    "SchemaCatalog",
    "tap_schema_catalog",
    "TAP_SCHEMA_TABLES",
    "TAP_SCHEMA_PHYSICAL_SCHEMA",
    "FEATURED_TABLE_NAMES",
    "featured_tables",
    "id_column",
    "ID_NAMES",
]

#: VOTable datatypes a column may have (TAP 1.1 / VOTable 1.4 names).
DATATYPES = (
    "boolean",
    "short",
    "int",
    "long",
    "float",
    "double",
    "char",
    "unicodeChar",
    "timestamp",
)

#: Physical schema name of the TAP_SCHEMA tables (quoted, upper case as TAP 1.1 spells it).
TAP_SCHEMA_PHYSICAL_SCHEMA = '"TAP_SCHEMA"'


@dataclass(frozen=True)
class ColumnInfo:
    """Metadata of one column (what a VOTable FIELD and TAP_SCHEMA.columns publish).

    Parameters
    ----------
    name : str
        Column name as stored (the physical name; the ADQL name is its lower-case form).
    datatype : str
        One of :data:`DATATYPES`.
    arraysize : str, optional
        VOTable arraysize (``"*"`` for variable-length strings).
    unit, ucd, description : str
        VO unit string, UCD and free text.
    indexed, principal : bool
        TAP_SCHEMA flags.
    """

    name: str
    datatype: str
    arraysize: str | None = None
    unit: str = ""
    ucd: str = ""
    description: str = ""
    indexed: bool = False
    principal: bool = False

    def __post_init__(self):
        if self.datatype not in DATATYPES:
            raise ValueError(
                f"column {self.name!r}: datatype {self.datatype!r} is not one of {DATATYPES}"
            )


@dataclass
class TableInfo:
    """Metadata of one queryable table.

    Parameters
    ----------
    name : str
        ADQL name ``"schema.table"`` (lower case).
    physical : str
        Quoted SQL name as stored, e.g. ``'"help"."masterlist"'``.
    columns : dict of str to ColumnInfo
        Visible columns keyed by lower-case ADQL name (never ``_``-prefixed ones).
    description : str
        Free text.
    ra, dec : str, optional
        ADQL names of the position columns (deg, ICRS) the HEALPix/Q3C index is built on.
    hpx_column : str, optional
        Physical name of the hidden BIGINT column holding the NESTED HEALPix index of (ra, dec)
        at ``hpx_order``; None when the table has none.
    hpx_order : int
        HEALPix order of ``hpx_column``.
    q3c : bool
        PostgreSQL only: a Q3C index exists on (ra, dec).
    n_rows : int, optional
        Row count, when known.
    kind : str
        ``"table"`` or ``"view"``.
    """

    name: str
    physical: str
    columns: dict[str, ColumnInfo]
    description: str = ""
    ra: str | None = None
    dec: str | None = None
    hpx_column: str | None = "_hpx"
    hpx_order: int = 14
    q3c: bool = False
    n_rows: int | None = None
    kind: str = "table"

    @property
    def schema_name(self) -> str:
        """The ADQL schema part of :attr:`name` (``""`` when unqualified)."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else ""

    @property
    def table_name(self) -> str:
        """The unqualified ADQL table name."""
        return self.name.rsplit(".", 1)[-1]

    def visible_columns(self) -> list[tuple[str, ColumnInfo]]:
        """``(adql_name, info)`` of every user-visible column, in publication order."""
        return [(k, c) for k, c in self.columns.items() if not k.startswith("_")]

    @property
    def has_position_index(self) -> bool:
        """True when (ra, dec) are known and a HEALPix column exists."""
        return self.ra is not None and self.dec is not None and self.hpx_column is not None


@dataclass
class SchemaCatalog:
    """Every table a query may name, keyed by lower-case ADQL name (``"schema.table"``).

    Uploaded tables appear as ``"tap_upload.<name>"``.
    """

    tables: dict[str, TableInfo] = field(default_factory=dict)

    def get(self, name: str) -> TableInfo | None:
        """The table called ``name`` (case-insensitive; ``schema.table`` or an unambiguous bare
        ``table``), or None."""
        key = name.lower()
        if key in self.tables:
            return self.tables[key]
        if "." not in key:
            hits = [t for k, t in self.tables.items() if k.rsplit(".", 1)[-1] == key]
            if len(hits) == 1:
                return hits[0]
        return None

    def with_tables(self, *tables: TableInfo) -> SchemaCatalog:
        """A new catalog with ``tables`` added (or replaced); self is unchanged."""
        out = dict(self.tables)
        for t in tables:
            out[t.name.lower()] = t
        return SchemaCatalog(tables=out)


#: Unqualified names of the tables worked examples and forms show first: the HELP products
#: (the masterlist, then the XID+ catalogue), not the survey inputs that sort before them.
FEATURED_TABLE_NAMES = ("masterlist", "xid")


def featured_tables(tables: list[TableInfo]) -> list[TableInfo]:
    """``tables`` with the :data:`FEATURED_TABLE_NAMES` first, the others in name order."""

    def rank(t: TableInfo) -> tuple[int, str]:
        name = t.table_name.lower()
        first = FEATURED_TABLE_NAMES.index(name) if name in FEATURED_TABLE_NAMES else None
        return (len(FEATURED_TABLE_NAMES) if first is None else first, t.name)

    return sorted(tables, key=rank)


TAP_SCHEMA_TABLES: dict[str, tuple[str, tuple[ColumnInfo, ...]]]
"""TAP 1.1 section 4 tables and columns: table -> (description, columns), from the package data
file ``vo/data/tap_schema.toml`` (read at first use)."""


@functools.cache
def _tap_schema_tables() -> dict[str, tuple[str, tuple[ColumnInfo, ...]]]:
    return {
        table: (entry["description"], tuple(_tap_column(**c) for c in entry["columns"]))
        for table, entry in read_toml("skysense.vo", "tap_schema.toml").items()
    }


def _tap_column(name: str, description: str, datatype: str = "char", principal: bool = True):
    return ColumnInfo(
        name=name,
        datatype=datatype,
        arraysize="*" if datatype == "char" else None,
        description=description,
        principal=principal,
    )


def __getattr__(name: str):
    # TAP_SCHEMA_TABLES is read from its data file when first asked for, not at import.
    if name == "TAP_SCHEMA_TABLES":
        return _tap_schema_tables()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tap_schema_catalog(physical_schema: str = TAP_SCHEMA_PHYSICAL_SCHEMA) -> SchemaCatalog:
    """The five TAP 1.1 metadata tables (``tap_schema.schemas``, ``.tables``, ``.columns``,
    ``.keys``, ``.key_columns``) with their standard columns.

    Parameters
    ----------
    physical_schema : str
        Quoted physical schema the server stores them in (default ``"TAP_SCHEMA"``); table
        physical names are ``<physical_schema>."<table>"``.

    Returns
    -------
    SchemaCatalog
        Keys ``"tap_schema.<table>"``; no position columns, no HEALPix column.
    """
    tables = {}
    for short, (description, columns) in _tap_schema_tables().items():
        name = f"tap_schema.{short}"
        tables[name] = TableInfo(
            name=name,
            physical=f'{physical_schema}."{short}"',
            columns={c.name.lower(): c for c in columns},
            description=description,
            hpx_column=None,
        )
    return SchemaCatalog(tables=tables)


#: Conventional names of a table's main identifier column, most specific first.
ID_NAMES = ("help_id", "object_id", "source_id", "objid", "obj_id", "id")


def id_column(table: TableInfo) -> str:
    """The column reported as ``ID_MAIN``.

    The column whose UCD is ``meta.id;meta.main``, else the first ``meta.id*`` column, else a
    conventionally named id column (``help_id``, ``object_id``, ``source_id``, ...), else the
    first non-coordinate column.
    """
    cols = [c for c in table.columns.values() if not c.name.startswith("_")]
    for c in cols:
        if c.ucd.lower().replace(" ", "") == "meta.id;meta.main":
            return c.name
    for c in cols:
        if c.ucd.lower().startswith("meta.id"):
            return c.name
    names = {c.name: c for c in cols}
    for name in ID_NAMES:
        if name in names:
            return name
    for c in cols:
        if c.name.endswith("_id") and c.name not in (table.ra, table.dec):
            return c.name
    for c in cols:
        if c.name not in (table.ra, table.dec):
            return c.name
    return cols[0].name
