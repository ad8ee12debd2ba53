"""``skysense vo ...``: publish tables and maps, serve the Virtual Observatory, run the demo.

Parsing and printing only: :mod:`skysense.vo.database` publishes, lists, drops and queries,
:mod:`skysense.vo.serve` builds the settings and serves.
"""

from __future__ import annotations

import sys

from skysense.cli._common import add_area, keywords, verb

__all__ = ["register"]

_ALL = "--all flag | include TAP_SCHEMA"
_DB = "--db | DuckDB file or postgresql:// URL (default: $SKYSENSE_VO_DB or ./skysense.duckdb)"
_SERVE = """
--host str=127.0.0.1 | address to listen on
--port int=8000 | TCP port
--title | service title
--base-url | public URL of the service when behind a proxy
--timeout float | per-query time limit in seconds (default 60)
--memory-limit-mb int | database memory cap in MB (default 2048)
--maxrec int | rows returned when the client gives no MAXREC (default 100000)
--maxrec-hard int | MAXREC ceiling (default 2000000)
--upload-limit-mb int | largest accepted upload in MB (default 50)
--max-connections int | connections served at once; more get 503 (default 200)
--spill-limit-mb int | disk space for queries larger than memory, in the work folder (default 4096)
--jobs-storage-mb int | disk space of all async jobs' uploads and results (default 5000)
"""
# the _SERVE options as keywords of skysense.vo.serve.serve_settings
_SETTINGS = """title base_url timeout:timeout_s memory_limit_mb maxrec maxrec_hard upload_limit_mb
max_connections spill_limit_mb jobs_storage_mb"""
_PUBLISH = """
file | table file or HATS directory
--table required | SCHEMA.NAME, e.g. help.masterlist
--description | table description
--meta | metadata YAML/JSON: description, ra, dec, columns: {name: {unit, ucd, description}}
--ra | RA column (deg); detected when omitted
--dec | Dec column (deg); detected when omitted
--format | input format (fits, votable, parquet, hats, csv, tsv, ecsv)
--field NAME | publish a HATS directory as one field of the table (column 'field'),
    incrementally: streamed partition by partition, only that field's rows are replaced
--columns LIST | with --field: publish only these comma-separated columns (RA/Dec are
    kept), for catalogues too wide to copy whole (default: all)
--over-files flag | with --field: serve the HATS files where they are, without a copy
    (DuckDB: a view over the partitions; a cone reads only the files it touches)
"""
_PUBLISH_MAP = """
fits | FITS map
--name required | map id, [a-z][a-z0-9_]*
--description | map description
--band | band name (default: header BAND)
"""
_DEMO = """
--workdir str=demo | demo folder (default ./demo)
--rebuild flag | rebuild the demo database
--no-serve flag | build only, do not serve
--seed int=1 | seed of the simulated field
--area-deg2 float=0.05 | area of the simulated field in deg^2 (default 0.05: about 4500 objects)
--scheduler ADDRESS | Dask scheduler address for the pipeline (default: local)
"""
_QUERY = """
adql | the ADQL query
--maxrec int=1000 | row limit (default 1000)
--format str=csv | csv (default), tsv, votable, json, fits
"""


def _publish(args) -> str:
    from skysense.vo.database import describe_published, publish_table

    if args.field is not None:
        from skysense.vo.database import publish_field

        kw = keywords(args, "description meta ra dec over_files")
        kw["select"] = [c.strip() for c in args.columns.split(",")] if args.columns else None
        spec, n_rows = publish_field(args.db, args.file, args.table, args.field, **kw)
        return describe_published(spec, n_rows, args.file) + f" (field {args.field})"
    kw = keywords(args, "description meta ra dec format:fmt")
    spec, n_rows = publish_table(args.db, args.file, args.table, **kw)
    return describe_published(spec, n_rows, args.file)


def _publish_map(args) -> str:
    from skysense.vo.database import publish_map_file

    info = publish_map_file(args.db, args.fits, name=args.name, description=args.description,
                            band=args.band)  # fmt: skip
    return f"registered map {info.name} from {args.fits}"


def _tables(args) -> None:
    from skysense.vo.database import table_summaries

    for line in table_summaries(args.db, tap_schema=args.all):
        print(line)


def _drop(args) -> str:
    from skysense.vo.database import drop_table

    drop_table(args.db, args.table)
    return f"dropped {args.table}"


def _query(args) -> None:
    from skysense.vo.database import query

    body, overflow = query(args.db, args.adql, maxrec=args.maxrec, fmt=args.format)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    if overflow:
        print(f"skysense: result truncated at MAXREC={args.maxrec}", file=sys.stderr)


def _run_server(args, db: str, **extra) -> None:
    from skysense.vo.serve import serve_database, serve_settings

    settings = serve_settings(db, **{**keywords(args, _SETTINGS), **extra})
    serve_database(settings, args.host, args.port)
    print("skysense: stopped", file=sys.stderr, flush=True)


def _serve(args) -> None:
    from skysense.vo.database import existing_db

    _run_server(args, existing_db(args.db))


def _demo(args) -> None:
    from skysense.pipeline.demo import build_demo, demo_settings, is_demo_built

    def say(line: str) -> None:
        print(line, flush=True)

    if args.rebuild or not is_demo_built(args.workdir):
        say(f"first start: building the demo database in {args.workdir} by running the pipeline "
            f"on a simulated {args.area_deg2:g} deg^2 field (a few minutes)...")  # fmt: skip
    kw = keywords(args, "rebuild seed area_deg2 scheduler")
    db, built = build_demo(args.workdir, echo=lambda line: say(f"  {line}"), **kw)
    say(f"built the demo database {db}" if built else
        f"using the existing demo database {db} (--rebuild to start over)")  # fmt: skip
    if not args.no_serve:
        base = demo_settings(args.workdir)
        _run_server(args, base.db, title=args.title or base.title, description=base.description)


def register(subparsers) -> None:
    """Add ``skysense vo`` and its verbs."""
    verbs = add_area(subparsers, "vo", "Virtual Observatory server: TAP/ADQL, cone search, "
                     "SIA/cutouts and web pages")  # fmt: skip
    verb(verbs, "publish", _publish, "load a FITS/VOTable/Parquet/HATS/CSV table into the service "
         "database", _PUBLISH, _DB)  # fmt: skip
    verb(verbs, "publish-map", _publish_map, "register a FITS map for SIA discovery and cutouts",
         _PUBLISH_MAP, _DB)  # fmt: skip
    verb(verbs, "serve", _serve, "serve the database (TAP, SCS, SIA, web pages)", _DB, _SERVE)
    verb(verbs, "demo", _demo,
         "build the demo database from a simulated field (first start), then serve it",
         _DEMO, _SERVE)  # fmt: skip
    verb(verbs, "tables", _tables, "list the published tables", _ALL, _DB)
    verb(verbs, "drop", _drop, "remove a published table", "table | SCHEMA.NAME", _DB)
    verb(verbs, "query", _query, "run one ADQL query on the database, print the result",
         _QUERY, _DB)  # fmt: skip
