"""Pure XID+ model pieces: beams, the sparse pointing matrix and the priors.

The map model of XID+ (Hurley et al. 2017) for one band is

    d = A f + B + n,    n_i ~ Normal(0, sigma_inst,i^2 + sigma_conf^2)

with ``A`` the pointing matrix (one column per prior source: its beam sampled on the fitted
pixels, peak 1 so that ``f`` is the flux in mJy when the map is in mJy/beam), ``B`` a constant
background and ``sigma_conf`` the confusion noise added in quadrature to the instrumental noise
of every pixel. skysense's default (every band, MIPS 24 included) replaces that white term by
a correlated field of the unlisted sources' confusion (``ConfusionPrior(correlated=True)``,
:mod:`skysense.xid.confusion`), and its default flux prior is the hierarchical population
prior (:data:`DEFAULT_FLUX_KIND`). Nothing here reads files or touches Dask.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from skysense.errors import InputError

# HELP band -> beam FWHM and pixel (arcsec): one table, skysense.xid.columns (with PACS)
from skysense.xid.columns import FWHM_ARCSEC, PIXEL_ARCSEC

__all__ = [
    "GaussianBeam",
    "PRFBeam",
    "FluxPrior",
    "FLUX_KINDS",
    "DEFAULT_FLUX_KIND",
    "LOG_PRIOR_FLOOR_MJY",
    "TIED_WIDTH_BANDS",
    "TIED_WIDTH_TOLERANCE",
    "BackgroundPrior",
    "ConfusionPrior",
    "BandModel",
    "pointing_matrix",
    "default_upper_bounds",
    "duplicate_columns",
    "band_model",
    "band_options",
    "default_conf_prior",
    "FWHM_ARCSEC",
    "PIXEL_ARCSEC",
]

#: flux prior kinds -> the samplers' integer codes (>= 2: sampled in log flux)
FLUX_KINDS = {"uniform": 0, "gaussian": 1, "loguniform": 2, "lognormal": 3, "hierarchical": 4}
#: flux prior of :func:`skysense.xid.fit.fit` when none is asked for (and the prior list gives
#: no Gaussian ``flux_mu``/``flux_sigma``): the population learned from the map, because XID+'s
#: flat prior miscalibrates every source below the noise (#18). ``"uniform"`` stays selectable
#: for comparison with XID+; :func:`band_model` (the bare model builder) keeps XID+'s flat prior.
DEFAULT_FLUX_KIND = "hierarchical"
#: default lower flux bound (mJy) of the log-space priors when none is given
LOG_PRIOR_FLOOR_MJY = {"loguniform": 0.01, "lognormal": 0.01, "hierarchical": 1e-3}

#: Bands of one instrument whose hierarchical populations share their width (sd of log10 f):
#: the first band of each group is fitted first and its learned width becomes the others'
#: hyperprior (:attr:`FluxPrior.hyper_sd_dex`). Why: one prior list's fluxes in neighbouring
#: bands differ by colours that scatter far less than the fluxes, so the widths are alike
#: (:mod:`skysense.sim` lists: 0.69 / 0.69 / 0.69 dex at 250 / 350 / 500 um for i < 22,
#: 0.42 / 0.44 / 0.48 for MIPS 24 > 50 uJy), while the longer-wavelength maps, with most
#: sources below their noise, learn the width badly on their own; see
#: :mod:`skysense.xid.calibration` (#18).
TIED_WIDTH_BANDS = (("spire_250", "spire_350", "spire_500"), ("pacs_green", "pacs_red"))
#: sd of ln(width) around the first band's: the colour allowance (10 %), added in quadrature
#: to the first band's posterior sd of ln(width)
TIED_WIDTH_TOLERANCE = 0.1

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclasses.dataclass(frozen=True)
class GaussianBeam:
    """Circular Gaussian beam of peak 1.

    Parameters
    ----------
    fwhm_arcsec : float
        Full width at half maximum, arcsec.
    """

    fwhm_arcsec: float

    def __post_init__(self):
        if not (np.isfinite(self.fwhm_arcsec) and self.fwhm_arcsec > 0):
            raise InputError(f"beam FWHM must be positive, got {self.fwhm_arcsec!r} arcsec")

    def evaluate(self, dx_arcsec: np.ndarray, dy_arcsec: np.ndarray) -> np.ndarray:
        """Beam response (peak 1) at offsets ``(dx, dy)`` in arcsec from the source."""
        s = self.fwhm_arcsec * _FWHM_TO_SIGMA
        return np.exp(-0.5 * (dx_arcsec**2 + dy_arcsec**2) / s**2)

    def radius_arcsec(self, min_fraction: float) -> float:
        """Radius (arcsec) at which the beam falls to ``min_fraction`` of its peak."""
        s = self.fwhm_arcsec * _FWHM_TO_SIGMA
        return s * math.sqrt(-2.0 * math.log(min_fraction))


@dataclasses.dataclass(frozen=True)
class PRFBeam:
    """Beam given as a point-response-function image, interpolated bilinearly.

    Parameters
    ----------
    image : ndarray (ny, nx)
        The PRF, any normalisation (it is rescaled to peak 1). ``image[y, x]``.
    pixel_arcsec : float
        Sampling of the PRF image, arcsec per PRF pixel.
    centre : tuple of float, optional
        ``(x, y)`` 0-based PRF pixel of the source position; default the image centre.
    """

    image: np.ndarray
    pixel_arcsec: float
    centre: tuple[float, float] | None = None

    def __post_init__(self):
        img = np.asarray(self.image, dtype=float)
        if img.ndim != 2 or min(img.shape) < 3:
            raise InputError(f"PRF image must be 2-D and at least 3x3, got shape {img.shape}")
        if not np.all(np.isfinite(img)) or img.max() <= 0:
            raise InputError("PRF image must be finite with a positive peak")
        if not (self.pixel_arcsec > 0):
            raise InputError(f"PRF pixel size must be positive, got {self.pixel_arcsec!r}")
        object.__setattr__(self, "image", img / img.max())
        if self.centre is None:
            object.__setattr__(self, "centre", ((img.shape[1] - 1) / 2.0, (img.shape[0] - 1) / 2.0))

    def evaluate(self, dx_arcsec: np.ndarray, dy_arcsec: np.ndarray) -> np.ndarray:
        """PRF response (peak 1) at offsets in arcsec; 0 outside the PRF image."""
        from scipy.ndimage import map_coordinates

        x = self.centre[0] + np.asarray(dx_arcsec) / self.pixel_arcsec
        y = self.centre[1] + np.asarray(dy_arcsec) / self.pixel_arcsec
        coords = np.vstack([y.ravel(), x.ravel()])
        out = map_coordinates(self.image, coords, order=1, mode="constant", cval=0.0)
        return out.reshape(np.shape(x))

    def radius_arcsec(self, min_fraction: float) -> float:
        """Largest offset (arcsec) inside the PRF image: beyond it the response is 0."""
        ny, nx = self.image.shape
        cx, cy = self.centre
        half = max(cx, nx - 1 - cx, cy, ny - 1 - cy)
        return half * self.pixel_arcsec


Beam = GaussianBeam | PRFBeam


def pointing_matrix(
    src_x_pix: np.ndarray,
    src_y_pix: np.ndarray,
    pixel_x: np.ndarray,
    pixel_y: np.ndarray,
    beam: Beam,
    pixel_arcsec: float,
    *,
    min_fraction: float = 1e-3,
    max_chunk: int = 20_000_000,
) -> sp.csr_matrix:
    """Sparse pointing matrix: each source's beam sampled on the fitted pixels.

    Built without a loop over sources x pixels: for every source the square window of map
    pixels that can hold more than ``min_fraction`` of the beam is generated at once (all
    sources broadcast together), looked up in an index image of the fitted pixels, and the
    beam evaluated at the exact (sub-pixel) offset of each pixel centre from the source.

    Parameters
    ----------
    src_x_pix, src_y_pix : ndarray (nsrc,), map pixels (0-based, float)
        Source positions on the map grid.
    pixel_x, pixel_y : ndarray (npix,), int
        The fitted pixels (0-based column, row); their order is the data-vector order.
    beam : GaussianBeam or PRFBeam
        Beam of peak 1.
    pixel_arcsec : float
        Map pixel size, arcsec.
    min_fraction : float
        Entries below ``min_fraction`` times the beam peak are dropped.

    Returns
    -------
    scipy.sparse.csr_matrix (npix, nsrc)
        Values are the beam response (dimensionless, peak 1).
    """
    sx = np.asarray(src_x_pix, dtype=float)
    sy = np.asarray(src_y_pix, dtype=float)
    px = np.asarray(pixel_x, dtype=np.int64)
    py = np.asarray(pixel_y, dtype=np.int64)
    nsrc, npix = sx.size, px.size
    if npix == 0 or nsrc == 0:
        return sp.csr_matrix((npix, nsrc))
    if not 0 < min_fraction < 1:
        raise InputError(f"min_fraction must be in (0, 1), got {min_fraction}")
    x0, y0 = px.min(), py.min()
    lookup = np.full((py.max() - y0 + 1, px.max() - x0 + 1), -1, dtype=np.int64)
    lookup[py - y0, px - x0] = np.arange(npix)

    r_pix = int(math.ceil(beam.radius_arcsec(min_fraction) / pixel_arcsec)) + 1
    off = np.arange(-r_pix, r_pix + 1)
    ox, oy = (a.ravel() for a in np.meshgrid(off, off))
    per_src = ox.size
    rows, cols, vals = [], [], []
    step = max(1, max_chunk // per_src)
    for start in range(0, nsrc, step):  # chunks bound memory only; each chunk is vectorised
        idx = np.arange(start, min(nsrc, start + step))
        cx = np.rint(sx[idx]).astype(np.int64)[:, None] + ox[None, :]
        cy = np.rint(sy[idx]).astype(np.int64)[:, None] + oy[None, :]
        inside = (cx >= x0) & (cx < x0 + lookup.shape[1]) & (cy >= y0) & (cy < y0 + lookup.shape[0])
        k = np.full(cx.shape, -1, dtype=np.int64)
        k[inside] = lookup[cy[inside] - y0, cx[inside] - x0]
        ok = k >= 0
        dx = (cx - sx[idx, None])[ok] * pixel_arcsec
        dy = (cy - sy[idx, None])[ok] * pixel_arcsec
        v = beam.evaluate(dx, dy)
        keep = v >= min_fraction
        rows.append(k[ok][keep])
        cols.append(np.broadcast_to(idx[:, None], ok.shape)[ok][keep])
        vals.append(v[keep])
    a = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(npix, nsrc)
    )
    return a.tocsr()


@dataclasses.dataclass
class FluxPrior:
    """Per-source flux prior of one band (mJy).

    ``kind`` is ``"uniform"`` (flat between ``lower`` and ``upper``, as XID+),
    ``"loguniform"`` (density proportional to 1/f between positive bounds), ``"gaussian"``
    (Normal(``mu``, ``sigma``) truncated to ``[lower, upper]``) or ``"lognormal"`` (log10 f
    Normal about log10 ``mu`` with ``sigma`` dex, truncated to positive bounds: a population
    prior, e.g. from number counts, for prior lists that reach far below the noise) or
    ``"hierarchical"`` (a population prior whose parameters are unknown and learned from
    the map being fitted: log10 f skew-normal of location ~ Normal(``hyper_log10_median``,
    ``hyper_median_sd_dex``), scale ~ HalfNormal(``hyper_sigma_scale_dex``) and shape ~
    Normal(``hyper_skew_mean``, ``hyper_skew_sd``); the fluxes are drawn from it, restricted
    to the bounds).

    Parameters
    ----------
    lower, upper : ndarray (nsrc,), mJy
    kind : str
    mu, sigma : ndarray (nsrc,), only for ``"gaussian"`` (mJy, mJy) and ``"lognormal"``
        (median in mJy, scatter in dex)
    hyper_log10_median, hyper_median_sd_dex, hyper_sigma_scale_dex : float
        Weak hyperpriors of ``"hierarchical"`` (log10 mJy, dex, dex): by default the
        location lies within 10^(1 +- 1.5) mJy at 1 sd, the scale is of order 1 dex.
    hyper_skew_sd, hyper_skew_mean : float
        ``"hierarchical"``: the shape alpha ~ Normal(``hyper_skew_mean``, ``hyper_skew_sd``);
        ``hyper_skew_sd`` = 0 fixes alpha at 0, a log-normal population. Default Normal(2, 1):
        a positively skewed population, skewness 0.45 (0.2-0.7 at 1 sd) in log flux. Why:
        source counts are a power law at the bright end and the prior list's selection
        (another band's flux limit) cuts the faint end, so the log fluxes of a prior list are
        skewed (+0.4 to +1.2 in :mod:`skysense.sim` for SPIRE, PACS and MIPS, both of the
        prior cuts of :mod:`skysense.xid.calibration`). A log-normal population fitted to the
        part above the noise extrapolates a too long faint tail (0.1-0.2 dex too wide: the
        sources below the noise over-cover), and the map alone hardly constrains the skew
        (alpha ~ Normal(0, 3) learned it as 1 +- 2), so the sign and size of the skew come
        from the hyperprior (#18; the choice, made on simulated fields of seeds 100-105, not
        the scored 0-5, is recorded in :mod:`skysense.xid.calibration`).
    """

    lower: np.ndarray
    upper: np.ndarray
    kind: str = "uniform"
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    hyper_log10_median: float = 1.0
    hyper_median_sd_dex: float = 1.5
    hyper_sigma_scale_dex: float = 1.0
    hyper_skew_sd: float = 1.0
    hyper_skew_mean: float = 2.0
    #: ``"hierarchical"`` only: the population's width tied to another band's. The log of its
    #: sd of log10 f (dex) ~ Normal(ln ``hyper_sd_dex``, ``hyper_sd_tolerance``) replaces the
    #: HalfNormal scale hyperprior; None: the width is free. :func:`skysense.xid.fit.fit`
    #: sets it for the longer-wavelength bands of an instrument (:data:`TIED_WIDTH_BANDS`).
    hyper_sd_dex: float | None = None
    hyper_sd_tolerance: float = 0.1
    #: ``"lognormal"`` only: shape alpha (nsrc,) of a skew-normal log10 f of location log10
    #: ``mu`` and scale ``sigma`` dex (a population fixed from the hierarchical pilot pass of
    #: :mod:`skysense.xid.engine`); None: 0, the log-normal
    skew: np.ndarray | None = None

    def validate(self, nsrc: int, band: str = "") -> None:
        """Check shapes and bounds; raise :class:`InputError` naming the first bad source."""
        where = f" ({band})" if band else ""
        if self.kind not in FLUX_KINDS:
            raise InputError(f"unknown flux prior kind {self.kind!r}{where}")
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lo.shape != (nsrc,) or hi.shape != (nsrc,):
            raise InputError(f"flux bounds{where} must have shape ({nsrc},)")
        bad = np.flatnonzero(~(lo < hi))
        if bad.size:
            i = bad[0]
            raise InputError(
                f"flux bounds{where}: lower ({lo[i]}) must be below upper ({hi[i]}) "
                f"for {bad.size} source(s), first at prior row {i}",
                row=int(i),
            )
        if self.kind in ("loguniform", "lognormal", "hierarchical") and np.any(lo <= 0):
            i = int(np.flatnonzero(lo <= 0)[0])
            name = {"loguniform": "log-uniform", "lognormal": "log-normal"}.get(
                self.kind, "hierarchical"
            )
            raise InputError(f"{name} flux prior{where} needs lower > 0", row=i)
        if self.kind in ("gaussian", "lognormal"):
            name = "Gaussian" if self.kind == "gaussian" else "log-normal"
            if self.mu is None or self.sigma is None:
                raise InputError(
                    f"{name} flux prior{where} needs flux_mu and flux_sigma "
                    f"(columns flux_mu_<band>, flux_sigma_<band>)"
                )
            mu = np.asarray(self.mu, float)
            sig = np.asarray(self.sigma, float)
            if mu.shape != (nsrc,) or sig.shape != (nsrc,):
                raise InputError(f"{name} flux prior{where} needs mu and sigma of shape ({nsrc},)")
            bad = np.flatnonzero(~(sig > 0) | ~np.isfinite(mu))
            if bad.size:
                raise InputError(f"{name} flux prior{where}: sigma must be > 0", row=int(bad[0]))
            if self.kind == "lognormal" and np.any(mu <= 0):
                i = int(np.flatnonzero(mu <= 0)[0])
                raise InputError(f"log-normal flux prior{where}: median mu must be > 0", row=i)
            if self.kind == "lognormal" and self.skew is not None:
                sk = np.asarray(self.skew, float)
                if sk.shape != (nsrc,) or not np.all(np.isfinite(sk)):
                    raise InputError(
                        f"log-normal flux prior{where}: skew must be finite, ({nsrc},)"
                    )
        if self.kind == "hierarchical" and not (
            np.isfinite(self.hyper_log10_median)
            and self.hyper_median_sd_dex > 0
            and self.hyper_sigma_scale_dex > 0
            and self.hyper_skew_sd >= 0
            and np.isfinite(self.hyper_skew_mean)
        ):
            raise InputError(f"hierarchical flux prior{where}: hyperprior scales must be > 0")
        if self.kind == "hierarchical" and self.hyper_sd_dex is not None:
            if not (self.hyper_sd_dex > 0 and np.isfinite(self.hyper_sd_dex)):
                raise InputError(f"hierarchical flux prior{where}: hyper_sd_dex must be > 0")
            if not (self.hyper_sd_tolerance > 0 and np.isfinite(self.hyper_sd_tolerance)):
                raise InputError(f"hierarchical flux prior{where}: hyper_sd_tolerance must be > 0")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InputError(f"flux bounds{where} must be finite")

    def kind_code(self) -> int:
        return FLUX_KINDS[self.kind]


@dataclasses.dataclass(frozen=True)
class BackgroundPrior:
    """Background B ~ Normal(mu, sigma), mJy/beam."""

    mu: float = 0.0
    sigma: float = 5.0


@dataclasses.dataclass(frozen=True)
class ConfusionPrior:
    """Prior of the confusion noise sigma_conf (mJy/beam).

    ``kind``: ``"halfcauchy"`` (default, scale 0.5 as specified for SPIRE), ``"halfnormal"``
    (the ``normal(0, 5)`` on a positive parameter of XID+'s Stan SPIRE model), or ``"none"``
    (sigma_conf fixed to ``fixed`` - 0 for MIPS).

    ``correlated``: False (XID+: sigma_conf is white, added in quadrature to the instrumental
    noise of each pixel) or True: sigma_conf is the per-pixel sd of a Gaussian random field
    with the beam's autocorrelation (:mod:`skysense.xid.confusion`), the confusion of the
    sources not in the prior list; the same prior on its amplitude.
    """

    kind: str = "halfcauchy"
    scale: float = 0.5
    fixed: float = 0.0
    correlated: bool = False

    def __post_init__(self):
        if self.kind not in ("halfcauchy", "halfnormal", "none"):
            raise InputError(f"unknown sigma_conf prior {self.kind!r}")
        if self.kind != "none" and not self.scale > 0:
            raise InputError(f"sigma_conf prior scale must be > 0, got {self.scale}")

    def kind_code(self) -> int:
        return {"none": 0, "halfcauchy": 1, "halfnormal": 2}[self.kind]


def default_conf_prior(band: str, *, correlated: bool = True) -> ConfusionPrior:
    """HalfCauchy(0.5) confusion for every band, MIPS 24 included.

    ``correlated`` (default True): the confusion of unlisted sources as the correlated field
    of :mod:`skysense.xid.confusion`, which calibrates the intervals when faint sources are
    left out of the prior list (#18); False: XID+'s white sigma_conf.

    MIPS 24 um had no confusion term (XID+'s MIPS model), but a prior list cut in another
    band (the pipeline's IRAC 3.6 um > 45 uJy) leaves out thousands of faint 24 um sources
    per 0.01 deg^2 whose confusion (~0.02 mJy/beam) equals the instrumental noise: on
    :mod:`skysense.sim` fields the 68 % intervals then covered 19 % (none) or 30 % (white
    sigma_conf), the correlated field 94 % (95 %: 42 / 66 / 97 %); see
    :mod:`skysense.xid.calibration`.
    """
    return ConfusionPrior("halfcauchy", 0.5, correlated=correlated)


@dataclasses.dataclass
class BandModel:
    """Everything the samplers need for one band (pure arrays).

    Attributes
    ----------
    band : str
    amat : scipy.sparse.csr_matrix (npix, nsrc), beam response
    data_mjy : ndarray (npix,), mJy/beam
    sigma_mjy : ndarray (npix,), instrumental noise, mJy/beam
    flux_prior : FluxPrior
    bkg_prior : BackgroundPrior
    conf_prior : ConfusionPrior
    pixel_x, pixel_y : ndarray (npix,), int, map pixel of each data value (for output maps)
    beam_stamp : ndarray (2r+1, 2r+1) or None, the beam on the map pixel grid (peak 1): the
        correlated confusion term (``conf_prior.correlated``) needs it and the pixels
    """

    band: str
    amat: sp.csr_matrix
    data_mjy: np.ndarray
    sigma_mjy: np.ndarray
    flux_prior: FluxPrior
    bkg_prior: BackgroundPrior
    conf_prior: ConfusionPrior
    pixel_x: np.ndarray | None = None
    pixel_y: np.ndarray | None = None
    beam_stamp: np.ndarray | None = None

    @property
    def nsrc(self) -> int:
        return self.amat.shape[1]

    @property
    def npix(self) -> int:
        return self.amat.shape[0]


def default_upper_bounds(
    amat: sp.spmatrix, data_mjy: np.ndarray, bkg_prior: BackgroundPrior
) -> np.ndarray:
    """XID+'s default flux upper bound: the brightest pixel a source touches + |mu_B| + 2 sigma_B.

    Parameters
    ----------
    amat : sparse (npix, nsrc)
    data_mjy : ndarray (npix,), mJy/beam

    Returns
    -------
    ndarray (nsrc,), mJy. Sources touching no pixel get 1000 mJy (they are reported as
    unfittable elsewhere).
    """
    coo = sp.coo_matrix(amat)
    upper = np.full(amat.shape[1], -np.inf)
    np.maximum.at(upper, coo.col, np.asarray(data_mjy)[coo.row])
    empty = ~np.isfinite(upper)
    upper[empty] = 1000.0
    upper[~empty] += abs(bkg_prior.mu) + 2.0 * bkg_prior.sigma
    # a source on a negative patch still needs room above its lower bound
    return np.maximum(upper, abs(bkg_prior.mu) + 2.0 * bkg_prior.sigma)


def duplicate_columns(amat: sp.spmatrix, rtol: float = 1e-9) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of sources whose beam columns are identical.

    Such sources are not separately identifiable (only their sum is constrained).
    """
    csc = sp.csc_matrix(amat)
    csc.sort_indices()
    n = csc.shape[1]
    keys: dict[tuple, int] = {}
    pairs = []
    for j in range(n):  # one hash per column: O(nnz), not a pixel x source loop
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        if hi == lo:
            continue
        scale = 10 ** round(-math.log10(rtol))
        key = (tuple(csc.indices[lo:hi]), tuple(np.round(csc.data[lo:hi] * scale).astype(np.int64)))
        if key in keys:
            pairs.append((keys[key], j))
        else:
            keys[key] = j
    return pairs


def band_model(
    band: str,
    amat: sp.spmatrix,
    data_mjy: np.ndarray,
    sigma_mjy: np.ndarray,
    *,
    flux_lower: np.ndarray | None = None,
    flux_upper: np.ndarray | None = None,
    flux_kind: str = "uniform",
    flux_mu: np.ndarray | None = None,
    flux_sigma: np.ndarray | None = None,
    flux_skew: np.ndarray | None = None,
    bkg_prior: BackgroundPrior | None = None,
    conf_prior: ConfusionPrior | None = None,
    pixel_x: np.ndarray | None = None,
    pixel_y: np.ndarray | None = None,
    beam_stamp: np.ndarray | None = None,
) -> BandModel:
    """Assemble and validate a :class:`BandModel`, filling XID+'s default flux bounds.

    Missing lower bounds default to 0 mJy (0.01 mJy for log-uniform, 6 sigma below the
    median for log-normal, 0.001 mJy for hierarchical); missing (NaN) upper bounds to :func:`default_upper_bounds`.

    Raises
    ------
    InputError
        Non-finite data or noise, non-positive noise, bad bounds, wrong shapes.
    """
    amat = sp.csr_matrix(amat)
    d = np.asarray(data_mjy, dtype=float)
    s = np.asarray(sigma_mjy, dtype=float)
    npix, nsrc = amat.shape
    if d.shape != (npix,) or s.shape != (npix,):
        raise InputError(f"{band}: data and noise must have shape ({npix},)")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise InputError(f"{band}: data and noise must be finite with noise > 0 (mask bad pixels)")
    bkg_prior = bkg_prior or BackgroundPrior()
    conf_prior = conf_prior or ConfusionPrior()
    if not bkg_prior.sigma > 0:
        raise InputError(f"{band}: background prior sigma must be > 0")
    lo = np.full(nsrc, np.nan) if flux_lower is None else np.array(flux_lower, dtype=float)
    lo_default = np.zeros(nsrc)
    if flux_kind == "lognormal" and flux_mu is not None and flux_sigma is not None:
        # 6 sigma below the median: the truncation removes ~1e-9 of the prior mass
        lo_default = np.asarray(flux_mu, float) * 10.0 ** (-6.0 * np.asarray(flux_sigma, float))
    elif flux_kind in LOG_PRIOR_FLOOR_MJY:
        lo_default = np.full(nsrc, LOG_PRIOR_FLOOR_MJY[flux_kind])
    up_default = default_upper_bounds(amat, d, bkg_prior)
    hi = up_default if flux_upper is None else np.array(flux_upper, dtype=float)
    hi = np.where(np.isnan(hi), up_default, hi)
    lo = np.where(np.isnan(lo), lo_default, lo)
    prior = FluxPrior(lo, hi, flux_kind, flux_mu, flux_sigma)
    if flux_kind == "lognormal" and flux_skew is not None:  # skew-normal in log10 f
        prior.skew = np.asarray(flux_skew, float)
    prior.validate(nsrc, band)
    if conf_prior.correlated and (beam_stamp is None or pixel_x is None or pixel_y is None):
        raise InputError(
            f"{band}: the correlated confusion term needs the beam stamp and the pixels' "
            "positions (pixel_x, pixel_y)"
        )
    return BandModel(band, amat, d, s, prior, bkg_prior, conf_prior, pixel_x, pixel_y, beam_stamp)


def band_options(
    bands: Sequence[str],
    *,
    fwhm_arcsec: Sequence[float] | None = None,
    beams: Sequence[GaussianBeam | PRFBeam] | None = None,
    bkg_prior: tuple[float, float] | None = None,
    conf_prior: str | None = None,
    conf_scale: float = 0.5,
    conf_white: bool = False,
) -> dict:
    """Per-band beams and priors, keyed as :func:`skysense.xid.fit.fit` takes them.

    Parameters
    ----------
    bands : sequence of str - the maps' bands, in order
    fwhm_arcsec : sequence of float, arcsec, optional - one Gaussian beam FWHM per band
    beams : sequence of beams, optional - one beam per band (e.g. PRFs from
        :func:`skysense.xid.io.read_prf`); not together with ``fwhm_arcsec``
    bkg_prior : (mu, sigma), mJy/beam, optional - Normal background prior of every band
    conf_prior : ``"halfcauchy"``, ``"halfnormal"`` or ``"none"``, optional - sigma_conf prior
        of every band (default: :func:`skysense.xid.fit.default_conf_prior` per band)
    conf_scale : float, mJy/beam - scale of ``conf_prior``
    conf_white : bool - XID+'s white sigma_conf instead of the correlated confusion field
        (the default of every band with a confusion prior)

    Returns
    -------
    dict - ``beams``, ``bkg_priors``, ``conf_priors`` (each band -> object), only those given

    Raises
    ------
    InputError
        One value per band not given, both beams and FWHMs, invalid priors.
    """
    bands = list(bands)
    for what, values in (("FWHM", fwhm_arcsec), ("beam", beams)):
        if values is not None and len(values) != len(bands):
            raise InputError(
                f"give one {what} per band (or none): {len(bands)} bands, {len(values)} given"
            )
    if fwhm_arcsec is not None and beams is not None:
        raise InputError("give either beams or FWHMs, not both")
    out = {}
    if fwhm_arcsec is not None:
        out["beams"] = {b: GaussianBeam(float(f)) for b, f in zip(bands, fwhm_arcsec)}
    if beams is not None:
        out["beams"] = dict(zip(bands, beams))
    if bkg_prior is not None:
        mu, sigma = bkg_prior
        out["bkg_priors"] = {b: BackgroundPrior(float(mu), float(sigma)) for b in bands}
    corr = not conf_white
    if conf_prior is not None:
        out["conf_priors"] = {
            b: ConfusionPrior(conf_prior, conf_scale, correlated=corr and conf_prior != "none")
            for b in bands
        }
    elif conf_white:
        out["conf_priors"] = {b: default_conf_prior(b, correlated=False) for b in bands}
    return out
