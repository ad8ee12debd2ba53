"""Merging prepared catalogues into masterlist rows (pure: arrays and DataFrames in and out).

The merge follows HELP: catalogues are taken in priority order. The running masterlist starts as
the first catalogue; at each later step all candidate pairs within the step's radius are found
between the masterlist positions and the next catalogue, then a greedy nearest-first one-to-one
selection keeps the pairs. Unmatched rows of both sides are kept (new catalogue rows become new
objects, positioned by their own catalogue). An object's position therefore comes from the
highest-priority catalogue that has it. Every object one of whose rows had more than one
candidate at some step gets ``flag_merged``.

Objects are ordered by (catalogue of their first row, that row's index): a subset of the inputs
closed under candidate pairs (a connected component of the match graph) merges to exactly the
corresponding subset of objects, in the same order, which the tiled engine relies on.

Where several catalogues measure the same band, ``rule`` picks one measurement per object:
``"priority"`` (the highest-priority catalogue with a total flux, else an aperture flux) or
``"lowest_error"`` (the smallest total-flux error, ties to priority). The choice is recorded in
``origin_<band>``.

Before merging, :func:`load_prepared` checks each prepared catalogue and picks its positions
(a :class:`Prepared`), and :func:`plan_steps` fixes the radius and Bayesian prior of every
step (a :class:`StepPlan`); both the single-machine and the tiled merge use that plan.
:func:`skysense.catalog.masterlist.build_objects` then turns an :class:`Association` into
masterlist rows.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._check import check_positions
from skysense.catalog import bayes
from skysense.catalog.match import (
    candidate_counts,
    greedy_one_to_one,
    pairs_within,
    separation_counts,
)
from skysense.catalog.morphology import merge_shapes
from skysense.catalog.radius import (
    N_BINS,
    RadiusSuggestion,
    separation_edges,
    suggest_radius_from_counts,
)
from skysense.errors import InputError

__all__ = [
    "SAME_FILTER_RULES",
    "BAND_PREFIXES",
    "POSITION_ERROR_COLUMNS",
    "Association",
    "associate",
    "band_columns",
    "survey_columns",
    "assemble",
    "Prepared",
    "StepPlan",
    "guess_survey",
    "position_columns",
    "load_prepared",
    "input_coverage",
    "plan_steps",
    "plan_from_counts",
]

SAME_FILTER_RULES = ("priority", "lowest_error")
# Longest first so that "m_ap_x" is not read as prefix "m" of band "ap_x".
BAND_PREFIXES = ("merr_ap", "ferr_ap", "m_ap", "f_ap", "merr", "ferr", "m", "f", "flag")
_NOT_BANDS = {"gaia", "starmask", "merged", "cleaned", "optnir_obs", "optnir_det"}


@dataclasses.dataclass(frozen=True)
class Association:
    """Which row of each catalogue makes each masterlist object.

    Attributes
    ----------
    surveys : tuple of str (k,)
        Catalogue names in priority order.
    ra, dec : ndarray (n,), deg
        Object positions (from the highest-priority catalogue holding the object).
    rows : ndarray (n, k), int64
        Row index into each catalogue, -1 where the object is absent from it.
    sep_arcsec : ndarray (n, k), float64
        Separation between each catalogue's row and the object position at the step that
        matched it (0 for the row giving the position; NaN where absent).
    n_candidates : ndarray (n, k), int32
        Number of candidates of that row at its merge step, the larger of its own count and
        the object's (0 where there was none or the row is absent).
    flag_merged : ndarray (n,), bool
        Some row of the object had more than one candidate.
    origin : ndarray (n,), int16
        Index of the catalogue giving the position.
    radii_arcsec : tuple of float (k,)
        Radius of each step (the first entry is unused, 0).
    """

    surveys: tuple
    ra: np.ndarray
    dec: np.ndarray
    rows: np.ndarray
    sep_arcsec: np.ndarray
    n_candidates: np.ndarray
    flag_merged: np.ndarray
    origin: np.ndarray
    radii_arcsec: tuple

    def __len__(self) -> int:
        return len(self.ra)


def associate(
    positions: Sequence[tuple[np.ndarray, np.ndarray]],
    radii_arcsec: Sequence[float],
    surveys: Sequence[str],
) -> Association:
    """Merge catalogue positions in priority order (see the module docstring).

    Parameters
    ----------
    positions : sequence of (ra, dec) pairs of ndarray (n_k,), deg
        One per catalogue, highest priority first.
    radii_arcsec : sequence of float
        Match radius of each step, arcsec; ``radii_arcsec[k]`` is used when catalogue ``k``
        (k >= 1) is merged; the first entry is ignored.
    surveys : sequence of str
        Catalogue names (for the result and for messages).

    Returns
    -------
    Association

    Raises
    ------
    InputError
        Lengths disagree, or a position is invalid (names the survey and row).
    """
    k_total = len(positions)
    if k_total == 0:
        raise InputError("no catalogue to merge")
    if len(radii_arcsec) != k_total or len(surveys) != k_total:
        raise InputError("positions, radii_arcsec and surveys must have the same length")
    ra0, dec0 = (np.asarray(x, dtype=np.float64) for x in positions[0])
    n0 = len(ra0)
    row_table = np.full((n0, k_total), -1, dtype=np.int64)
    row_table[:, 0] = np.arange(n0)
    sep_table = np.full((n0, k_total), np.nan)
    sep_table[:, 0] = 0.0
    cand_table = np.zeros((n0, k_total), dtype=np.int32)
    origin = [np.zeros(n0, dtype=np.int16)]
    master_ra, master_dec = ra0, dec0
    flag = np.zeros(n0, dtype=bool)
    for k in range(1, k_total):
        ra_k, dec_k = (np.asarray(x, dtype=np.float64) for x in positions[k])
        try:
            cand = pairs_within(master_ra, master_dec, ra_k, dec_k, radii_arcsec[k])
        except InputError as exc:
            raise InputError(f"merging {surveys[k]!r}: {exc}") from exc
        n_master, n_k = len(master_ra), len(ra_k)
        c_master, c_k = candidate_counts(cand.i1, cand.i2, n_master, n_k)
        kept = greedy_one_to_one(*cand)
        row_table[kept.i1, k] = kept.i2
        sep_table[kept.i1, k] = kept.sep_arcsec
        cand_table[kept.i1, k] = np.maximum(c_master[kept.i1], c_k[kept.i2])
        flag |= c_master > 1
        flag[kept.i1] |= c_k[kept.i2] > 1
        new = np.ones(n_k, dtype=bool)
        new[kept.i2] = False
        new_idx = np.flatnonzero(new)
        add_rows = np.full((len(new_idx), k_total), -1, dtype=np.int64)
        add_rows[:, k] = new_idx
        add_sep = np.full((len(new_idx), k_total), np.nan)
        add_sep[:, k] = 0.0
        add_cand = np.zeros((len(new_idx), k_total), dtype=np.int32)
        add_cand[:, k] = c_k[new_idx]
        row_table = np.concatenate([row_table, add_rows])
        sep_table = np.concatenate([sep_table, add_sep])
        cand_table = np.concatenate([cand_table, add_cand])
        flag = np.concatenate([flag, c_k[new_idx] > 1])
        origin.append(np.full(len(new_idx), k, dtype=np.int16))
        master_ra = np.concatenate([master_ra, ra_k[new_idx]])
        master_dec = np.concatenate([master_dec, dec_k[new_idx]])
    radii = (0.0, *(float(r) for r in radii_arcsec[1:]))
    return Association(
        surveys=tuple(surveys),
        ra=master_ra,
        dec=master_dec,
        rows=row_table,
        sep_arcsec=sep_table,
        n_candidates=cand_table,
        flag_merged=flag,
        origin=np.concatenate(origin),
        radii_arcsec=radii,
    )


def band_columns(columns: Sequence[str]) -> dict[str, dict[str, str]]:
    """Group HELP photometry columns by band.

    Parameters
    ----------
    columns : sequence of str
        Column names of a prepared catalogue or masterlist.

    Returns
    -------
    dict
        ``{band: {prefix: column}}`` for every band having an ``m_`` or ``f_`` column;
        prefixes are those of :data:`BAND_PREFIXES`, in first-seen band order.
    """
    found: dict[str, dict[str, str]] = {}
    for col in columns:
        for prefix in BAND_PREFIXES:
            if col.startswith(prefix + "_"):
                band = col[len(prefix) + 1 :]
                if band and band not in _NOT_BANDS and re.fullmatch(r"[a-z0-9_]+", band):
                    found.setdefault(band, {})[prefix] = col
                break
    return {b: cols for b, cols in found.items() if "m" in cols or "f" in cols}


def survey_columns(columns: Sequence[str], survey: str) -> dict[str, str]:
    """The ``<survey>_id``, ``<survey>_ra``, ``<survey>_dec`` columns present, by key."""
    return {k: f"{survey}_{k}" for k in ("id", "ra", "dec") if f"{survey}_{k}" in columns}


def _gather(values: np.ndarray, rows: np.ndarray, fill) -> np.ndarray:
    out = np.full(len(rows), fill, dtype=values.dtype if fill is not np.nan else np.float64)
    present = rows >= 0
    out[present] = values[rows[present]]
    return out


def _float(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _choose(
    assoc: Association,
    frames: Sequence[pd.DataFrame],
    holders: list[int],
    cols: list[dict[str, str]],
    rule: str,
) -> np.ndarray:
    """Index into ``holders`` of the chosen catalogue per object (-1: none has a value)."""
    n = len(assoc)
    avail_total = np.zeros((n, len(holders)), dtype=bool)
    avail_any = np.zeros((n, len(holders)), dtype=bool)
    err = np.full((n, len(holders)), np.inf)
    for h, (k, c) in enumerate(zip(holders, cols)):
        rows = assoc.rows[:, k]
        total = c.get("f", c.get("m"))
        v = _gather(_float(frames[k], total), rows, np.nan)
        avail_total[:, h] = np.isfinite(v)
        ap = c.get("f_ap", c.get("m_ap"))
        avail_any[:, h] = avail_total[:, h]
        if ap is not None:
            avail_any[:, h] |= np.isfinite(_gather(_float(frames[k], ap), rows, np.nan))
        e_col = c.get("ferr", c.get("merr"))
        if e_col is not None:
            e = _gather(_float(frames[k], e_col), rows, np.nan)
            err[:, h] = np.where(avail_total[:, h] & np.isfinite(e), e, np.inf)
    # Prefer rows with a total measurement; fall back to aperture-only rows.
    usable = np.where(avail_total.any(axis=1)[:, None], avail_total, avail_any)
    if rule == "lowest_error":
        # A usable row without an error ranks after those with one, before unusable rows;
        # argmin takes the first (highest-priority) of equal keys.
        key = np.where(usable, np.where(np.isfinite(err), err, 1e300), np.inf)
        best = np.argmin(key, axis=1)
    else:
        best = np.argmax(usable, axis=1)
    return np.where(usable.any(axis=1), best, -1)


def assemble(
    assoc: Association,
    frames: Sequence[pd.DataFrame],
    *,
    rule: str = "priority",
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Masterlist columns (without identifiers) from the merged catalogues.

    Parameters
    ----------
    assoc : Association
        From :func:`associate` on the same catalogues, in the same order.
    frames : sequence of pandas.DataFrame
        The prepared catalogues (HELP column names plus ``<survey>_id/_ra/_dec``).
    rule : {"priority", "lowest_error"}
        How one measurement is chosen where several catalogues measure a band.

    Returns
    -------
    masterlist : pandas.DataFrame (n rows)
        ``ra``, ``dec``, per band ``m_``, ``merr_``, ``m_ap_``, ``merr_ap_``, ``f_``, ``ferr_``,
        ``f_ap_``, ``ferr_ap_``, ``flag_`` (those any catalogue has) and ``origin_<band>`` for
        bands measured by several catalogues; ``stellarity`` (highest-priority finite value),
        ``r_half_arcsec``, ``axis_ratio``, ``pa_deg``, ``shape_origin`` when a catalogue has
        shapes (:func:`skysense.catalog.morphology.merge_shapes`),
        ``flag_gaia`` (maximum), ``flag_starmask`` and ``flag_cleaned`` (any), ``flag_merged``,
        and every
        ``<survey>_id``.
    shared_bands : dict
        ``{band: [surveys measuring it, in priority order]}`` for bands measured by several.

    Raises
    ------
    InputError
        Unknown rule, or a frame count that does not match ``assoc``.
    """
    if rule not in SAME_FILTER_RULES:
        raise InputError(f"unknown same-filter rule {rule!r}; use one of {SAME_FILTER_RULES}")
    if len(frames) != len(assoc.surveys):
        raise InputError("assemble needs one frame per merged catalogue")
    out: dict[str, np.ndarray] = {"ra": assoc.ra, "dec": assoc.dec}
    per_cat = [band_columns(list(f.columns)) for f in frames]
    bands: list[str] = []
    for cols in per_cat:
        bands += [b for b in cols if b not in bands]
    shared: dict[str, list[str]] = {}
    for band in bands:
        holders = [k for k, cols in enumerate(per_cat) if band in cols]
        cols = [per_cat[k][band] for k in holders]
        prefixes = [p for p in BAND_PREFIXES if any(p in c for c in cols)]
        if len(holders) == 1:
            choice = np.where(assoc.rows[:, holders[0]] >= 0, 0, -1)
        else:
            choice = _choose(assoc, frames, holders, cols, rule)
            shared[band] = [assoc.surveys[k] for k in holders]
        for prefix in prefixes:
            is_flag = prefix == "flag"
            value = np.zeros(len(assoc), dtype=bool) if is_flag else np.full(len(assoc), np.nan)
            for h, (k, c) in enumerate(zip(holders, cols)):
                if prefix not in c:
                    continue
                sel = choice == h
                rows = assoc.rows[sel, k]
                col = frames[k][c[prefix]]
                if is_flag:
                    src = col.fillna(False).to_numpy(dtype=bool)
                else:
                    src = _float(frames[k], c[prefix])
                value[sel] = src[rows]
            out[f"{prefix}_{band}"] = value
        if len(holders) > 1:
            names = np.array([assoc.surveys[k] for k in holders] + [""], dtype=object)
            out[f"origin_{band}"] = names[choice]
    n = len(assoc)
    stell = np.full(n, np.nan)
    flag_gaia = np.zeros(n, dtype=np.int16)
    starmask = np.zeros(n, dtype=bool)
    cleaned = np.zeros(n, dtype=bool)
    for k, frame in enumerate(frames):
        rows = assoc.rows[:, k]
        if "stellarity" in frame.columns:
            v = _gather(_float(frame, "stellarity"), rows, np.nan)
            stell = np.where(np.isnan(stell), v, stell)
        if "flag_gaia" in frame.columns:
            v = frame["flag_gaia"].fillna(0).to_numpy(dtype=np.int16)
            flag_gaia = np.maximum(flag_gaia, _gather(v, rows, np.int16(0)))
        if "flag_starmask" in frame.columns:
            v = frame["flag_starmask"].fillna(False).to_numpy(dtype=bool)
            starmask |= _gather(v, rows, False)
        if "flag_cleaned" in frame.columns:
            v = frame["flag_cleaned"].fillna(False).to_numpy(dtype=bool)
            cleaned |= _gather(v, rows, False)
    out["stellarity"] = stell
    out.update(merge_shapes(assoc.rows, frames, assoc.surveys))  # DMU 3 shapes, if any
    out["flag_gaia"] = flag_gaia
    out["flag_starmask"] = starmask
    out["flag_cleaned"] = cleaned
    out["flag_merged"] = assoc.flag_merged.copy()
    for k, (survey, frame) in enumerate(zip(assoc.surveys, frames)):
        id_col = f"{survey}_id"
        if id_col not in frame.columns:
            continue
        ids = frame[id_col]
        rows = assoc.rows[:, k]
        present = rows >= 0
        if pd.api.types.is_integer_dtype(ids.dtype):
            values = pd.array(np.zeros(n, dtype=np.int64), dtype="Int64")
            values[present] = ids.to_numpy()[rows[present]]
            values[~present] = pd.NA
        else:
            values = pd.array([None] * n, dtype="string")
            values[present] = ids.astype("string").to_numpy()[rows[present]]
        out[id_col] = values
    return pd.DataFrame(out), shared


# -- the plan: checked inputs, radii and priors of every step ---------------------------------

#: Position-error columns looked for, in order (``{}`` is the survey name), arcsec.
POSITION_ERROR_COLUMNS = ("{}_poserr_arcsec", "{}_pos_err", "position_error_arcsec")
# Rows of a catalogue per declination band of the radius histograms. At 10M objects (9.5M
# rows, 4 surveys) bands of 2M rows peaked at 911 MB of Python-traced memory in the driver
# (the band's rows of the earlier catalogues and the search's arrays), 500k at 309 MB, with
# the same radii; the histograms do not depend on it.
_PLAN_BAND_ROWS = 500_000
_ID_RE = re.compile(r"^([a-z0-9_]+)_id$")


@dataclasses.dataclass
class Prepared:
    """One prepared catalogue ready to merge.

    Attributes
    ----------
    survey : str
    frame : pandas.DataFrame
        The rows (empty, the schema only, when ``hats_dir`` is set).
    ra, dec : ndarray (n,), deg, or None
        Checked positions; None for a HATS input left on disk (the tiled merge reads and
        checks its positions partition by partition, on the workers).
    path : Path, optional
        Where the catalogue was read from.
    position_error_arcsec : ndarray (n,), arcsec, optional
    moc : mocpy.MOC, optional
        Coverage (computed from the positions when needed).
    meta : dict
        What the preparation recorded (offsets, aperture corrections).
    hats_dir, position_columns, error_column
        Set when the table stays on disk (a HATS input to the tiled merge): tiles read the
        rows themselves, with these column names.
    error_constant : float, optional, arcsec
        One position error for every row of a table on disk (instead of ``error_column``).
    n_rows : int, optional
        Rows of the table (default ``len(ra)``; for a table on disk, set once it is scanned).
    """

    survey: str
    frame: pd.DataFrame
    ra: np.ndarray
    dec: np.ndarray
    path: Path | None = None
    position_error_arcsec: np.ndarray | None = None
    moc: object | None = None
    meta: dict = dataclasses.field(default_factory=dict)
    hats_dir: Path | None = None
    position_columns: tuple[str, str] | None = None
    error_column: str | None = None
    error_constant: float | None = None
    n_rows: int | None = None

    def __post_init__(self):
        if self.n_rows is None and self.ra is not None:
            self.n_rows = len(self.ra)


@dataclasses.dataclass
class StepPlan:
    """Radius and Bayesian prior of each merge step (index 0 unused).

    Attributes
    ----------
    radii_arcsec : list of float (k,), arcsec
    suggestions : list of RadiusSuggestion or None (k,)
    log_prior_odds : list of float (k,)
    area_sr : list of float (k,), sr
        Overlap area of each step (0 without ``bayes``).
    """

    radii_arcsec: list[float]
    suggestions: list[RadiusSuggestion | None]
    log_prior_odds: list[float]
    area_sr: list[float]


def guess_survey(columns: Sequence[str], path: Path | None = None) -> str:
    """The survey name of a prepared table: its one ``<survey>_id`` column with
    ``<survey>_ra`` and ``<survey>_dec``, else the file name if ``<stem>_id`` is a column.

    Raises
    ------
    InputError
        Neither rule names one survey.
    """
    columns = list(columns)
    names = [m.group(1) for c in columns if (m := _ID_RE.match(c))]
    names = [n for n in names if f"{n}_ra" in columns and f"{n}_dec" in columns]
    if len(names) == 1:
        return names[0]
    if path is not None:
        stem = re.sub(r"[^a-z0-9_]", "_", Path(path).name.split(".")[0].lower())
        if f"{stem}_id" in columns:
            return stem
    raise InputError(
        "cannot tell the survey name: expected exactly one <survey>_id column with "
        "<survey>_ra and <survey>_dec; set 'survey' in the merge configuration",
        path=path,
    )


def position_columns(columns: Sequence[str], survey: str) -> tuple[str, str]:
    """``(<survey>_ra, <survey>_dec)`` when both are columns, else ``("ra", "dec")``."""
    cols = (f"{survey}_ra", f"{survey}_dec")
    return cols if all(c in columns for c in cols) else ("ra", "dec")


def load_prepared(
    frame: pd.DataFrame,
    *,
    survey: str | None = None,
    path: Path | None = None,
    position_error_arcsec: float | None = None,
    moc=None,
) -> Prepared:
    """Check a prepared catalogue and pick its positions.

    Positions come from ``<survey>_ra``/``<survey>_dec`` (falling back to ``ra``/``dec``).

    Parameters
    ----------
    frame : pandas.DataFrame
    survey : str, optional
        Default from :func:`guess_survey`.
    path : Path, optional
        Named in errors.
    position_error_arcsec : float, optional, arcsec
        One error for every row (default: a :data:`POSITION_ERROR_COLUMNS` column, if any).
    moc : mocpy.MOC, optional

    Raises
    ------
    InputError
        Empty table, missing position columns, or an invalid position (names file, column
        and row).
    """
    survey = survey or guess_survey(frame.columns, path)
    if len(frame) == 0:
        raise InputError("empty catalogue", path=path)
    cols = position_columns(frame.columns, survey)
    for c in cols:
        if c not in frame.columns:
            raise InputError(
                f"position column missing (looked for {survey}_ra/_dec and ra/dec)",
                path=path,
                column=c,
            )
    values = [
        pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        for c in cols
    ]
    ra, dec = check_positions(*values, path=path, columns=tuple(cols), label=survey)
    err = None
    if position_error_arcsec is not None:
        err = np.full(len(frame), float(position_error_arcsec))
    else:
        for c in (c.format(survey) for c in POSITION_ERROR_COLUMNS):
            if c in frame.columns:
                err = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
                break
    meta = dict(frame.attrs.get("meta", {}) or {})
    return Prepared(survey, frame, ra, dec, path, err, moc, meta)


def input_coverage(p: Prepared):
    """The coverage MOC of an input: its own, else that of its positions (kept on ``p``)."""
    from skysense.catalog.moc import coverage_moc

    if p.moc is None:
        p.moc = coverage_moc(p.ra, p.dec)
    return p.moc


def plan_steps(
    inputs: Sequence[Prepared],
    *,
    step_radius: Callable[[int], float | str],
    search_radius_arcsec: float,
    bayes_on: bool = False,
    progress: bool = False,
) -> StepPlan:
    """Radius suggestion (and the radius used) and Bayesian prior for every step.

    The histogram of step ``k`` is that of all pairs between catalogue ``k`` and the
    catalogues before it, within ``search_radius_arcsec``; it depends on the inputs only, so
    the single-machine and tiled merges use the same radii.

    Parameters
    ----------
    inputs : sequence of Prepared
        In priority order.
    step_radius : callable
        ``step_radius(k)``: the radius of step ``k`` in arcsec, or ``"auto"`` for the
        suggested one (:meth:`skysense.catalog.merge_config.MergeConfig.step_radius`).
    search_radius_arcsec : float, arcsec
        Range of the separation histograms.
    bayes_on : bool
        Also compute the prior odds of each step from the counts and the overlap area.
    progress : bool
        Show a progress bar.

    Raises
    ------
    InputError
        ``radius_arcsec: auto`` where no radius can be suggested.
    """
    from tqdm import tqdm

    edges = separation_edges(search_radius_arcsec, N_BINS)
    counts = []
    for k in tqdm(range(1, len(inputs)), desc="separation histograms", disable=not progress):
        # Band by band: the driver never builds the search structures of whole catalogues,
        # nor holds more than a band's separations.
        prev = [(p.ra, p.dec) for p in inputs[:k]]
        counts.append(separation_counts(inputs[k].ra, inputs[k].dec, prev, search_radius_arcsec,
                                        edges, band_rows=_PLAN_BAND_ROWS))  # fmt: skip
    return plan_from_counts(
        inputs, [np.zeros(N_BINS, dtype=np.int64), *counts], step_radius=step_radius,
        search_radius_arcsec=search_radius_arcsec, bayes_on=bayes_on,
    )  # fmt: skip


def plan_from_counts(
    inputs: Sequence[Prepared],
    counts: Sequence[np.ndarray],
    *,
    step_radius: Callable[[int], float | str],
    search_radius_arcsec: float,
    bayes_on: bool = False,
) -> StepPlan:
    """The :class:`StepPlan` from each step's separation histogram.

    Parameters
    ----------
    inputs : sequence of Prepared
        In priority order; only ``survey``, ``n_rows`` and the coverage
        (:func:`input_coverage`) are used.
    counts : sequence of ndarray (N_BINS,), int
        ``counts[k]``: pairs per bin of :func:`skysense.catalog.radius.separation_edges`
        ``(search_radius_arcsec)`` between catalogue ``k`` and the catalogues before it
        (``counts[0]`` unused), however they were counted (:func:`plan_steps` in memory, the
        tiled merge tile by tile: the same integers).
    step_radius, search_radius_arcsec, bayes_on
        As for :func:`plan_steps`.

    Raises
    ------
    InputError
        ``radius_arcsec: auto`` where no radius can be suggested.
    """
    from skysense.catalog.moc import moc_area_deg2, moc_union

    radii = [0.0]
    suggestions: list[RadiusSuggestion | None] = [None]
    log_odds = [0.0]
    areas = [0.0]
    for k in range(1, len(inputs)):
        wanted = step_radius(k)
        try:
            sugg = suggest_radius_from_counts(counts[k], search_radius_arcsec)
        except InputError as exc:
            if wanted == "auto":
                raise InputError(f"radius_arcsec: auto for {inputs[k].survey!r}: {exc}") from exc
            sugg = None
        suggestions.append(sugg)
        radius = sugg.radius_arcsec if wanted == "auto" else float(wanted)
        radii.append(radius)
        if bayes_on:
            prev_moc = moc_union([input_coverage(p) for p in inputs[:k]])
            overlap = prev_moc.intersection(input_coverage(inputs[k]))
            area_sr = max(moc_area_deg2(overlap), 1e-12) * (np.pi / 180) ** 2
            n_common = sugg.n_true if sugg is not None else int(np.sum(counts[k]))
            prior = bayes.prior_from_counts(
                int(round(max(n_common, 1))),
                sum(p.n_rows for p in inputs[:k]),
                inputs[k].n_rows,
            )
            # The paper's B compares with positions uniform over the whole sphere; over a field
            # of area A the chance hypothesis is A / 4 pi times likelier, hence the offset.
            log_odds.append(np.log(prior) - np.log1p(-prior) + np.log(area_sr / (4 * np.pi)))
            areas.append(area_sr)
        else:
            log_odds.append(0.0)
            areas.append(0.0)
    return StepPlan(radii, suggestions, log_odds, areas)
