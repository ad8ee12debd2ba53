"""A small simulated field and one completed pipeline run, shared by the pipeline tests.

Tests that change something work on a copy of the completed tree (field, configuration, work
folder and VO database together): keys depend on file contents and relative names only, so the
copy starts fully cached.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Small and fast: about 1700 masterlist objects, 400 XID+ priors.
AREA_DEG2 = 0.02


def write_fast_config(field: Path, out: Path) -> Path:
    from skysense.pipeline import write_sim_config

    return write_sim_config(field, out, samples=100, chains=2, gpz_m=20, gpz_max_iter=60)


@pytest.fixture(scope="session")
def completed(tmp_path_factory):
    """(root, report): a tree with ``field/``, ``field.yaml`` and a completed run."""
    from skysense.pipeline import run
    from skysense.sim import write_field

    root = tmp_path_factory.mktemp("pipeline") / "site"
    write_field(root / "field", seed=3, area_deg2=AREA_DEG2, progress=False)
    write_fast_config(root / "field", root / "field.yaml")
    report = run(root / "field.yaml", progress=False)
    return root, report


@pytest.fixture
def site_copy(completed, tmp_path):
    """A private copy of the completed tree (its runs start fully cached)."""
    root, _ = completed
    dst = tmp_path / "site"
    shutil.copytree(root, dst)
    return dst
