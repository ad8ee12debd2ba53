"""``skysense vo ...``: publish tables and maps, serve the Virtual Observatory, run the demo."""

from __future__ import annotations

import os
import sys

from skysense.cli._common import add_area, add_verb

__all__ = ["register"]

_DB_HELP = "DuckDB file or postgresql:// URL (default: $SKYSENSE_VO_DB or ./skysense.duckdb)"


def _db(args) -> str:
    return args.db or os.environ.get("SKYSENSE_VO_DB") or "skysense.duckdb"


def _add_db(parser) -> None:
    parser.add_argument("--db", default=None, help=_DB_HELP)


def _publish(args) -> int:
    from skysense.vo.backends import open_backend
    from skysense.vo.publish import publish_file

    backend = open_backend(_db(args))
    try:
        spec = publish_file(
            backend,
            args.file,
            args.table,
            description=args.description,
            meta=args.meta,
            ra=args.ra,
            dec=args.dec,
            fmt=args.format,
        )
        n_rows = backend.catalog().tables[spec.adql_name].n_rows
    finally:
        backend.close()
    pos = f"; RA/Dec = {spec.ra}/{spec.dec} (HEALPix-indexed)" if spec.ra else "; no RA/Dec"
    print(
        f"published {args.file} as {spec.adql_name}: {n_rows} rows, "
        f"{len(spec.columns)} columns{pos}"
    )
    return 0


def _publish_map(args) -> int:
    from skysense.vo.backends import open_backend
    from skysense.vo.maps import publish_map

    backend = open_backend(_db(args))
    try:
        info = publish_map(
            backend,
            args.fits,
            name=args.name,
            description=args.description or "",
            band=args.band,
        )
    finally:
        backend.close()
    print(f"registered map {info.name} from {args.fits}")
    return 0


def _tables(args) -> int:
    from skysense.vo.backends import open_backend

    backend = open_backend(_db(args), create=False)
    try:
        catalog = backend.catalog()
    finally:
        backend.close()
    for name in sorted(catalog.tables):
        info = catalog.tables[name]
        if name.startswith("tap_schema.") and not args.all:
            continue
        rows = "" if info.n_rows is None else f"{info.n_rows:>10} rows  "
        pos = f"  (ra={info.ra}, dec={info.dec})" if info.ra else ""
        print(f"{name:<32} {rows}{len(info.columns):>4} columns{pos}")
    return 0


def _drop(args) -> int:
    from skysense.vo.backends import open_backend

    backend = open_backend(_db(args), create=False)
    try:
        if args.table.lower() not in backend.catalog().tables:
            from skysense.errors import InputError

            raise InputError(f"no published table {args.table!r}")
        backend.drop_table(args.table)
    finally:
        backend.close()
    print(f"dropped {args.table}")
    return 0


def _query(args) -> int:
    from types import SimpleNamespace

    from skysense.vo.backends import open_backend
    from skysense.vo.formats import resolve_format, serialise
    from skysense.vo.settings import Settings
    from skysense.vo.tap import run_adql_sync

    settings = Settings(db=_db(args))
    backend = open_backend(settings.db, create=False)
    try:
        state = SimpleNamespace(backend=backend, settings=settings)
        result = run_adql_sync(state, args.adql, maxrec=args.maxrec)
        fmt = resolve_format(args.format)
        body = serialise(fmt, result.table, result.column_infos, overflow=result.overflow)
    finally:
        backend.close()
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    if result.overflow:
        print(f"skysense: result truncated at MAXREC={args.maxrec}", file=sys.stderr)
    return 0


def _settings_from(args, db: str, **extra):
    from skysense.vo.settings import Settings

    kwargs = {"db": db}
    if getattr(args, "title", None):
        kwargs["title"] = args.title
    if getattr(args, "base_url", None):
        kwargs["base_url"] = args.base_url
    if getattr(args, "timeout", None):
        kwargs["query_timeout_s"] = args.timeout
    for option, key, scale in (
        ("memory_limit_mb", "memory_limit_mb", 1),
        ("maxrec", "maxrec_default", 1),
        ("maxrec_hard", "maxrec_hard", 1),
        ("upload_limit_mb", "upload_limit_bytes", 1_000_000),
        ("max_connections", "max_connections", 1),
        ("spill_limit_mb", "spill_limit_mb", 1),
        ("jobs_storage_mb", "jobs_storage_limit_bytes", 1_000_000),
    ):
        value = getattr(args, option, None)
        if value is not None:
            kwargs[key] = value * scale
    if "jobs_storage_limit_bytes" in kwargs:
        # One job may use the whole job storage, never more.
        kwargs["job_storage_limit_bytes"] = min(
            Settings.job_storage_limit_bytes, kwargs["jobs_storage_limit_bytes"]
        )
    kwargs.update(extra)
    return Settings(**kwargs)


def _add_serve_options(parser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=default_port, help="TCP port")
    parser.add_argument("--title", default=None, help="service title")
    parser.add_argument(
        "--base-url", default=None, help="public URL of the service when behind a proxy"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="per-query time limit in seconds (default 60)"
    )
    parser.add_argument(
        "--memory-limit-mb", type=int, default=None, help="database memory cap in MB (default 2048)"
    )
    parser.add_argument(
        "--maxrec",
        type=int,
        default=None,
        help="rows returned when the client gives no MAXREC (default 100000)",
    )
    parser.add_argument(
        "--maxrec-hard", type=int, default=None, help="MAXREC ceiling (default 2000000)"
    )
    parser.add_argument(
        "--upload-limit-mb",
        type=int,
        default=None,
        help="largest accepted upload in MB (default 50)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="connections served at once; more get 503 (default 200)",
    )
    parser.add_argument(
        "--spill-limit-mb",
        type=int,
        default=None,
        help="disk space for queries larger than memory, in the work folder (default 4096)",
    )
    parser.add_argument(
        "--jobs-storage-mb",
        type=int,
        default=None,
        help="disk space of all async jobs' uploads and results (default 5000)",
    )


def _serve_app(settings, host: str, port: int) -> None:
    from skysense.vo.app import create_app, stop_work
    from skysense.vo.backends import open_backend
    from skysense.vo.serve import SkysenseServer, bind_socket, server_config

    # The port and the database first: either failing is one `skysense: error:` line, before
    # anything says "serving".
    sock = bind_socket(host, port)
    try:
        backend = open_backend(settings.db, create=False)
    except BaseException:
        sock.close()
        raise
    try:
        app = create_app(settings, backend=backend)
        server = SkysenseServer(server_config(app, settings), on_stop=lambda: stop_work(app))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = settings.base_url or f"http://{shown}:{port}/"
        print(f"skysense VO serving {settings.db}", flush=True)
        print(f"  web pages: {url}", flush=True)
        print(f"  TAP:       {url.rstrip('/')}/tap", flush=True)
        print("  (Ctrl-C to stop)", flush=True)
        server.run(sockets=[sock])
    finally:
        sock.close()
        backend.close()
    print("skysense: stopped", file=sys.stderr, flush=True)


def _serve(args) -> int:
    from skysense.vo.settings import is_postgres_url

    db = _db(args)
    if not is_postgres_url(db) and not os.path.exists(db):
        from skysense.errors import ConfigError

        raise ConfigError(
            f"database file {db} does not exist; publish a table first "
            "(skysense vo publish FILE --table SCHEMA.NAME --db ...)",
            key="--db",
        )
    _serve_app(_settings_from(args, db), args.host, args.port)
    return 0


def _demo(args) -> int:
    from skysense.pipeline.demo import build_demo, demo_settings, is_demo_built

    if args.rebuild or not is_demo_built(args.workdir):
        print(
            f"first start: building the demo database in {args.workdir} by running the "
            f"pipeline on a simulated {args.area_deg2:g} deg^2 field (a minute or two)...",
            flush=True,
        )

    db, built = build_demo(
        args.workdir,
        rebuild=args.rebuild,
        seed=args.seed,
        area_deg2=args.area_deg2,
        scheduler=args.scheduler,
        echo=lambda line: print(f"  {line}", flush=True),
    )
    if built:
        print(f"built the demo database {db}", flush=True)
    else:
        print(f"using the existing demo database {db} (--rebuild to start over)", flush=True)
    if args.no_serve:
        return 0
    base = demo_settings(args.workdir)
    settings = _settings_from(
        args, base.db, title=args.title or base.title, description=base.description
    )
    _serve_app(settings, args.host, args.port)
    return 0


def register(subparsers) -> None:
    """Add ``skysense vo`` and its verbs."""
    verbs = add_area(
        subparsers,
        "vo",
        "Virtual Observatory server: TAP/ADQL, cone search, SIA/cutouts and web pages",
    )

    p = add_verb(
        verbs,
        "publish",
        _publish,
        "load a FITS/VOTable/Parquet/HATS/CSV table into the service database",
    )
    p.add_argument("file", help="table file or HATS directory")
    p.add_argument("--table", required=True, help="SCHEMA.NAME, e.g. help.masterlist")
    p.add_argument("--description", default=None, help="table description")
    p.add_argument(
        "--meta",
        default=None,
        help="metadata YAML/JSON: description, ra, dec, columns: {name: {unit, ucd, description}}",
    )
    p.add_argument("--ra", default=None, help="RA column (deg); detected when omitted")
    p.add_argument("--dec", default=None, help="Dec column (deg); detected when omitted")
    p.add_argument(
        "--format", default=None, help="input format (fits, votable, parquet, hats, csv, tsv, ecsv)"
    )
    _add_db(p)

    p = add_verb(
        verbs, "publish-map", _publish_map, "register a FITS map for SIA discovery and cutouts"
    )
    p.add_argument("fits", help="FITS map")
    p.add_argument("--name", required=True, help="map id, [a-z][a-z0-9_]*")
    p.add_argument("--description", default=None, help="map description")
    p.add_argument("--band", default=None, help="band name (default: header BAND)")
    _add_db(p)

    p = add_verb(verbs, "serve", _serve, "serve the database (TAP, SCS, SIA, web pages)")
    _add_db(p)
    _add_serve_options(p, 8000)

    p = add_verb(
        verbs,
        "demo",
        _demo,
        "build the demo database from a simulated field (first start), then serve it",
    )
    p.add_argument("--workdir", default="demo", help="demo folder (default ./demo)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the demo database")
    p.add_argument("--no-serve", action="store_true", help="build only, do not serve")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated field")
    p.add_argument(
        "--area-deg2",
        type=float,
        default=0.05,
        help="area of the simulated field in deg^2 (default 0.05: about 4500 objects)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address for the pipeline (default: local)",
    )
    _add_serve_options(p, 8000)

    p = add_verb(verbs, "tables", _tables, "list the published tables")
    p.add_argument("--all", action="store_true", help="include TAP_SCHEMA")
    _add_db(p)

    p = add_verb(verbs, "drop", _drop, "remove a published table")
    p.add_argument("table", help="SCHEMA.NAME")
    _add_db(p)

    p = add_verb(verbs, "query", _query, "run one ADQL query on the database, print the result")
    p.add_argument("adql", help="the ADQL query")
    p.add_argument("--maxrec", type=int, default=1000, help="row limit (default 1000)")
    p.add_argument("--format", default="csv", help="csv (default), tsv, votable, json, fits")
    _add_db(p)
