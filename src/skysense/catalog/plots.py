"""Plots of the catalogue area, written as PNG files (atomically).

The pure modules compute; this module draws what they computed:

- :func:`plot_radius`: the separation histogram of a radius suggestion
  (:mod:`skysense.catalog.radius`), with the chance expectation and the radii;
- :func:`plot_step_radii`: that histogram for every step of a merge plan
  (:func:`skysense.catalog.merge.plan_steps`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from skysense.catalog.merge import Prepared, StepPlan
from skysense.catalog.radius import RadiusSuggestion

__all__ = ["plot_radius", "plot_step_radii"]


def plot_radius(
    suggestion: RadiusSuggestion,
    path: str | os.PathLike,
    *,
    title: str = "",
    used_radius_arcsec: float | None = None,
) -> None:
    """Write the separation histogram, chance expectation and radii as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skysense._atomic import atomic_path

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


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
