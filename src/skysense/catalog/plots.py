"""Plots of the catalogue area, written as PNG files (atomically).

The pure modules compute; this module draws what they computed:

- :func:`plot_radius`: the separation histogram of a radius suggestion
  (:mod:`skysense.catalog.radius`), with the chance expectation and the radii;
- :func:`plot_step_radii`: that histogram for every step of a merge plan
  (:func:`skysense.catalog.merge.plan_steps`);
- :func:`plot_offsets`: astrometric offsets to the reference before and after the correction
  (:mod:`skysense.catalog.astrometry`);
- :func:`plot_aperture_correction`: the curve of growth of stars and the correction
  (:mod:`skysense.catalog.aperture`).

Matplotlib is imported when a plot is drawn, with the non-interactive Agg backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skysense._atomic import atomic_path
from skysense.catalog.aperture import ApertureCorrection, star_curve
from skysense.catalog.merge import Prepared, StepPlan
from skysense.catalog.radius import RadiusSuggestion

__all__ = ["plot_radius", "plot_step_radii", "plot_offsets", "plot_aperture_correction"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG (100 dpi) atomically, then free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _pyplot().close(fig)


def plot_radius(
    suggestion: RadiusSuggestion,
    path: str | os.PathLike,
    *,
    title: str = "",
    used_radius_arcsec: float | None = None,
) -> None:
    """Write the separation histogram, chance expectation and radii as a PNG (atomically)."""
    plt = _pyplot()
    edges = suggestion.edges_arcsec
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.stairs(suggestion.counts, edges, label="pairs", color="k")
    mid = 0.5 * (edges[1:] + edges[:-1])
    ax.plot(mid, suggestion.chance, "--", color="tab:red", label="chance expectation")
    ax.axvline(
        suggestion.radius_arcsec,
        color="tab:blue",
        label=f'suggested {suggestion.radius_arcsec:.2f}"',
    )
    if used_radius_arcsec is not None:
        ax.axvline(
            used_radius_arcsec, color="tab:green", ls=":", label=f'used {used_radius_arcsec:.2f}"'
        )
    ax.set_xlabel("separation (arcsec)")
    ax.set_ylabel("pairs per bin")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_step_radii(
    plan: StepPlan, inputs: Sequence[Prepared], out_dir: str | os.PathLike
) -> list[Path]:
    """Write ``radius_<survey>.png`` into ``out_dir`` for every step with a suggestion.

    Parameters
    ----------
    plan : StepPlan
    inputs : sequence of Prepared
        The merge inputs, in priority order.
    out_dir : path-like
        An existing directory.

    Returns
    -------
    list of Path
        The files written.
    """
    surveys = [p.survey for p in inputs]
    written = []
    for k in range(1, len(inputs)):
        if plan.suggestions[k] is not None:
            path = Path(out_dir) / f"radius_{inputs[k].survey}.png"
            plot_radius(
                plan.suggestions[k], path,
                title=f"{inputs[k].survey} vs {', '.join(surveys[:k])}",
                used_radius_arcsec=plan.radii_arcsec[k],
            )  # fmt: skip
            written.append(path)
    return written


def plot_offsets(
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
    path: str | os.PathLike,
    *,
    title: str = "",
    radius_arcsec: float | None = None,
) -> None:
    """PNG of the offsets (dRA cos dec, dDec) in arcsec before and after correction.

    Written atomically to ``path``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharex=True, sharey=True)
    for ax, (dra, ddec), label in zip(axes, (before, after), ("before", "after"), strict=True):
        dra, ddec = np.asarray(dra), np.asarray(ddec)
        ax.scatter(dra, ddec, s=3, alpha=0.4, color="C0" if label == "before" else "C2")
        if len(dra):
            ax.plot(np.median(dra), np.median(ddec), "r+", ms=14, mew=2)
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel("reference - survey: dRA cos(dec) [arcsec]")
        med = f"median ({np.median(dra):+.3f}, {np.median(ddec):+.3f})" if len(dra) else "no pairs"
        ax.set_title(f"{label}: n={len(dra)}, {med}", fontsize=9)
        ax.set_aspect("equal")
        if radius_arcsec:
            ax.set_xlim(-radius_arcsec, radius_arcsec)
            ax.set_ylim(-radius_arcsec, radius_arcsec)
    axes[0].set_ylabel("dDec [arcsec]")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_aperture_correction(
    mag_total: np.ndarray,
    mag_aperture: np.ndarray,
    stellarity: np.ndarray,
    result: ApertureCorrection,
    path,
    *,
    stellarity_min: float = 0.9,
    title: str = "",
) -> None:
    """PNG of ``m_total - m_aperture`` against ``m_total`` for stars, with the range and value.

    Written atomically to ``path``.
    """
    plt = _pyplot()
    mag_total = np.asarray(mag_total, dtype=np.float64)
    diff = mag_total - np.asarray(mag_aperture, dtype=np.float64)
    stars = (np.asarray(stellarity, dtype=float) >= stellarity_min) & np.isfinite(diff)
    curve = star_curve(mag_total, mag_aperture, stellarity, stellarity_min=stellarity_min)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(mag_total[stars], diff[stars], s=3, alpha=0.4, color="0.4", label="stars")
    ax.plot(curve["mag"], curve["median"], "b-o", ms=3, label="binned median")
    if np.isfinite(result.value_mag):
        ax.axhline(result.value_mag, color="r", label=f"correction {result.value_mag:+.4f} mag")
        ax.axvspan(result.mag_min, result.mag_max, color="r", alpha=0.08, label="range used")
        ax.set_ylim(result.value_mag - 1.0, result.value_mag + 1.0)
    ax.set_xlabel("total magnitude (AB)")
    ax.set_ylabel("m_total - m_aperture (mag)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
