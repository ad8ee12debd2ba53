"""``skysense pipeline ...``: the HELP workflow of one field (prepare, merge, XID+, photo-z, VO)."""

from __future__ import annotations

from skysense.cli._common import add_area, add_scheduler_option, add_verb

__all__ = ["register"]


def _print_steps(results) -> None:
    for r in results:
        extra = f"  {r.message}" if r.message else ""
        print(f"  {r.name:<22} {r.status:<8}{extra}")


def _run(args) -> int:
    from skysense.pipeline import run

    report = run(
        args.config,
        scheduler=args.scheduler,
        force=args.force or (),
        dry_run=args.dry_run,
        echo=None if args.dry_run else (lambda line: print(line, flush=True)),
    )
    if args.dry_run:
        n = sum(r.status == "planned" for r in report.steps)
        print(f"dry run: {n} of {len(report.steps)} step(s) would run")
        _print_steps(report.steps)
        return 0
    total = sum(r.seconds for r in report.steps)
    print(
        f"pipeline done: {len(report.ran)} step(s) ran in {total:.1f} s, "
        f"{len(report.cached)} up to date; outputs in {report.work_dir}"
    )
    md = report.work_dir / "summary" / "summary.md"
    if md.is_file():
        print(f"run summary: {md}")
    truth = (report.summary or {}).get("truth") or {}
    if truth:
        a = truth["association"]
        line = f"  masterlist purity {a['purity']:.3f}, completeness {a['completeness']:.3f}"
        pz = truth.get("photoz")
        if pz:
            line += (
                f"; photo-z sigma_NMAD {pz['sigma_nmad']:.3f}, "
                f"outliers {pz['outlier_fraction']:.3f}"
            )
        print(line)
        for band, s in (truth.get("xid") or {}).items():
            print(f"  XID+ {band}: 68% coverage {s['coverage_68']:.2f} over {s['n']} sources")
    return 0


def _status(args) -> int:
    from skysense.pipeline import status

    results = status(args.config)
    n = sum(r.status == "planned" for r in results)
    print(f"{len(results) - n} of {len(results)} step(s) up to date")
    _print_steps(results)
    return 0


def _sim_config(args) -> int:
    from skysense.pipeline import write_sim_config

    out = write_sim_config(args.field, args.out, db=args.db, work_dir=args.work_dir)
    print(f"field configuration written to {out} (training set {out.parent / 'specz.parquet'})")
    return 0


def register(subparsers) -> None:
    """Add ``skysense pipeline`` and its verbs."""
    verbs = add_area(
        subparsers,
        "pipeline",
        "the HELP workflow of one field: prepare, merge, XID+, photo-z, publish (cached)",
    )
    p = add_verb(
        verbs,
        "run",
        _run,
        "run (or resume) the pipeline of a field configuration; redoes only what changed",
    )
    p.add_argument("config", metavar="FIELD.yaml", help="field configuration (YAML or TOML)")
    add_scheduler_option(p)
    p.add_argument(
        "--force",
        action="append",
        metavar="STEP",
        help="redo STEP and everything downstream (repeatable; 'prepare' means every survey)",
    )
    p.add_argument("--dry-run", action="store_true", help="only list the steps that would run")

    p = add_verb(verbs, "status", _status, "which steps are up to date and which would run")
    p.add_argument("config", metavar="FIELD.yaml", help="field configuration (YAML or TOML)")

    p = add_verb(
        verbs,
        "sim-config",
        _sim_config,
        "write the field configuration of a simulated field (skysense sim field)",
    )
    p.add_argument("field", metavar="FIELD_DIR", help="simulated field folder")
    p.add_argument("--out", required=True, metavar="FILE", help="field configuration to write")
    p.add_argument("--db", default="vo.duckdb", help="VO database (default vo.duckdb)")
    p.add_argument("--work-dir", default="pipeline", help="work folder (default pipeline)")
