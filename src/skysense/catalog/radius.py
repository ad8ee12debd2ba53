"""Match-radius suggestion from the separation histogram, and its plot.

All pairs within a generous search radius are histogrammed by separation. For an unrelated
(random) background, chance pairs per bin grow linearly with separation (the annulus area
2 pi r dr), so the outer part of the histogram fixes the slope of the chance expectation. True
counterparts add a bump at small separations. The suggested radius is the outer edge of the
last bin, counting outwards from the peak, whose count still exceeds the chance expectation
significantly (by more than ``nsigma`` Poisson standard deviations).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skysense.catalog.match import pairs_within
from skysense.errors import InputError

__all__ = [
    "N_BINS",
    "RadiusSuggestion",
    "separation_edges",
    "suggest_radius",
    "suggest_radius_from_counts",
    "suggest_radius_from_separations",
]

#: Bins of the separation histogram.
N_BINS = 50


@dataclasses.dataclass(frozen=True)
class RadiusSuggestion:
    """The suggested radius and the histogram behind it.

    Attributes
    ----------
    radius_arcsec : float
        Suggested match radius, arcsec.
    edges_arcsec : ndarray (b + 1,)
        Histogram bin edges, arcsec.
    counts : ndarray (b,), int64
        Pairs per bin.
    chance : ndarray (b,), float
        Expected chance pairs per bin (linear in separation).
    n_true : float
        Estimated number of true pairs within the suggested radius (counts minus chance).
    """

    radius_arcsec: float
    edges_arcsec: np.ndarray
    counts: np.ndarray
    chance: np.ndarray
    n_true: float

    def describe(self) -> str:
        """One line, e.g. ``suggested radius: 1.2 arcsec (about 840 true pairs)``."""
        return f"suggested radius: {self.radius_arcsec:.3g} arcsec (about {self.n_true:.0f} true pairs)"

    def as_dict(self) -> dict:
        return {
            "radius_arcsec": self.radius_arcsec,
            "n_true": self.n_true,
            "edges_arcsec": self.edges_arcsec.tolist(),
            "counts": self.counts.tolist(),
            "chance": self.chance.tolist(),
        }


def suggest_radius_from_separations(
    sep_arcsec: np.ndarray,
    max_radius_arcsec: float,
    *,
    n_bins: int = N_BINS,
    **options,
) -> RadiusSuggestion:
    """Suggest a radius from the separations of all pairs within ``max_radius_arcsec``.

    Parameters
    ----------
    sep_arcsec : ndarray (p,), arcsec
        Separations of every candidate pair (not only nearest neighbours).
    max_radius_arcsec : float
        The search radius that produced them; the histogram spans [0, max_radius_arcsec].
    n_bins : int
        Number of histogram bins.
    **options
        ``background_from`` and ``nsigma``, passed to :func:`suggest_radius_from_counts`
        with the histogram.

    Returns
    -------
    RadiusSuggestion

    Raises
    ------
    InputError
        No pairs, or no significant excess of close pairs (nothing to match).
    """
    sep = np.asarray(sep_arcsec, dtype=np.float64)
    if len(sep) == 0:
        raise InputError("no pairs within the search radius; cannot suggest a radius")
    counts, _ = np.histogram(sep, bins=separation_edges(max_radius_arcsec, n_bins))
    return suggest_radius_from_counts(counts, max_radius_arcsec, **options)


def separation_edges(max_radius_arcsec: float, n_bins: int = N_BINS) -> np.ndarray:
    """Bin edges (arcsec, ``n_bins + 1``) of the separation histogram over [0, max]."""
    return np.linspace(0.0, max_radius_arcsec, n_bins + 1)


def suggest_radius_from_counts(
    counts: np.ndarray,
    max_radius_arcsec: float,
    *,
    background_from: float = 0.6,
    nsigma: float = 3.0,
) -> RadiusSuggestion:
    """Suggest a radius from a separation histogram already counted.

    Parameters
    ----------
    counts : ndarray (b,), int
        Pairs per bin of :func:`separation_edges` ``(max_radius_arcsec, b)``; histograms of
        pieces of the catalogues (declination bands, sky partitions) add up to this.
    max_radius_arcsec : float
        The search radius of the pairs; the histogram spans [0, max_radius_arcsec].
    background_from : float
        Fraction of ``max_radius_arcsec`` beyond which pairs are taken to be chance pairs
        (to fit the slope of the chance expectation).
    nsigma : float
        Significance of an excess over chance.

    Raises
    ------
    InputError
        No pairs, or no significant excess of close pairs (nothing to match).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() == 0:
        raise InputError("no pairs within the search radius; cannot suggest a radius")
    edges = separation_edges(max_radius_arcsec, len(counts))
    mid = 0.5 * (edges[1:] + edges[:-1])
    outer = mid >= background_from * max_radius_arcsec
    # Chance pairs per bin = a * r (least squares through the origin, Poisson weights ~ 1/r).
    slope = counts[outer].sum() / mid[outer].sum()
    chance = slope * mid
    noise = np.sqrt(np.maximum(chance, 1.0))
    excess = counts - slope * mid
    peak = int(np.argmax(excess))
    if not excess[peak] > nsigma * noise[peak]:
        raise InputError(
            "no significant excess of close pairs over chance coincidences; the catalogues "
            "may not overlap or the search radius is too small"
        )
    from scipy.optimize import curve_fit

    width = edges[1] - edges[0]

    def model(r, n_true, sigma, a):
        return n_true * width * r / sigma**2 * np.exp(-(r**2) / (2 * sigma**2)) + a * r

    sigma0 = max(mid[peak], width)
    n0 = max(float(excess[excess > 0].sum()), 1.0)
    try:
        (n_fit, sigma_fit, a_fit), _ = curve_fit(
            model, mid, counts, p0=(n0, sigma0, slope), sigma=np.sqrt(np.maximum(counts, 1.0)),
            bounds=([0.0, width / 10, 0.0], [np.inf, max_radius_arcsec, np.inf]), maxfev=10000,
        )  # fmt: skip
    except RuntimeError as exc:  # pragma: no cover - degenerate histograms
        raise InputError(f"cannot fit the separation histogram: {exc}") from exc
    chance = a_fit * mid
    # Where N f(r) = a r (per unit separation); f is the Rayleigh density.
    ratio = n_fit / max(a_fit * sigma_fit**2, 1e-300)
    crossing = sigma_fit * np.sqrt(2 * np.log(ratio)) if ratio > 1 else sigma_fit
    if ratio > 1e6:
        # Chance pairs are rare: keep at least 99.9 per cent of the true pairs.
        crossing = max(crossing, sigma_fit * np.sqrt(2 * np.log(1000.0)))
    radius = float(np.round(min(crossing, max_radius_arcsec), 3))
    inside = mid < radius
    n_true = float((counts[inside] - chance[inside]).sum())
    return RadiusSuggestion(radius, edges, counts.astype(np.int64), chance, n_true)


def suggest_radius(
    ra1: np.ndarray,
    dec1: np.ndarray,
    ra2: np.ndarray,
    dec2: np.ndarray,
    max_radius_arcsec: float = 5.0,
    **kwargs,
) -> RadiusSuggestion:
    """Suggest a match radius between two catalogues (positions in deg).

    ``kwargs`` go to :func:`suggest_radius_from_separations`.
    """
    pairs = pairs_within(ra1, dec1, ra2, dec2, max_radius_arcsec)
    return suggest_radius_from_separations(pairs.sep_arcsec, max_radius_arcsec, **kwargs)
