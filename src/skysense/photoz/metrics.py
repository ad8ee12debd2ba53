"""Photometric-redshift quality metrics (pure NumPy).

Conventions (those of the photo-z literature and of GPz's papers):

- ``dz = z_phot - z_spec``; normalised residual ``dz / (1 + z_spec)``;
- ``sigma_NMAD = 1.4826 * median(|dz - median(dz)| / (1 + z_spec))``;
- outliers: ``|dz| / (1 + z_spec) > 0.15``;
- bias: mean of ``dz / (1 + z_spec)`` (the median is reported too);
- coverage: fraction of ``|dz| < k sigma`` for the predicted sigma (Gaussian: 0.683 for k=1,
  0.954 for k=2);
- PIT: ``Phi((z_spec - z_phot) / sigma)``, uniform on [0, 1] for calibrated predictions;
- CRPS of the Gaussian predictive distribution (closed form, Gneiting et al. 2005).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from skysense.errors import InputError

__all__ = [
    "sigma_nmad",
    "outlier_fraction",
    "bias",
    "coverage",
    "pit",
    "pit_histogram",
    "crps_gaussian",
    "summary",
    "describe_summary",
]

OUTLIER_THRESHOLD = 0.15


def _pair(z_spec, z_phot) -> tuple[np.ndarray, np.ndarray]:
    zs = np.asarray(z_spec, float).ravel()
    zp = np.asarray(z_phot, float).ravel()
    if zs.shape != zp.shape:
        raise InputError(f"z_spec has {zs.size} values but z_phot has {zp.size}")
    keep = np.isfinite(zs) & np.isfinite(zp)
    return zs[keep], zp[keep]


def sigma_nmad(z_spec, z_phot) -> float:
    """Normalised median absolute deviation of ``dz / (1 + z_spec)`` (dimensionless)."""
    zs, zp = _pair(z_spec, z_phot)
    if zs.size == 0:
        return float("nan")
    dz = zp - zs
    return float(1.4826 * np.median(np.abs(dz - np.median(dz)) / (1.0 + zs)))


def outlier_fraction(z_spec, z_phot, threshold: float = OUTLIER_THRESHOLD) -> float:
    """Fraction of ``|dz| / (1 + z_spec) > threshold``."""
    zs, zp = _pair(z_spec, z_phot)
    if zs.size == 0:
        return float("nan")
    return float(np.mean(np.abs(zp - zs) / (1.0 + zs) > threshold))


def bias(z_spec, z_phot, statistic: str = "mean") -> float:
    """Mean (or median) of ``dz / (1 + z_spec)``."""
    zs, zp = _pair(z_spec, z_phot)
    if zs.size == 0:
        return float("nan")
    r = (zp - zs) / (1.0 + zs)
    return float(np.mean(r) if statistic == "mean" else np.median(r))


def _triple(z_spec, z_phot, sigma):
    zs = np.asarray(z_spec, float).ravel()
    zp = np.asarray(z_phot, float).ravel()
    sd = np.asarray(sigma, float).ravel()
    if not zs.shape == zp.shape == sd.shape:
        raise InputError("z_spec, z_phot and sigma must have the same length")
    keep = np.isfinite(zs) & np.isfinite(zp) & np.isfinite(sd) & (sd > 0)
    return zs[keep], zp[keep], sd[keep]


def coverage(z_spec, z_phot, sigma, k: float = 1.0) -> float:
    """Fraction of galaxies with ``|z_phot - z_spec| < k * sigma``."""
    zs, zp, sd = _triple(z_spec, z_phot, sigma)
    if zs.size == 0:
        return float("nan")
    return float(np.mean(np.abs(zp - zs) < k * sd))


def pit(z_spec, z_phot, sigma) -> np.ndarray:
    """Probability integral transform values (n,) of Gaussian predictions."""
    zs, zp, sd = _triple(z_spec, z_phot, sigma)
    return 0.5 * special.erfc(-(zs - zp) / (sd * math.sqrt(2.0)))


def pit_histogram(pit_values, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histogram of PIT values: (density (bins,), edges (bins+1,)); 1 = calibrated."""
    density, edges = np.histogram(
        np.asarray(pit_values, float), bins=bins, range=(0, 1), density=True
    )
    return density, edges


def crps_gaussian(y, mean, sigma) -> np.ndarray:
    """Continuous ranked probability score of ``N(mean, sigma^2)`` at ``y`` (n,), units of y."""
    y = np.asarray(y, float)
    mean = np.asarray(mean, float)
    sigma = np.asarray(sigma, float)
    z = (y - mean) / sigma
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * special.erfc(-z / math.sqrt(2.0))
    return sigma * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - 1.0 / math.sqrt(math.pi))


def summary(z_spec, z_phot, sigma=None, bins: int = 20) -> dict:
    """All metrics as a JSON-ready dict (NaN predictions are counted and left out)."""
    zs = np.asarray(z_spec, float).ravel()
    zp = np.asarray(z_phot, float).ravel()
    out = {
        "n": int(zs.size),
        "n_unpredicted": int(np.sum(~np.isfinite(zp))),
        "sigma_nmad": sigma_nmad(zs, zp),
        "outlier_fraction": outlier_fraction(zs, zp),
        "outlier_threshold": OUTLIER_THRESHOLD,
        "bias_mean": bias(zs, zp, "mean"),
        "bias_median": bias(zs, zp, "median"),
        "rmse": float(np.sqrt(np.nanmean((zp - zs) ** 2))) if zs.size else float("nan"),
    }
    if sigma is not None:
        sd = np.asarray(sigma, float).ravel()
        values = pit(zs, zp, sd)
        density, edges = pit_histogram(values, bins)
        keep = np.isfinite(zs) & np.isfinite(zp) & np.isfinite(sd) & (sd > 0)
        out.update(
            {
                "coverage_1sigma": coverage(zs, zp, sd, 1.0),
                "coverage_2sigma": coverage(zs, zp, sd, 2.0),
                "crps_mean": float(np.mean(crps_gaussian(zs[keep], zp[keep], sd[keep])))
                if keep.any()
                else float("nan"),
                "pit_histogram": density.tolist(),
                "pit_edges": edges.tolist(),
            }
        )
    return out


def describe_summary(s: dict) -> str:
    """One line of the main metrics of :func:`summary` (computed with ``sigma``).

    Parameters
    ----------
    s : dict - from :func:`summary`, with the coverage and CRPS entries
    """
    return (
        f"{s['n']} galaxies: sigma_NMAD={s['sigma_nmad']:.4f} outliers="
        f"{s['outlier_fraction']:.4f} bias={s['bias_mean']:+.5f} coverage 1/2 sigma="
        f"{s['coverage_1sigma']:.3f}/{s['coverage_2sigma']:.3f} CRPS={s['crps_mean']:.5f}"
    )
