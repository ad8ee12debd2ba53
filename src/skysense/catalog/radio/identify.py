"""Radio cross-identification from candidate pairs to IDs (pure; see :mod:`.lr`).

:func:`cross_identify` takes the pairs the engine found (every optical object within the
background's outer radius of a radio source or of a random position) and returns every
candidate with its LR and reliability, the fitted model and the threshold. Nothing here
reads files or knows about Dask: the same arrays give the same answer wherever the search ran.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd

from skysense.catalog.radio import lr as _lr
from skysense.errors import InputError

__all__ = [
    "RadioIDSettings",
    "LRModel",
    "RadioIDResult",
    "cross_identify",
    "masterlist_columns",
    "id_rows",
    "dense_columns",
    "PAIR_COLUMNS",
]

#: Columns of the pair tables :func:`cross_identify` reads (``colour`` may be absent).
PAIR_COLUMNS = ("query", "opt_row", "sep_arcsec", "east_arcsec", "north_arcsec",
                "c_ee", "c_en", "c_nn", "mag")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RadioIDSettings:
    """How to identify radio sources (validated at construction).

    Parameters
    ----------
    search_radius_arcsec : float
        Candidates are the optical objects within this radius.
    background_inner_arcsec, background_outer_arcsec : float
        Annulus around each radio source where n(m) is counted (and random positions go).
    mag_edges : sequence of float, mag
        Magnitude cells of q(m) and n(m).
    colour_edges : sequence of float, optional
        Colour cells of q(m, colour); None for q(m) alone.
    systematic_arcsec : float
        Circular systematic positional error added to both catalogues' ellipses, arcsec.
    q0 : float, optional
        Fix Q0 instead of fitting it.
    q0_radii_arcsec : sequence of float, optional
        Radii of the blank test (default: 12 radii up to the search radius).
    threshold : float, optional
        LR threshold (default: where completeness and reliability balance).
    smooth_cells : float
        Smoothing of q(m) along magnitude, in cells.
    random_state : int
        Seed of the random positions.
    """

    search_radius_arcsec: float = 5.0
    background_inner_arcsec: float = 10.0
    background_outer_arcsec: float = 60.0
    mag_edges: tuple = tuple(np.arange(12.0, 28.01, 0.5))
    colour_edges: tuple | None = None
    systematic_arcsec: float = 0.3
    q0: float | None = None
    q0_radii_arcsec: tuple | None = None
    threshold: float | None = None
    smooth_cells: float = 0.0
    random_state: int = 0

    def __post_init__(self):
        r, ri, ro = (
            self.search_radius_arcsec,
            self.background_inner_arcsec,
            self.background_outer_arcsec,
        )
        if not (0 < r <= ri < ro):
            raise InputError(
                "radii must satisfy 0 < search_radius_arcsec <= background_inner_arcsec < "
                f"background_outer_arcsec, got {r}, {ri}, {ro}"
            )
        if ro - ri < 2 * r:
            raise InputError(
                "the background annulus must be at least two search radii wide (random "
                f"positions need room), got {ri}..{ro} arcsec for a search radius of {r}"
            )
        rq = float(np.max(self.radii()))
        if ro - ri < 2 * rq or not np.all(self.radii() > 0):
            raise InputError(
                "the background annulus must be at least two blank-test radii wide (random "
                f"positions need room), got {ri}..{ro} arcsec for radii up to {rq}"
            )
        if self.systematic_arcsec < 0:
            raise InputError(f"systematic_arcsec must be >= 0, got {self.systematic_arcsec}")
        if self.q0 is not None and not 0 < self.q0 <= 1:
            raise InputError(f"q0 must be in (0, 1], got {self.q0}")
        _lr.cell_index(np.zeros(0), self.mag_edges)
        if self.colour_edges is not None:
            _lr.cell_index(np.zeros(0), self.mag_edges, np.zeros(0), self.colour_edges)

    @property
    def n_cells(self) -> int:
        nc = 1 if self.colour_edges is None else len(self.colour_edges) - 1
        return (len(self.mag_edges) - 1) * nc

    def radii(self) -> np.ndarray:
        """Radii of the blank test, arcsec."""
        if self.q0_radii_arcsec is not None:
            return np.asarray(self.q0_radii_arcsec, dtype=float)
        return np.linspace(self.search_radius_arcsec / 12, self.search_radius_arcsec, 12)


class LRModel(NamedTuple):
    """The fitted distributions: q(m, c), n(m, c) per cell and Q0.

    Attributes
    ----------
    mag_edges : ndarray (k + 1,)
    colour_edges : ndarray (c + 1,) or None
    q : ndarray (c * k,)
        Counterpart probability per cell (sums to Q0).
    n : ndarray (c * k,), arcsec^-2
        Background density per cell.
    total : ndarray (c * k,)
        Candidates within the search radius per cell (with multiplicity).
    q0 : _lr.Q0Fit
    """

    mag_edges: np.ndarray
    colour_edges: np.ndarray | None
    q: np.ndarray
    n: np.ndarray
    total: np.ndarray
    q0: _lr.Q0Fit


class RadioIDResult(NamedTuple):
    """Everything :func:`cross_identify` found.

    Attributes
    ----------
    candidates : DataFrame
        One row per (radio source, candidate) within the search radius: ``query`` (radio
        row), ``opt_row``, ``sep_arcsec``, ``mag``, ``f_r`` (arcsec^-2), ``lr``,
        ``reliability``, ``best`` (highest LR of its radio source) and ``accepted`` (best and
        LR >= threshold).
    model : LRModel
    threshold : _lr.Threshold
    n_radio : int
    """

    candidates: pd.DataFrame
    model: LRModel
    threshold: _lr.Threshold
    n_radio: int


def _cells(frame: pd.DataFrame, s: RadioIDSettings) -> np.ndarray:
    colour = frame["colour"].to_numpy(float) if s.colour_edges is not None else None
    return _lr.cell_index(frame["mag"].to_numpy(float), s.mag_edges, colour, s.colour_edges)


def _nearest(pairs: pd.DataFrame, valid: np.ndarray, n: int) -> np.ndarray:
    near = np.full(n, np.inf)
    q = pairs["query"].to_numpy(np.int64)[valid]
    np.minimum.at(near, q, pairs["sep_arcsec"].to_numpy(float)[valid])
    return near


def cross_identify(
    radio_pairs: pd.DataFrame,
    random_pairs: pd.DataFrame,
    n_radio: int,
    radio_cov: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: RadioIDSettings,
    *,
    n_random: int | None = None,
) -> RadioIDResult:
    """Likelihood-ratio IDs of ``n_radio`` radio sources from their candidate pairs.

    Parameters
    ----------
    radio_pairs : DataFrame
        Every optical object within ``background_outer_arcsec`` of a radio source, with the
        columns of :data:`PAIR_COLUMNS` (``query`` = radio row; ``c_ee, c_en, c_nn`` the
        optical covariance, arcsec^2; ``colour`` when colours are used).
    random_pairs : DataFrame
        The same for the random positions (one per radio source, :func:`.lr.random_positions`
        between the annulus radii); only ``query``, ``sep_arcsec`` and ``mag`` are read.
    n_radio : int
    radio_cov : (c_ee, c_en, c_nn), each ndarray (n_radio,), arcsec^2
        Radio positional covariance, :func:`.lr.ellipse_covariance`.
    settings : RadioIDSettings
    n_random : int, optional
        Number of random positions (default ``n_radio``).

    Returns
    -------
    RadioIDResult

    Raises
    ------
    InputError
        No radio source, or a pair table lacks a column.
    """
    s = settings
    if n_radio <= 0:
        raise InputError("no radio sources to identify")
    need = list(PAIR_COLUMNS) + (["colour"] if s.colour_edges is not None else [])
    for name, frame, cols in (
        ("radio pairs", radio_pairs, need),
        ("random pairs", random_pairs, ["query", "sep_arcsec", "mag"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError(f"{name} lack columns {missing}")
    cells = _cells(radio_pairs, s)
    rcells = _cells(random_pairs, s)
    sep = radio_pairs["sep_arcsec"].to_numpy(float)
    valid = cells >= 0

    bg = valid & (sep >= s.background_inner_arcsec) & (sep <= s.background_outer_arcsec)
    area = n_radio * np.pi * (s.background_outer_arcsec**2 - s.background_inner_arcsec**2)
    n_bg = _lr.background_density(cells[bg], s.n_cells, area)

    sys2 = s.systematic_arcsec**2
    if s.q0 is None:
        near_radio = _nearest(radio_pairs, valid, n_radio)
        near_rand = _nearest(random_pairs, rcells >= 0, n_random or n_radio)
        # F(r) from the radio ellipses plus the typical optical error and the systematic term.
        o = [float(np.median(radio_pairs[k])) if len(radio_pairs) else 0.0
             for k in ("c_ee", "c_en", "c_nn")]  # fmt: skip
        cdf = _lr.offset_cdf(
            s.radii(), np.asarray(radio_cov[0], float) + o[0] + sys2,
            np.asarray(radio_cov[1], float) + o[1], np.asarray(radio_cov[2], float) + o[2] + sys2,
            s.random_state,
        )  # fmt: skip
        q0fit = _lr.fit_q0(near_radio, near_rand, s.radii(), cdf=cdf)
    else:
        q0fit = _lr.Q0Fit(
            float(s.q0), 0.0, float("nan"), s.radii(), np.full(len(s.radii()), np.nan)
        )

    cand = valid & (sep <= s.search_radius_arcsec)
    q = _lr.counterpart_distribution(
        cells[cand], n_radio, s.search_radius_arcsec, n_bg, q0fit.q0, smooth_cells=s.smooth_cells
    )
    total = _lr.cell_counts(cells[cand], s.n_cells)

    c = radio_pairs.loc[cand].reset_index(drop=True)
    qi = c["query"].to_numpy(np.int64)
    c_ee = np.asarray(radio_cov[0], float)[qi] + c["c_ee"].to_numpy(float) + sys2
    c_en = np.asarray(radio_cov[1], float)[qi] + c["c_en"].to_numpy(float)
    c_nn = np.asarray(radio_cov[2], float)[qi] + c["c_nn"].to_numpy(float) + sys2
    f_r = _lr.positional_density(
        c["east_arcsec"].to_numpy(float), c["north_arcsec"].to_numpy(float), c_ee, c_en, c_nn
    )
    lr = _lr.likelihood_ratio(f_r, cells[cand], q, n_bg)
    rel = _lr.reliability(qi, lr, q0fit.q0)
    best_rows = _lr.best_candidates(qi, lr)
    best = np.zeros(len(c), dtype=bool)
    best[best_rows] = True
    if s.threshold is None:
        thr = _lr.choose_threshold(lr[best_rows], rel[best_rows], q0fit.q0, n_radio)
    else:
        keep = lr[best_rows] >= s.threshold
        comp, rl = _lr.completeness_reliability(
            lr[best_rows], rel[best_rows], q0fit.q0, n_radio, np.array([s.threshold])
        )
        thr = _lr.Threshold(float(s.threshold), float(comp[0]), float(rl[0]),
                            int(keep.sum()), float(np.sum(1 - rel[best_rows][keep])))  # fmt: skip
    out = c.assign(cell=cells[cand], f_r=f_r, lr=lr, reliability=rel, best=best,
                   accepted=best & (lr >= thr.lr) & (lr > 0))  # fmt: skip
    out = out.sort_values(["query", "lr"], ascending=[True, False], kind="stable")
    model = LRModel(
        np.asarray(s.mag_edges, float),
        None if s.colour_edges is None else np.asarray(s.colour_edges, float),
        q, n_bg, total, q0fit,
    )  # fmt: skip
    return RadioIDResult(out.reset_index(drop=True), model, thr, int(n_radio))


def id_rows(
    result: RadioIDResult,
    band: str,
    radio_id: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
) -> pd.DataFrame:
    """The radio columns of the masterlist rows that have an ID (or a flag), sparse.

    An object identified with several radio sources takes the one of highest reliability;
    ``flag_radio_multi`` marks it, and also marks an object whose radio source has another
    candidate above the threshold (an ambiguous ID).

    Parameters
    ----------
    result : RadioIDResult
    band : str
        Radio band name: the columns are ``f_<band>``, ``ferr_<band>``.
    radio_id : ndarray (n_radio,)
        Identifier of each radio source.
    flux, flux_err : ndarray (n_radio,), uJy

    Returns
    -------
    DataFrame
        ``row`` (masterlist row, increasing) and the columns of :func:`masterlist_columns`.
    """
    c = result.candidates
    acc = c[c["accepted"]].sort_values("reliability", ascending=False, kind="stable")
    rows = acc["opt_row"].to_numpy(np.int64)
    first = ~pd.Series(rows).duplicated().to_numpy()
    multi_rows = set(rows[pd.Series(rows).duplicated(keep=False).to_numpy()].tolist())
    # Ambiguous: another candidate of the same radio source also passes the threshold.
    above = c[(c["lr"] >= result.threshold.lr) & (c["lr"] > 0)]
    n_above = above.groupby("query").size()
    amb = acc["query"].isin(set(n_above[n_above > 1].index)).to_numpy()
    multi_rows |= set(rows[amb].tolist())
    win = acc[first].sort_values("opt_row", kind="stable")
    r = win["opt_row"].to_numpy(np.int64)
    q = win["query"].to_numpy(np.int64)
    return pd.DataFrame({
        "row": r, f"f_{band}": np.asarray(flux, float)[q],
        f"ferr_{band}": np.asarray(flux_err, float)[q],
        "radio_id": np.asarray(radio_id).astype(str)[q].astype(object),
        "lr": win["lr"].to_numpy(float), "reliability": win["reliability"].to_numpy(float),
        "flag_radio_multi": np.isin(r, list(multi_rows)),
    })  # fmt: skip


def dense_columns(sparse: pd.DataFrame, n_rows: int, first_row: int = 0) -> pd.DataFrame:
    """The radio columns of ``n_rows`` masterlist rows from ``first_row`` on, from
    :func:`id_rows` (rows without an ID: NaN, null ``radio_id``, False flag)."""
    sel = (sparse["row"] >= first_row) & (sparse["row"] < first_row + n_rows)
    part = sparse[sel]
    r = part["row"].to_numpy(np.int64) - first_row
    out = {}
    for col in sparse.columns:
        if col == "row":
            continue
        if col == "radio_id":
            # NULL, not "", for no ID: an empty string would read as an identifier in ADQL
            # (``radio_id IS NULL`` is how TAP users ask for unidentified objects).
            v = np.full(n_rows, None, dtype=object)
        elif col == "flag_radio_multi":
            v = np.zeros(n_rows, dtype=bool)
        else:
            v = np.full(n_rows, np.nan)
        v[r] = part[col].to_numpy()
        out[col] = pd.array(v, dtype="string") if col == "radio_id" else v
    return pd.DataFrame(out)


def masterlist_columns(
    result: RadioIDResult,
    n_objects: int,
    band: str,
    radio_id: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
) -> pd.DataFrame:
    """Radio columns for all the masterlist rows, from the accepted IDs (see :func:`id_rows`).

    Parameters
    ----------
    result : RadioIDResult
    n_objects : int
        Masterlist rows (``opt_row`` indexes them).
    band, radio_id, flux, flux_err
        As for :func:`id_rows`.

    Returns
    -------
    DataFrame (n_objects,)
        ``f_<band>``, ``ferr_<band>`` (uJy, NaN when no ID), ``radio_id`` (string, null
        when none), ``lr``, ``reliability`` (NaN when none), ``flag_radio_multi`` (bool).
    """
    return dense_columns(id_rows(result, band, radio_id, flux, flux_err), n_objects)
