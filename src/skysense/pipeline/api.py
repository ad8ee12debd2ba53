"""Python API of the pipeline, mirroring ``skysense pipeline run|status``."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from skysense._dask import resolve_scheduler, show_progress
from skysense.errors import ConfigError
from skysense.pipeline.config import PipelineConfig, load_pipeline_config
from skysense.pipeline.runner import StepResult, plan_status, run_steps
from skysense.pipeline.steps import build_steps

__all__ = ["RunReport", "run", "status", "describe_plan", "describe_report"]


@dataclasses.dataclass
class RunReport:
    """The outcome of :func:`run`.

    Attributes
    ----------
    steps : list of StepResult
        One per step, in order: ``ran``, ``cached`` (or ``planned`` for a dry run).
    work_dir : Path
        Where the outputs and step records are.
    summary : dict or None
        The run summary (``<work_dir>/summary/summary.json``), None for a dry run.
    """

    steps: list[StepResult]
    work_dir: Path
    summary: dict | None = None

    @property
    def ran(self) -> list[str]:
        """Names of the steps that did work in this run."""
        return [s.name for s in self.steps if s.status == "ran"]

    @property
    def cached(self) -> list[str]:
        """Names of the steps found up to date."""
        return [s.name for s in self.steps if s.status == "cached"]


def _config(config: str | os.PathLike | PipelineConfig) -> PipelineConfig:
    return config if isinstance(config, PipelineConfig) else load_pipeline_config(config)


def _rel(cfg: PipelineConfig) -> Callable[[Path], str]:
    return cfg.relative


def run(
    config: str | os.PathLike | PipelineConfig,
    *,
    scheduler: str | None = None,
    force: Iterable[str] = (),
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> RunReport:
    """Run the pipeline of a field configuration, redoing only what changed.

    Parameters
    ----------
    config : path or PipelineConfig
        The field configuration (YAML/TOML).
    scheduler : str, optional
        Dask scheduler address (default: the file's ``dask.scheduler``, else
        ``SKYSENSE_SCHEDULER``, else local threads).
    force : iterable of str
        Steps to redo with everything downstream (``xid``, ``prepare`` for every survey,
        ``prepare:ukidss`` for one).
    dry_run : bool
        Only report which steps would run.
    echo : callable, optional
        Receives one line per step.
    progress : bool, optional
        Progress bars (default: :func:`skysense._dask.show_progress`).

    Returns
    -------
    RunReport

    Raises
    ------
    skysense.errors.ConfigError
        Invalid configuration (names the file and key).
    StepError
        A step failed (names the step and the input); completed steps are kept.
    """
    cfg = _config(config)
    steps = build_steps(cfg)
    # --scheduler wins over the file's dask.scheduler; a malformed address stops here.
    scheduler = resolve_scheduler(scheduler or cfg.sections["dask"]["scheduler"])
    if scheduler is not None and not cfg.sections["merge"]["tiled"]:
        # As `skysense catalog merge --in-memory --scheduler`: refused, not tiled quietly.
        raise ConfigError(
            # ConfigError puts "merge.tiled: " (the key) before the message
            f"false (the in-memory merge) cannot run on a scheduler ({scheduler}); "
            "set merge.tiled: true, or drop --scheduler / dask.scheduler",
            path=cfg.path,
            key="merge.tiled",
        )
    if dry_run:
        return RunReport(plan_status(steps, cfg.work_dir, rel=_rel(cfg), force=force), cfg.work_dir)
    results = run_steps(
        steps,
        cfg.work_dir,
        rel=_rel(cfg),
        force=force,
        scheduler=scheduler,
        echo=echo,
        progress=show_progress() if progress is None else progress,
    )
    path = cfg.work_dir / "summary" / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return RunReport(results, cfg.work_dir, summary)


def status(config: str | os.PathLike | PipelineConfig) -> list[StepResult]:
    """Which steps are up to date (``cached``) and which a run would redo (``planned``)."""
    cfg = _config(config)
    return plan_status(build_steps(cfg), cfg.work_dir, rel=_rel(cfg))


def _step_lines(results: Iterable[StepResult]) -> list[str]:
    return [
        f"  {r.name:<22} {r.status:<8}" + (f"  {r.message}" if r.message else "") for r in results
    ]


def describe_plan(results: list[StepResult], *, dry_run: bool = False) -> str:
    """How many steps are up to date (or, ``dry_run``, would run), then one line per step.

    ``results`` as :func:`status` returns them, or the steps of a dry :func:`run`.
    """
    n = sum(r.status == "planned" for r in results)
    head = (
        f"dry run: {n} of {len(results)} step(s) would run"
        if dry_run
        else f"{len(results) - n} of {len(results)} step(s) up to date"
    )
    return "\n".join([head, *_step_lines(results)])


def describe_report(report: RunReport) -> str:
    """What a run did: steps run and cached, time, outputs, the summary page and, for a
    simulated field, the truth scores (masterlist purity and completeness, photo-z sigma_NMAD
    and outliers, XID+ 68% coverage per band)."""
    total = sum(r.seconds for r in report.steps)
    lines = [
        f"pipeline done: {len(report.ran)} step(s) ran in {total:.1f} s, "
        f"{len(report.cached)} up to date; outputs in {report.work_dir}"
    ]
    md = report.work_dir / "summary" / "summary.md"
    if md.is_file():
        lines.append(f"run summary: {md}")
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
        lines.append(line)
        for band, s in (truth.get("xid") or {}).items():
            lines.append(
                f"  XID+ {band}: 68% coverage {s['coverage_68']:.2f} over {s['n']} sources"
            )
    return "\n".join(lines)
