"""The diagnostic plot of a radio cross-identification (PNG, written atomically).

Three panels: q(m) and n(m) against magnitude (summed over colour cells), the distribution of
the best candidates' LR with the threshold, and the expected completeness and reliability
against the LR threshold.
"""

from __future__ import annotations

import os

import numpy as np

from skysense._atomic import atomic_path
from skysense.catalog.radio.identify import RadioIDResult
from skysense.catalog.radio.lr import completeness_reliability

__all__ = ["plot_radio_id"]


def plot_radio_id(result: RadioIDResult, path: str | os.PathLike, *, title: str = "") -> None:
    """Write the q(m)/n(m), LR and completeness/reliability panels as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = result.model
    k = len(m.mag_edges) - 1
    q = m.q.reshape(-1, k).sum(axis=0)
    n = m.n.reshape(-1, k).sum(axis=0)
    width = np.diff(m.mag_edges)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    ax.stairs(q / width, m.mag_edges, label="q(m) per mag", color="C0")
    ax2 = ax.twinx()
    ax2.stairs(n / width * 3600.0**2, m.mag_edges, label="n(m) per deg^2 per mag", color="C1")
    ax.set_xlabel("magnitude")
    ax.set_ylabel("q(m) per mag", color="C0")
    ax2.set_ylabel("n(m) per deg$^2$ per mag", color="C1")
    ax2.set_yscale("log")
    ax.set_title(f"Q0 = {m.q0.q0:.3f}")

    c = result.candidates
    best = c[c["best"] & (c["lr"] > 0)]
    lr = best["lr"].to_numpy(float)
    thr = result.threshold
    ax = axes[1]
    if len(lr):
        bins = np.logspace(np.log10(lr.min()) - 0.1, np.log10(lr.max()) + 0.1, 40)
        ax.hist(lr, bins=bins, color="0.4")
        ax.set_xscale("log")
        grid = bins
        comp, rel = completeness_reliability(
            lr, best["reliability"].to_numpy(float), m.q0.q0, result.n_radio, grid
        )
        axes[2].plot(grid, comp, label="completeness")
        axes[2].plot(grid, rel, label="reliability")
        axes[2].set_xscale("log")
    for a in axes[1:]:
        if np.isfinite(thr.lr):
            a.axvline(thr.lr, color="r", ls="--", label=f"threshold {thr.lr:.3g}")
        a.set_xlabel("LR")
    axes[1].set_ylabel("radio sources (best candidate)")
    axes[2].set_ylabel("fraction")
    axes[2].set_ylim(0, 1.02)
    axes[2].legend(loc="lower left")
    axes[2].set_title(f"{thr.n_ids} IDs, {thr.expected_false:.1f} expected false")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
