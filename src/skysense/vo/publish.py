"""Publishing tables into the VO database.

:func:`publish_file` reads FITS, VOTable, Parquet, HATS directories, CSV and ECSV files keeping
units, UCDs and descriptions (from the file, or from a metadata YAML/JSON file), finds the
RA/Dec columns, adds the ``_hpx`` NESTED HEALPix index (order 14) and loads the table through
:meth:`Backend.load_table`, which replaces an existing table atomically.
:func:`publish_arrow` does the same for an in-memory Arrow table (used by the demo and by the
other areas to publish their outputs).

Metadata file (YAML or JSON)::

    description: HELP masterlist of the field
    ra: ra                     # optional, else detected
    dec: dec
    columns:
      ra:  {unit: deg, ucd: "pos.eq.ra;meta.main", description: Right ascension (ICRS)}
      f_spire_250: {unit: uJy, ucd: phot.flux.density;em.IR.250um, principal: true}
    links:                     # optional per-row DataLink links (skysense.vo.datalink)
      - {semantics: "#derivation", description: Best-fit SED, table: help.sed, column: help_id}
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skysense._check import check_positions
from skysense.errors import ConfigError, InputError
from skysense.tables import DEC_NAMES, RA_NAMES, find_name, table_format
from skysense.vo.backends import Backend, TableSpec, quote_ident
from skysense.vo.schema import ColumnInfo
from skysense.vo.votable import arrow_datatype, astropy_to_arrow, read_votable, vo_unit

__all__ = [
    "publish_file",
    "publish_arrow",
    "publish_hats_field",
    "publish_hats_files",
    "hats_partition_files",
    "publish_arrow_field",
    "read_table_file",
    "read_metadata_file",
    "detect_radec",
    "adql_column_name",
    "HPX_ORDER",
]

#: HEALPix order of the ``_hpx`` column (NESTED; ~13 arcsec cells).
HPX_ORDER = 14


def adql_column_name(name: str) -> str:
    """The lower-case ADQL regular identifier a file column is published under.

    Characters other than letters, digits and ``_`` become ``_``; a leading digit gets a
    ``c`` prefix; leading underscores are dropped (``_``-prefixed columns are private).
    """
    clean = re.sub(r"[^a-z0-9_]", "_", name.strip().lower()).lstrip("_")
    if not clean:
        clean = "col"
    if clean[0].isdigit():
        clean = "c" + clean
    return clean


def read_metadata_file(path: str | Path) -> dict:
    """Read a metadata YAML/JSON file (see the module docstring).

    Raises
    ------
    ConfigError
        When the file is not a mapping or has unknown keys.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc}", path=path) from None
    else:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", path=path) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise ConfigError("must be a mapping", path=path)
    unknown = set(doc) - {"description", "ra", "dec", "columns", "table", "links"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", path=path)
    cols = doc.get("columns") or {}
    if not isinstance(cols, Mapping):
        raise ConfigError(
            "must map column names to {unit, ucd, description}", path=path, key="columns"
        )
    allowed = {"unit", "ucd", "description", "principal", "name"}
    for name, entry in cols.items():
        if isinstance(entry, str):
            continue
        if not isinstance(entry, Mapping) or set(entry) - allowed:
            raise ConfigError(
                f"must be a description string or a mapping with keys {sorted(allowed)}",
                path=path,
                key=f"columns.{name}",
            )
    return dict(doc)


def _file_format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt.lower()
    if path.is_dir():
        return "hats"
    return table_format(
        path,
        ("fits", "votable", "parquet", "csv", "tsv", "ecsv"),
        hint="use --format (fits, votable, parquet, hats, csv, ecsv)",
    )


def read_table_file(path: str | Path, *, fmt: str | None = None):
    """Read a table file into Arrow with its column metadata.

    Parameters
    ----------
    path : str or Path
        FITS (first table HDU), VOTable, Parquet (astropy units kept), HATS directory, CSV,
        TSV or ECSV.
    fmt : str, optional
        Force the format (``fits``, ``votable``, ``parquet``, ``hats``, ``csv``, ``tsv``,
        ``ecsv``).

    Returns
    -------
    table : pyarrow.Table
    columns : list of ColumnInfo
        Metadata found in the file (names as in the file).
    info : dict
        ``description``, ``ra``, ``dec`` when the file says so.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    kind = _file_format(path, fmt)
    info: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "votable":
            table, cols = read_votable(path.read_bytes(), source=str(path))
            return table, cols, info
        if kind in ("fits", "ecsv"):
            from astropy.table import Table

            try:
                atab = Table.read(path, format="fits" if kind == "fits" else "ascii.ecsv")
            except Exception as exc:
                raise InputError(f"cannot read as {kind}: {exc}", path=path) from None
            table, cols = astropy_to_arrow(atab, source=str(path))
            desc = atab.meta.get("description") or atab.meta.get("DESCRIPTION")
            if desc:
                info["description"] = str(desc)
            return table, cols, info
        if kind == "parquet":
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(path)
            except Exception as exc:
                raise InputError(f"cannot read as Parquet: {exc}", path=path) from None
            return table, _parquet_columns(table), info
        if kind == "hats":
            return _read_hats(path)
        if kind in ("csv", "tsv"):
            import pyarrow.csv as pacsv

            try:
                table = pacsv.read_csv(
                    path,
                    parse_options=pacsv.ParseOptions(delimiter="," if kind == "csv" else "\t"),
                )
            except Exception as exc:
                raise InputError(f"cannot read as {kind.upper()}: {exc}", path=path) from None
            return table, _infer_columns(table), info
    raise InputError(f"unknown format {kind!r}", path=path)


def _infer_columns(table: pa.Table, known: Mapping[str, dict] | None = None) -> list[ColumnInfo]:
    out = []
    for name, typ in zip(table.column_names, table.schema.types):
        datatype = arrow_datatype(typ)
        if datatype is None:
            continue
        meta = (known or {}).get(name, {})
        out.append(
            ColumnInfo(
                name=name,
                datatype=datatype,
                arraysize="*" if datatype == "char" else None,
                unit=str(meta.get("unit") or ""),
                ucd=str(meta.get("ucd") or ""),
                description=str(meta.get("description") or ""),
            )
        )
    return out


def _parquet_columns(table: pa.Table) -> list[ColumnInfo]:
    """Column metadata of a Parquet file, from astropy's ``table_meta_yaml`` when present."""
    known: dict[str, dict] = {}
    raw = (table.schema.metadata or {}).get(b"table_meta_yaml")
    if raw:
        try:
            from astropy.table.meta import get_header_from_yaml

            header = get_header_from_yaml(raw.decode("utf-8").splitlines())
            for col in header.get("datatype", []):
                meta = col.get("meta") or {}
                known[col["name"]] = {
                    "unit": col.get("unit"),
                    "description": col.get("description"),
                    "ucd": meta.get("ucd"),
                }
        except Exception:  # unreadable metadata must not block publishing the data
            known = {}
    return _infer_columns(table, known)


def _properties(path: Path) -> dict[str, str]:
    props = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                props[key.strip()] = value.strip()
    return props


def _read_hats(path: Path):
    import pyarrow.dataset as ds

    # A HATS collection points at its primary catalogue (margins are other folders).
    collection = _properties(path / "collection.properties")
    if collection.get("hats_primary_table_url"):
        path = path / collection["hats_primary_table_url"]
    props = _properties(path / "hats.properties") or _properties(path / "properties")
    root = path / "dataset" if (path / "dataset").is_dir() else path
    try:
        dataset = ds.dataset(
            root, format="parquet", partitioning="hive", exclude_invalid_files=True
        )
        table = dataset.to_table()
    except Exception as exc:
        raise InputError(f"cannot read as a HATS catalogue: {exc}", path=path) from None
    drop = [c for c in ("Norder", "Dir", "Npix", "_healpix_29") if c in table.column_names]
    table = table.drop_columns(drop)
    info: dict = {}
    if props.get("hats_col_ra"):
        info["ra"] = props["hats_col_ra"]
        info["dec"] = props.get("hats_col_dec")
    if props.get("obs_title") or props.get("obs_description"):
        info["description"] = props.get("obs_description") or props.get("obs_title")
    return table, _parquet_columns(table), info


def detect_radec(columns: Sequence[ColumnInfo]) -> tuple[str | None, str | None]:
    """Find the main RA/Dec columns: by UCD (``pos.eq.ra;meta.main`` first), then by name.

    Returns
    -------
    (ra, dec) : names from ``columns`` or (None, None)
    """

    def by_ucd(word):
        main = [
            c.name
            for c in columns
            if c.ucd and word in c.ucd.lower().split(";") and "meta.main" in c.ucd.lower()
        ]
        if len(main) == 1:
            return main[0]
        plain = [c.name for c in columns if c.ucd and c.ucd.lower().split(";")[0] == word]
        return plain[0] if len(plain) == 1 else None

    ra, dec = by_ucd("pos.eq.ra"), by_ucd("pos.eq.dec")
    if ra and dec:
        return ra, dec
    names = [c.name for c in columns]
    ra, dec = find_name(names, RA_NAMES), find_name(names, DEC_NAMES)
    if ra and dec:
        return ra, dec
    # HELP prepared catalogues: <survey>_ra / <survey>_dec
    ras = [c.name for c in columns if c.name.lower().endswith("_ra")]
    decs = [c.name for c in columns if c.name.lower().endswith("_dec")]
    if len(ras) == 1 and len(decs) == 1:
        return ras[0], decs[0]
    return None, None


def publish_file(
    backend: Backend,
    path: str | Path,
    table: str,
    *,
    description: str | None = None,
    meta: str | Path | Mapping | None = None,
    ra: str | None = None,
    dec: str | None = None,
    fmt: str | None = None,
) -> TableSpec:
    """Load a table file into the database as ``table`` (``SCHEMA.NAME``).

    Parameters
    ----------
    backend : Backend
    path : str or Path
        The table file or HATS directory.
    table : str
        ADQL name ``schema.name`` (lower case letters, digits and ``_``).
    description : str, optional
        Table description (overrides the file and metadata file).
    meta : path or mapping, optional
        Metadata file (YAML/JSON) or its content: column units, UCDs, descriptions.
    ra, dec : str, optional
        RA/Dec columns (degrees); detected when omitted.
    fmt : str, optional
        Force the input format.

    Returns
    -------
    TableSpec
        What was published.

    Raises
    ------
    InputError
        Unreadable file, unknown column, invalid coordinates (names the row).
    """
    data, columns, info = read_table_file(path, fmt=fmt)
    if meta is not None and not isinstance(meta, Mapping):
        meta = read_metadata_file(meta)
    meta = dict(meta or {})
    return publish_arrow(
        backend,
        data,
        table,
        columns=columns,
        description=description or meta.get("description") or info.get("description") or "",
        meta=meta,
        ra=ra or meta.get("ra") or info.get("ra"),
        dec=dec or meta.get("dec") or info.get("dec"),
        source=str(path),
        links=meta.get("links"),
    )


def publish_arrow(
    backend: Backend,
    data: pa.Table,
    table: str,
    *,
    columns: Sequence[ColumnInfo] | None = None,
    description: str = "",
    meta: Mapping | None = None,
    ra: str | None = None,
    dec: str | None = None,
    source: str = "table",
    links: Sequence[Mapping] | None = None,
) -> TableSpec:
    """Publish an Arrow table (see :func:`publish_file`).

    ``columns`` gives metadata by the data's column names (inferred from Arrow types when
    omitted); ``meta`` (metadata-file content) overrides it. Column names are published in
    lower case (:func:`adql_column_name`). When no column is flagged ``principal``, the
    identifier, position, photometry and redshift columns (by UCD) are.

    ``links`` declares per-row DataLink links (:func:`skysense.vo.datalink.declare_links`:
    mappings with ``semantics``, ``description`` and ``url`` or ``table``/``column``);
    None keeps the links declared earlier.
    """
    spec, data = _conform(data, table, columns=columns, description=description, meta=meta,
                          ra=ra, dec=dec, source=source)  # fmt: skip
    backend.load_table(spec, data)
    if links is not None:
        from skysense.vo.links import declare_links

        declare_links(backend, spec.adql_name, links)
    return spec


def _conform(
    data: pa.Table,
    table: str,
    *,
    columns: Sequence[ColumnInfo] | None,
    description: str,
    meta: Mapping | None,
    ra: str | None,
    dec: str | None,
    source: str,
) -> tuple[TableSpec, pa.Table]:
    """The table spec of ``data`` published as ``table`` and the data as it is loaded
    (ADQL column names, ``_hpx`` added); see :func:`publish_arrow`."""
    if "." not in table:
        raise InputError(f"table name {table!r} must be SCHEMA.NAME (e.g. help.masterlist)")
    schema, name = table.strip().lower().split(".", 1)
    meta = dict(meta or {})
    by_name = {c.name: c for c in (columns if columns is not None else _infer_columns(data))}
    overrides = {str(k).lower(): v for k, v in (meta.get("columns") or {}).items()}

    arrays, infos, seen = [], [], {}
    for original in data.column_names:
        if original not in by_name:
            if arrow_datatype(data.schema.field(original).type) is None:
                warnings.warn(
                    f"{source}: column {original!r} has no scalar type; skipped", stacklevel=2
                )
                continue
            by_name[original] = _infer_columns(data.select([original]))[0]
        if original.startswith("_"):
            continue  # private columns of the source (e.g. _healpix_29)
        adql = adql_column_name(original)
        if adql in seen:
            raise InputError(
                f"columns {seen[adql]!r} and {original!r} both become {adql!r}", path=source
            )
        seen[adql] = original
        base = by_name[original]
        over = overrides.get(original.lower()) or overrides.get(adql) or {}
        if isinstance(over, str):
            over = {"description": over}
        infos.append(
            ColumnInfo(
                name=adql,
                datatype=base.datatype,
                arraysize="*" if base.datatype == "char" else None,
                unit=vo_unit(str(over.get("unit", base.unit) or "")),
                ucd=str(over.get("ucd", base.ucd) or ""),
                description=str(over.get("description", base.description) or ""),
                principal=bool(over.get("principal", base.principal)),
            )
        )
        arrays.append(data.column(original))
    if not infos:
        raise InputError("no publishable column", path=source)
    data = pa.Table.from_arrays(arrays, names=[c.name for c in infos])

    def resolve(col, what):
        if col is None:
            return None
        key = adql_column_name(col)
        if key not in seen:
            raise InputError(
                f"no {what} column {col!r}; columns are {sorted(seen)}", path=source, column=col
            )
        return key

    explicit = any(c.principal for c in infos)
    ra_col, dec_col = resolve(ra, "RA"), resolve(dec, "Dec")
    if (ra_col is None) != (dec_col is None):
        raise InputError("give both RA and Dec columns, or neither", path=source)
    if ra_col is None:
        ra_col, dec_col = detect_radec(infos)
    if ra_col is not None:
        hpx = _hpx_column(data, ra_col, dec_col, source)
        data = data.append_column("_hpx", pa.array(hpx, pa.int64()))
        fixed = []
        for c in infos:
            if c.name in (ra_col, dec_col):
                is_ra = c.name == ra_col
                ucd = c.ucd or ("pos.eq.ra;meta.main" if is_ra else "pos.eq.dec;meta.main")
                c = replace(
                    c,
                    unit=c.unit or "deg",
                    ucd=ucd,
                    description=c.description or ("Right ascension" if is_ra else "Declination"),
                    indexed=True,
                    principal=True,
                )
            fixed.append(c)
        infos = fixed
    if not explicit:
        # No column flagged: the principal ones are those a cone search's VERB=2 and TAPs'
        # "principal" flag should show: identifiers, positions, photometry (with its errors)
        # and redshifts, recognised by UCD.
        infos = [replace(c, principal=True) if _principal_ucd(c.ucd) else c for c in infos]
    if not any(c.principal for c in infos):
        infos[0] = replace(infos[0], principal=True)
    spec = TableSpec(
        schema=schema,
        name=name,
        columns=tuple(infos),
        description=description or "",
        ra=ra_col,
        dec=dec_col,
        hpx_column="_hpx" if ra_col is not None else None,
        hpx_order=HPX_ORDER,
    )
    return spec, data


def publish_hats_field(
    backend: Backend,
    path: str | Path,
    table: str,
    field: str,
    *,
    field_column: str = "field",
    description: str | None = None,
    meta: str | Path | Mapping | None = None,
    ra: str | None = None,
    dec: str | None = None,
    select: Sequence[str] | None = None,
) -> tuple[TableSpec, int]:
    """Publish (or republish) one field's HATS catalogue into ``table``, incrementally.

    The partitions are read and loaded one at a time (memory: one partition), each with the
    column ``field_column`` set to ``field``; the rows of that field already in ``table`` are
    replaced in one transaction and the other fields' rows are left where they are
    (:meth:`Backend.replace_rows`): adding a field does not rewrite the others. Every field
    must have the same columns.

    ``select`` publishes only these columns of the catalogue (file names; the RA/Dec columns
    are always kept): a column selection for tables too wide to copy whole, e.g. the columns
    cone searches need (default: every column).

    Returns
    -------
    (TableSpec, int)
        What was published and the rows of the whole table.

    Raises
    ------
    InputError
        Not a HATS catalogue, columns that differ from the published table's, or a selected
        column the catalogue does not have.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    files = hats_partition_files(path)
    meta, ra, dec, desc = _hats_options(path, meta, ra, dec, description)
    keep = _selected(pq.read_schema(files[0]), select, ra, dec, path)
    first = pq.read_schema(files[0]).empty_table()
    if keep is not None:
        first = first.select(keep)
    columns = _parquet_columns(first)
    columns.append(ColumnInfo(name=field_column, datatype="char", arraysize="*",
                              ucd="meta.id;obs.field", description="HELP field"))  # fmt: skip

    def conform(part: pa.Table):
        part = part.append_column(field_column, pa.array([field] * part.num_rows, pa.string()))
        return _conform(part, table, columns=columns, description=desc, meta=meta, ra=ra,
                        dec=dec, source=str(path))  # fmt: skip

    spec, _ = conform(first)
    _check_same_columns(backend, spec, str(path))

    def batches():
        for f in files:
            yield conform(pq.read_table(f, columns=keep))[1]

    n_rows = backend.replace_rows(spec, batches(), field_column, field)
    return spec, n_rows


def hats_partition_files(path: str | Path) -> list[Path]:
    """The partition files of a HATS catalogue, in ``_healpix_29`` order.

    Raises
    ------
    InputError
        When ``path`` holds no ``dataset/Norder=*/Dir=*/Npix=*.parquet`` file.
    """
    path = Path(path)
    root = path / "dataset"
    files = sorted(root.rglob("Npix=*.parquet")) if root.is_dir() else []
    if not files:
        raise InputError("not a HATS catalogue (no dataset/Norder=*/... partitions)", path=path)
    # Nested pixel order = _healpix_29 order: each field is appended already sorted.
    files.sort(key=_first_hpx29)
    return files


def _hats_options(path: Path, meta, ra, dec, description) -> tuple[dict, str, str, str]:
    """(metadata, RA, Dec, description) of a HATS catalogue: the arguments, else the
    metadata file's, else the catalogue's properties."""
    if meta is not None and not isinstance(meta, Mapping):
        meta = read_metadata_file(meta)
    meta = dict(meta or {})
    props = _properties(path / "hats.properties")
    ra = ra or meta.get("ra") or props.get("hats_col_ra")
    dec = dec or meta.get("dec") or props.get("hats_col_dec")
    desc = description or meta.get("description") or props.get("obs_description") or ""
    return meta, ra, dec, desc


def _selected(schema: pa.Schema, select, ra, dec, path) -> list[str] | None:
    """The file columns to publish: ``select`` plus RA/Dec and ``_healpix_29`` when the
    file has them (None: all)."""
    if select is None:
        return None
    names = schema.names
    missing = [c for c in select if c not in names]
    if missing:
        raise InputError(f"no column(s) {missing} to select; columns are {names}", path=path)
    keep = list(dict.fromkeys(select))
    for extra in (ra, dec, "_healpix_29"):
        if extra and extra in names and extra not in keep:
            keep.append(extra)
    return keep


def publish_hats_files(
    backend: Backend,
    path: str | Path,
    table: str,
    field: str,
    *,
    field_column: str = "field",
    description: str | None = None,
    meta: str | Path | Mapping | None = None,
    ra: str | None = None,
    dec: str | None = None,
    select: Sequence[str] | None = None,
) -> tuple[TableSpec, int]:
    """Serve one field's HATS catalogue as (part of) ``table`` over its Parquet files, with
    no copy of the rows (DuckDB backend).

    The database records the field's partition files and their ``_healpix_29`` ranges and
    the table becomes a view over every field's files (:mod:`skysense.vo.parts`); a query
    with a region reads only the files the region touches. Publishing a field replaces that
    field's file list only: adding a field reads and rewrites nothing of the others. The
    files must stay where they are (the server reads them in place, and only them).

    Parameters
    ----------
    backend : Backend
        A DuckDB backend (:meth:`~skysense.vo.backends.DuckDBBackend.publish_files`).
    path : str or Path
        The HATS catalogue (with its ``_healpix_29`` column).
    table, field, field_column, description, meta, ra, dec, select
        As :func:`publish_hats_field`.

    Returns
    -------
    (TableSpec, int)
        What was published (its HEALPix column is ``_healpix_29``, order 29) and the rows of
        the whole table.

    Raises
    ------
    InputError
        Not a HATS catalogue, no ``_healpix_29`` column, a backend that cannot serve files,
        or columns that differ from the published table's.
    """
    import pyarrow.parquet as pq

    from skysense.vo.parts import HPX29_ORDER

    if not hasattr(backend, "publish_files"):
        raise InputError("serving tables over Parquet files needs the DuckDB backend")
    path = Path(path).resolve()
    files = hats_partition_files(path)
    meta, ra, dec, desc = _hats_options(path, meta, ra, dec, description)
    schema = pq.read_schema(files[0])
    if "_healpix_29" not in schema.names:
        raise InputError("no _healpix_29 column to serve the files by", path=path)
    keep = _selected(schema, select, ra, dec, path)
    first = schema.empty_table() if keep is None else schema.empty_table().select(keep)
    first = first.append_column(field_column, pa.array([], pa.string()))
    columns = _parquet_columns(first)
    spec, _ = _conform(first, table, columns=columns, description=desc, meta=meta, ra=ra,
                       dec=dec, source=str(path))  # fmt: skip
    if spec.hpx_column is None:
        raise InputError("no RA/Dec columns found; give ra and dec", path=path)
    spec = replace(spec, hpx_order=HPX29_ORDER)
    _check_same_columns(backend, spec, str(path))
    # The view's columns: the file's under their ADQL names, the field, and _healpix_29 as
    # the table's HEALPix column (a plain rename, so DuckDB's filters reach the files).
    names = [c for c in first.column_names if c != field_column and not c.startswith("_")]
    items = [f"{quote_ident(c)} AS {quote_ident(adql_column_name(c))}" for c in names]
    items.append(f"{_sql_literal(field)} AS {quote_ident(adql_column_name(field_column))}")
    items.append(f"{quote_ident('_healpix_29')} AS {quote_ident(spec.hpx_column)}")
    select_sql = (f"SELECT {', '.join(items)} FROM read_parquet({{files}}, "
                  "hive_partitioning = false)")  # fmt: skip
    parts = []
    for f in files:
        md = pq.ParquetFile(f).metadata
        lo, hi = _hpx29_bounds(md, f)
        parts.append((str(f), lo, hi, md.num_rows))
    n_rows = backend.publish_files(spec, str(field), parts, select_sql)
    return spec, n_rows


def _sql_literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _hpx29_bounds(md, file: Path) -> tuple[int, int]:
    """The ``_healpix_29`` range of a partition file: its statistics when every row group
    has them, else the range of its HEALPix cell (from the path)."""
    from skysense.vo.parts import pixel_range29

    i = md.schema.names.index("_healpix_29")
    lo = hi = None
    for k in range(md.num_row_groups):
        st = md.row_group(k).column(i).statistics
        if st is None or not st.has_min_max:
            lo = None
            break
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    if lo is not None:
        return int(lo), int(hi)
    m = re.search(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)", file.as_posix())
    if m is None:
        raise InputError("a partition file without _healpix_29 statistics or cell", path=file)
    return pixel_range29(int(m.group(1)), int(m.group(2)))


def publish_arrow_field(
    backend: Backend,
    data: pa.Table,
    table: str,
    field: str,
    *,
    field_column: str = "field",
    columns: Sequence[ColumnInfo] | None = None,
    description: str = "",
    meta: Mapping | None = None,
    ra: str | None = None,
    dec: str | None = None,
) -> tuple[TableSpec, int]:
    """Publish (or republish) one field's rows, in memory, into ``table``, incrementally.

    As :func:`publish_hats_field` for an Arrow table: ``field_column`` is set to ``field``
    (added when absent), the field's earlier rows are replaced in one transaction and the
    other fields' rows are not rewritten (:meth:`Backend.replace_rows`). Returns the spec and
    the rows of the whole table; raises :class:`InputError` as :func:`publish_hats_field`
    (columns that differ) and :func:`publish_arrow` do.
    """
    values = pa.array([field] * data.num_rows, pa.string())
    if field_column in data.column_names:
        data = data.set_column(data.column_names.index(field_column), field_column, values)
    else:
        data = data.append_column(field_column, values)
    spec, rows = _conform(data, table, columns=columns, description=description, meta=meta,
                          ra=ra, dec=dec, source=f"field {field}")  # fmt: skip
    _check_same_columns(backend, spec, f"field {field}")
    if spec.hpx_column is not None:
        rows = rows.sort_by(spec.hpx_column)  # stored in this order without another sort
    return spec, backend.replace_rows(spec, [rows], adql_column_name(field_column), field)


def _check_same_columns(backend: Backend, spec: TableSpec, source: str) -> None:
    """Refuse a field whose columns differ from those of the published table."""
    tables = backend.catalog().tables
    known = set(tables[spec.adql_name].columns) if spec.adql_name in tables else None
    if known is not None and set(known) - {spec.hpx_column} != {c.name for c in spec.columns}:
        raise InputError(
            f"the columns differ from those of the published {spec.adql_name}", path=source
        )


def _first_hpx29(file: Path) -> int:
    """The first ``_healpix_29`` a HATS partition file may hold, from its path."""
    import re

    m = re.search(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)", file.as_posix())
    if m is None:
        return 0
    order, pixel = int(m.group(1)), int(m.group(2))
    return pixel << (2 * (29 - order))


_PRINCIPAL_UCD_WORDS = ("phot.flux", "phot.mag", "phot.count", "src.redshift")


def _principal_ucd(ucd: str) -> bool:
    """A main identifier or position, a photometric value (or its error) or a redshift."""
    words = [w.strip() for w in ucd.lower().split(";") if w.strip()]
    if not words:
        return False
    if "meta.main" in words and words[0] in ("meta.id", "pos.eq.ra", "pos.eq.dec"):
        return True
    return any(w.startswith(_PRINCIPAL_UCD_WORDS) for w in words)


def _hpx_column(data: pa.Table, ra_col: str, dec_col: str, source: str) -> np.ndarray:
    """NESTED HEALPix index at :data:`HPX_ORDER` of every row; -1 where RA/Dec is null/NaN."""
    from skysense.vo.hpx import hpx_index

    def as_float(col):
        arr = data.column(col)
        if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
            raise InputError(f"must be numeric degrees, found {arr.type}", path=source, column=col)
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)

    ra, dec = check_positions(
        as_float(ra_col), as_float(dec_col), missing_ok=True, path=source, columns=(ra_col, dec_col)
    )
    ok = np.isfinite(ra) & np.isfinite(dec)
    out = np.full(len(ra), -1, dtype=np.int64)
    if ok.any():
        out[ok] = np.asarray(hpx_index(np.mod(ra[ok], 360.0), dec[ok], HPX_ORDER), dtype=np.int64)
    return out
