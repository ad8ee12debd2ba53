"""Catalogue sentinel values (pure functions on arrays).

Magnitude and flux conversions in HELP conventions are :mod:`skysense.photometry`, shared with
photo-z and the simulator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sentinels_to_nan"]


def sentinels_to_nan(values: np.ndarray, missing=()) -> np.ndarray:
    """A float copy of ``values`` with the sentinel values in ``missing`` and infinities as NaN."""
    out = np.array(values, dtype=np.float64, copy=True)
    for sentinel in missing:
        out[out == sentinel] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out
