"""skysense.healpix: the shared NESTED index (its values are checked against an independent
ang2pix in tests/vo/test_vo_hpx.py, through :func:`skysense.vo.hpx.hpx_index`)."""

from __future__ import annotations

import numpy as np

from skysense.catalog.masterlist import KEY_ORDER, healpix_index
from skysense.healpix import nested_index


def _sky(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def test_nested_cells_contain_their_children():
    ra, dec = _sky(2000, 1)
    for order in (1, 8, 14, 29):
        fine = nested_index(ra, dec, order)
        coarse = nested_index(ra, dec, order - 1)
        assert fine.dtype == np.int64
        assert np.array_equal(fine >> 2, coarse)
        assert fine.min() >= 0 and fine.max() < 12 * 4**order


def test_ra_wraps_and_shape_is_kept():
    ra, dec = _sky(60, 2)
    flat = nested_index(ra, dec, 10)
    assert np.array_equal(nested_index(ra - 360.0, dec, 10), flat)
    assert np.array_equal(nested_index(ra + 720.0, dec, 10), flat)
    grid = nested_index(ra.reshape(6, 10), dec.reshape(6, 10), 10)
    assert grid.shape == (6, 10)
    assert np.array_equal(grid.ravel(), flat)
    empty = nested_index([], [], 5)
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_masterlist_keys_use_the_shared_index():
    ra, dec = _sky(100, 3)
    assert np.array_equal(healpix_index(ra, dec), nested_index(ra, dec, KEY_ORDER))
    assert np.array_equal(healpix_index(ra, dec, 6), nested_index(ra, dec, 6))
