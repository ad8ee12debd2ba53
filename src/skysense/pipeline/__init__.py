"""The HELP workflow for one field as one cached, resumable pipeline.

``skysense pipeline run FIELD.yaml`` (or :func:`run`) prepares every survey, merges them into the
masterlist, selects XID+ priors from it, fits the far-infrared maps tile by tile on Dask, trains
(or loads) a GPz photo-z model and applies it, publishes the results to the VO database and
writes a run summary (checked against the truth when the field is simulated). Steps are cached
by the checksums of their inputs (:mod:`skysense.pipeline.runner`); the configuration is
described in :mod:`skysense.pipeline.config` and ``docs/configuration.md``.
"""

from __future__ import annotations

from skysense.pipeline.api import RunReport, describe_plan, describe_report, run, status
from skysense.pipeline.config import PipelineConfig, load_pipeline_config, parse_pipeline_config
from skysense.pipeline.runner import StepError, StepResult
from skysense.pipeline.simfield import training_set_path, write_sim_config

__all__ = [
    "run",
    "status",
    "RunReport",
    "describe_plan",
    "describe_report",
    "PipelineConfig",
    "load_pipeline_config",
    "parse_pipeline_config",
    "StepError",
    "StepResult",
    "write_sim_config",
    "training_set_path",
]
