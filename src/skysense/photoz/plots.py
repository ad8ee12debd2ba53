"""Diagnostic figures: z_spec versus z_phot, and the PIT histogram (PNG, written atomically).

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot global state), so they are
safe to draw from worker threads.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from skysense._atomic import atomic_path
from skysense.photoz.metrics import OUTLIER_THRESHOLD, pit, pit_histogram

__all__ = ["plot_zspec_zphot", "plot_pit"]


def plot_zspec_zphot(z_spec, z_phot, path: str | os.PathLike, *, title: str = "") -> Path:
    """Scatter (or density, for many points) of z_phot against z_spec with the outlier bounds.

    Parameters
    ----------
    z_spec, z_phot : ndarray (n,)
    path : path of the PNG to write.
    """
    from matplotlib.figure import Figure

    zs = np.asarray(z_spec, float)
    zp = np.asarray(z_phot, float)
    keep = np.isfinite(zs) & np.isfinite(zp)
    zs, zp = zs[keep], zp[keep]
    fig = Figure(figsize=(5.5, 5), dpi=120)
    ax = fig.add_subplot()
    hi = float(max(zs.max(initial=0.1), zp.max(initial=0.1))) * 1.05
    if zs.size > 5000:
        hb = ax.hexbin(zs, zp, gridsize=120, bins="log", extent=(0, hi, 0, hi), mincnt=1)
        fig.colorbar(hb, ax=ax, label="galaxies")
    else:
        ax.scatter(zs, zp, s=3, alpha=0.5, lw=0)
    grid = np.linspace(0, hi, 50)
    ax.plot(grid, grid, "k-", lw=0.8)
    for sign in (1, -1):
        ax.plot(grid, grid + sign * OUTLIER_THRESHOLD * (1 + grid), "r--", lw=0.7)
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("z_spec")
    ax.set_ylabel("z_phot")
    ax.set_title(title or f"{zs.size} galaxies")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def plot_pit(z_spec, z_phot, sigma, path: str | os.PathLike, *, bins: int = 20) -> Path:
    """Histogram of the probability integral transform; flat at 1 when calibrated."""
    from matplotlib.figure import Figure

    values = pit(z_spec, z_phot, sigma)
    density, edges = pit_histogram(values, bins)
    fig = Figure(figsize=(5.5, 4), dpi=120)
    ax = fig.add_subplot()
    ax.stairs(density, edges, fill=True, alpha=0.6)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("PIT")
    ax.set_ylabel("density")
    ax.set_title(f"PIT of {values.size} galaxies")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
