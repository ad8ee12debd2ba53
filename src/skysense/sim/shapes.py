"""Galaxy shapes of the simulated sky, and how a survey measures them (HELP DMU 3).

Truth: every galaxy has its half-light radius (``r_half_arcsec``, from :mod:`.sky`), an
intrinsic axis ratio q ~ U(0.2, 1) and a position angle ~ U(0, 180) deg east of north, drawn
from the sub-stream ``sky.shapes`` (so the rest of the sky does not change). Stars are points.

A survey measures, for each detection: the radius of the light convolved with its seeing
(``sqrt(r_half^2 + (fwhm/2)^2)``, with a 10 % + 1/SNR scatter), the axis ratio diluted by the
seeing (``(q r^2 + s^2) / (r^2 + s^2)`` in second moments, plus 0.05 scatter) and the PA with a
scatter growing as the object gets round.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.sim._rng import substream

__all__ = ["galaxy_shapes", "measure_shapes"]


def galaxy_shapes(seed: int, object_id: np.ndarray) -> pd.DataFrame:
    """True axis ratio and PA of the galaxies ``object_id`` (1..n, as :mod:`.sky` numbers them).

    Returns
    -------
    DataFrame
        ``object_id``, ``axis_ratio``, ``pa_deg`` (deg east of north).
    """
    ids = np.asarray(object_id, dtype=np.int64)
    n = int(ids.max()) if len(ids) else 0
    rng = substream(seed, "sky.shapes")
    q = rng.uniform(0.2, 1.0, n)
    pa = rng.uniform(0.0, 180.0, n)
    return pd.DataFrame({"object_id": ids, "axis_ratio": q[ids - 1], "pa_deg": pa[ids - 1]})


def measure_shapes(
    r_half: np.ndarray,
    axis_ratio: np.ndarray,
    pa_deg: np.ndarray,
    snr: np.ndarray,
    seeing_fwhm_arcsec: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """A survey's measured radius (arcsec), axis ratio and PA (deg) of each detection.

    Parameters
    ----------
    r_half, axis_ratio, pa_deg : ndarray (n,)
        Truth (stars: r_half 0, axis ratio 1).
    snr : ndarray (n,)
        Detection signal-to-noise.
    seeing_fwhm_arcsec : float
    rng : numpy Generator
    """
    s = seeing_fwhm_arcsec / 2.0
    r2 = np.square(r_half)
    r_obs = np.sqrt(r2 + s * s)
    err = 0.1 + 1.0 / np.maximum(snr, 1.0)
    r_meas = r_obs * np.exp(rng.normal(0.0, 1.0, len(r_obs)) * err)
    q_obs = (axis_ratio * r2 + s * s) / (r2 + s * s)
    q_meas = np.clip(q_obs + rng.normal(0.0, 0.05, len(r_obs)), 0.05, 1.0)
    pa_err = 5.0 + 40.0 * q_obs**4  # round objects have a poorly defined PA
    pa_meas = np.mod(pa_deg + rng.normal(0.0, 1.0, len(r_obs)) * pa_err, 180.0)
    return {"r_half": r_meas, "axis_ratio": q_meas, "pa": pa_meas}
