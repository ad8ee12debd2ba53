"""Masterlist rows, identifiers and the association table (pure).

:func:`build_objects` turns an :class:`~skysense.catalog.merge.Association` into masterlist
rows and association rows; the single-machine merge calls it once, the tiled engine once
per tile.

``help_id`` is an IAU-style designation ``HELP_Jhhmmss.sss+ddmmss.sss`` with the coordinates
truncated (not rounded), as the IAU recommends. Objects closer than the designation's
resolution (1 ms of RA, 1 mas of Dec) would share one; the second and later (in
``object_key`` order) get a suffix ``_2``, ``_3``, ...

``object_key`` is a stable int64: the order-28 NESTED HEALPix index of the position (60 bits,
cells of 0.8 mas) shifted left by 3 bits, plus a counter (0-7) over objects sharing a cell in
object order. It depends only on the positions and the merge order, so reruns give the same
keys, and it sorts objects spatially (HATS-friendly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skysense.catalog import bayes
from skysense.catalog.merge import (
    Association,
    Prepared,
    StepPlan,
    assemble,
    band_columns,
    input_coverage,
)
from skysense.errors import InputError
from skysense.healpix import nested_index

__all__ = [
    "build_objects",
    "ordered_columns",
    "KEY_ORDER",
    "healpix_index",
    "object_keys",
    "help_ids",
    "association_table",
]

KEY_ORDER = 28
_COUNTER_BITS = 3


def healpix_index(ra_deg: np.ndarray, dec_deg: np.ndarray, order: int = KEY_ORDER) -> np.ndarray:
    """:func:`skysense.healpix.nested_index`, at the order of the object keys by default."""
    return nested_index(ra_deg, dec_deg, order)


def object_keys(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Stable int64 keys of objects given in merge order (see the module docstring).

    Raises
    ------
    InputError
        More than 8 objects share one 0.8 mas cell (duplicated rows in an input).
    """
    hpx = healpix_index(ra_deg, dec_deg)
    order = np.argsort(hpx, kind="stable")
    sorted_hpx = hpx[order]
    first = np.ones(len(hpx), dtype=bool)
    first[1:] = sorted_hpx[1:] != sorted_hpx[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(hpx)), 0))
    counter = np.empty(len(hpx), dtype=np.int64)
    counter[order] = np.arange(len(hpx)) - group_start
    if len(counter) and counter.max() >= 2**_COUNTER_BITS:
        row = int(np.argmax(counter))
        raise InputError(
            f"more than {2**_COUNTER_BITS} objects at the same position "
            f"(ra={ra_deg[row]!r}, dec={dec_deg[row]!r}); remove duplicated rows",
            row=row,
        )
    return (hpx << _COUNTER_BITS) | counter


def _designation_parts(ra_deg: np.ndarray, dec_deg: np.ndarray) -> list[str]:
    ra = np.mod(np.asarray(ra_deg, dtype=np.float64), 360.0)
    dec = np.asarray(dec_deg, dtype=np.float64)
    # Integer milliseconds of time and milliarcseconds, truncated.
    ra_ms = np.floor(ra * 240_000.0).astype(np.int64) % (24 * 3600 * 1000)
    dec_mas = np.floor(np.abs(dec) * 3_600_000.0).astype(np.int64)
    h, rem = np.divmod(ra_ms, 3_600_000)
    m, rem = np.divmod(rem, 60_000)
    s, ms = np.divmod(rem, 1000)
    d, rem = np.divmod(dec_mas, 3_600_000)
    dm, rem = np.divmod(rem, 60_000)
    ds, dmas = np.divmod(rem, 1000)
    sign = np.where((dec < 0) & (dec_mas > 0), "-", "+")
    return [
        f"HELP_J{a:02d}{b:02d}{c:02d}.{e:03d}{sg}{f:02d}{g:02d}{k:02d}.{q:03d}"
        for a, b, c, e, sg, f, g, k, q in zip(
            h.tolist(), m.tolist(), s.tolist(), ms.tolist(), sign.tolist(),
            d.tolist(), dm.tolist(), ds.tolist(), dmas.tolist(),
        )
    ]  # fmt: skip


def help_ids(ra_deg: np.ndarray, dec_deg: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Unique IAU-style designations ``HELP_Jhhmmss.sss+ddmmss.sss``.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray (n,), deg
    keys : ndarray (n,), int64
        Object keys; among equal designations the lowest key keeps the plain name, the others
        get ``_2``, ``_3``, ... in key order.

    Returns
    -------
    ndarray (n,), object (str)
    """
    names = np.array(_designation_parts(ra_deg, dec_deg), dtype=object)
    if len(names) == 0:
        return names
    order = np.lexsort((keys, names))
    sorted_names = names[order]
    first = np.ones(len(names), dtype=bool)
    first[1:] = sorted_names[1:] != sorted_names[:-1]
    if first.all():
        return names
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(names)), 0))
    rank = np.arange(len(names)) - group_start
    out = sorted_names.copy()
    dup = rank > 0
    out[dup] = [f"{n}_{r + 1}" for n, r in zip(sorted_names[dup], rank[dup])]
    result = np.empty_like(out)
    result[order] = out
    return result


def association_table(
    assoc: Association,
    keys: np.ndarray,
    source_ids: Sequence[np.ndarray],
    extra: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per (object, catalogue row) that went into the masterlist.

    Parameters
    ----------
    assoc : Association
    keys : ndarray (n,), int64
        Object keys.
    source_ids : sequence of ndarray
        Each catalogue's source ids (any type; stored as str), in ``assoc.surveys`` order.
    extra : dict, optional
        ``{column: ndarray (n, k)}`` per-association values (e.g. match probabilities).

    Returns
    -------
    pandas.DataFrame
        ``object_key`` (int64), ``survey`` (str), ``source_id`` (str),
        ``separation_arcsec`` (float64), ``ambiguity`` (int32: number of other candidates the
        row or its object had at its merge step), ``is_position`` (bool: this row gives the
        object's position), plus the ``extra`` columns; sorted by (object_key, survey order).
    """
    obj, cat = np.nonzero(assoc.rows >= 0)
    rows = assoc.rows[obj, cat]
    ids = np.empty(len(obj), dtype=object)
    for k, id_values in enumerate(source_ids):
        sel = cat == k
        ids[sel] = np.asarray(id_values).astype(str)[rows[sel]]
    table = {
        "object_key": keys[obj].astype(np.int64),
        "survey": np.array(assoc.surveys, dtype=object)[cat],
        "source_id": ids,
        "separation_arcsec": assoc.sep_arcsec[obj, cat],
        "ambiguity": np.maximum(assoc.n_candidates[obj, cat] - 1, 0).astype(np.int32),
        "is_position": assoc.origin[obj] == cat,
    }
    for name, values in (extra or {}).items():
        table[name] = values[obj, cat]
    df = pd.DataFrame(table)
    df["survey"] = df["survey"].astype("string")
    df["source_id"] = df["source_id"].astype("string")
    order = np.lexsort((cat, df["object_key"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def _optnir(ml: pd.DataFrame, inputs: Sequence[Prepared]) -> pd.DataFrame:
    from skysense.catalog.bands import is_known_band
    from skysense.catalog.moc import optnir_flags, regime_mocs

    per_survey = {}
    for p in inputs:
        bands = [b for b in band_columns(list(p.frame.columns)) if is_known_band(b)]
        if bands:
            per_survey[p.survey] = (input_coverage(p), bands)
    mocs = regime_mocs(per_survey)
    bands = [
        b for b in band_columns(list(ml.columns)) if is_known_band(b) and f"f_{b}" in ml.columns
    ]
    return optnir_flags(
        ml, optical_moc=mocs.get("optical"), nir_moc=mocs.get("nir"), mir_moc=mocs.get("mir"),
        bands=bands,
    )  # fmt: skip


def ordered_columns(columns: Sequence[str]) -> list[str]:
    """Masterlist column order: identifiers, position, photometry, flags, survey ids."""
    head = ["help_id", "object_key", "ra", "dec"]
    tail_flags = [
        "stellarity",
        "flag_gaia",
        "flag_starmask",
        "flag_cleaned",
        "flag_merged",
        "flag_optnir_obs",
        "flag_optnir_det",
    ]
    ids = [c for c in columns if c.endswith("_id") and c != "help_id"]
    rest = [c for c in columns if c not in head and c not in tail_flags and c not in ids]
    return [c for c in head if c in columns] + rest + [c for c in tail_flags if c in columns] + ids


def _bayes_columns(
    assoc: Association, inputs: Sequence[Prepared], plan: StepPlan
) -> dict[str, np.ndarray]:
    """``log_bayes_factor`` and ``match_probability`` (n, k) of every matched row."""
    n, k_total = assoc.rows.shape
    log_b = np.full((n, k_total), np.nan)
    prob = np.full((n, k_total), np.nan)
    for k in range(1, k_total):
        sel = (assoc.rows[:, k] >= 0) & (assoc.origin != k)
        if not sel.any():
            continue
        err_k = inputs[k].position_error_arcsec
        obj_err = np.full(sel.sum(), np.nan)
        for j in range(k):
            m = assoc.origin[sel] == j
            if inputs[j].position_error_arcsec is not None:
                obj_err[m] = inputs[j].position_error_arcsec[assoc.rows[sel, j][m]]
        if err_k is None or not np.all(np.isfinite(obj_err)):
            raise InputError(
                "bayes: true needs positional errors for every catalogue (position_error_arcsec "
                "in the merge configuration or a <survey>_poserr_arcsec column)"
            )
        lb = bayes.log_bayes_factor(assoc.sep_arcsec[sel, k], obj_err, err_k[assoc.rows[sel, k]])
        log_b[sel, k] = lb
        prob[sel, k] = bayes.match_probability_from_log_odds(lb + plan.log_prior_odds[k])
    return {"log_bayes_factor": log_b, "match_probability": prob}


def build_objects(
    assoc: Association,
    inputs: Sequence[Prepared],
    *,
    rule: str,
    plan: StepPlan,
    bayes_on: bool,
    optnir_inputs: Sequence[Prepared] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Masterlist rows and association rows of merged objects.

    Parameters
    ----------
    assoc : Association
        Rows index ``inputs[k].frame``.
    inputs : sequence of Prepared
    rule : str
        Same-filter rule.
    plan : StepPlan
    bayes_on : bool
        Add ``log_bayes_factor`` and ``match_probability`` to the association rows.
    optnir_inputs : sequence of Prepared, optional
        Whose coverages define ``flag_optnir_obs`` (default ``inputs``; the tiled engine passes
        the whole catalogues' coverages).

    Returns
    -------
    (masterlist, associations) : pandas.DataFrame, pandas.DataFrame

    Raises
    ------
    InputError
        ``bayes_on`` without positional errors for every catalogue.
    """
    ml, _shared = assemble(assoc, [p.frame for p in inputs], rule=rule)
    keys = object_keys(assoc.ra, assoc.dec)
    ml.insert(0, "object_key", keys)
    ml.insert(0, "help_id", pd.array(help_ids(assoc.ra, assoc.dec, keys), dtype="string"))
    flags = _optnir(ml, optnir_inputs if optnir_inputs is not None else inputs)
    ml["flag_optnir_obs"] = flags["flag_optnir_obs"].to_numpy()
    ml["flag_optnir_det"] = flags["flag_optnir_det"].to_numpy()
    ml = ml[ordered_columns(list(ml.columns))]
    extra = _bayes_columns(assoc, inputs, plan) if bayes_on else None
    ids = []
    for p in inputs:
        col = f"{p.survey}_id"
        ids.append(p.frame[col].to_numpy() if col in p.frame.columns else np.arange(len(p.frame)))
    at = association_table(assoc, keys, ids, extra)
    return ml, at
