"""Fixtures of the land-use tests."""

from __future__ import annotations

import pytest
from landuse_synth import make_raster


@pytest.fixture
def synth(tmp_path):
    """Factory: ``synth(**kw)`` -> (path, truth, means) in tmp_path."""
    counter = iter(range(1000))

    def make(**kw):
        return make_raster(tmp_path / f"img{next(counter)}.tif", **kw)

    return make
