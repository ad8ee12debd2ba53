"""``skysense pipeline ...``: the HELP workflow of one field (prepare, merge, XID+, photo-z, VO)."""

from __future__ import annotations

from skysense.cli._common import SCHEDULER, add_area, verb

__all__ = ["register"]

_CONFIG = "config FIELD.yaml | field configuration (YAML or TOML)"
_RUN = """
--force STEP append | redo STEP and everything downstream (repeatable; 'prepare' means every
    survey)
--dry-run flag | only list the steps that would run
"""
_SIM_CONFIG = """
field FIELD_DIR | simulated field folder
--out FILE required | field configuration to write
--db str=vo.duckdb | VO database (default vo.duckdb)
--work-dir str=pipeline | work folder (default pipeline)
"""


def _run(args) -> str:
    from skysense import pipeline

    echo = None if args.dry_run else (lambda line: print(line, flush=True))
    report = pipeline.run(args.config, scheduler=args.scheduler, force=args.force or (),
                          dry_run=args.dry_run, echo=echo)  # fmt: skip
    if args.dry_run:
        return pipeline.describe_plan(report.steps, dry_run=True)
    return pipeline.describe_report(report)


def _status(args) -> str:
    from skysense import pipeline

    return pipeline.describe_plan(pipeline.status(args.config))


def _sim_config(args) -> str:
    from skysense.pipeline import training_set_path, write_sim_config

    out = write_sim_config(args.field, args.out, db=args.db, work_dir=args.work_dir)
    return f"field configuration written to {out} (training set {training_set_path(out)})"


def register(subparsers) -> None:
    """Add ``skysense pipeline`` and its verbs."""
    verbs = add_area(subparsers, "pipeline", "the HELP workflow of one field: prepare, merge, "
                     "XID+, photo-z, publish (cached)")  # fmt: skip
    verb(verbs, "run", _run, "run (or resume) the pipeline of a field configuration; redoes only "
         "what changed", _CONFIG, SCHEDULER, _RUN)  # fmt: skip
    verb(verbs, "status", _status, "which steps are up to date and which would run", _CONFIG)
    verb(verbs, "sim-config", _sim_config, "write the field configuration of a simulated field "
         "(skysense sim field)", _SIM_CONFIG)  # fmt: skip
