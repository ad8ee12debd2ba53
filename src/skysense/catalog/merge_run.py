"""Running a merge from its configuration: read prepared catalogues, merge, write the outputs.

Outputs in the ``--out`` directory (written atomically as a whole)::

    <name>/                  the masterlist, HATS layout (Parquet)
    associations/part-*.parquet  object_key, survey, source_id, separation_arcsec, ambiguity,
                             is_position (+ log_bayes_factor, match_probability with bayes)
    provenance.json          configuration, radii, suggestions, input checksums, the inputs'
                             own metadata (offsets, aperture corrections), package versions
    radius_<survey>.png      separation histogram of each merge step, with the radii

The merge itself is :func:`skysense.catalog.merge.associate` (single machine) or
:func:`skysense.catalog.engine.associate_tiled` (Dask, tile by tile); both produce the same
objects, and :func:`build_objects` turns them into masterlist rows in either case.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_dir
from skysense.catalog import bayes
from skysense.catalog.hats_io import write_hats
from skysense.catalog.masterlist import (
    association_table,
    file_checksum,
    help_ids,
    object_keys,
    package_versions,
)
from skysense.catalog.match import _check_positions, pairs_within
from skysense.catalog.merge import Association, assemble, associate, band_columns
from skysense.catalog.merge_config import MergeConfig
from skysense.catalog.radius import RadiusSuggestion, plot_radius, suggest_radius_from_separations
from skysense.errors import ConfigError, InputError

__all__ = [
    "Prepared",
    "StepPlan",
    "load_prepared",
    "read_inputs",
    "plan_steps",
    "build_objects",
    "run_merge",
    "ordered_columns",
]


@dataclasses.dataclass
class Prepared:
    """One prepared catalogue ready to merge."""

    survey: str
    frame: pd.DataFrame
    ra: np.ndarray
    dec: np.ndarray
    path: Path | None = None
    position_error_arcsec: np.ndarray | None = None
    moc: object | None = None
    meta: dict = dataclasses.field(default_factory=dict)
    # Set when the table stays on disk (a HATS input to the tiled merge): ``frame`` is then
    # empty (the schema only) and tiles read the rows themselves.
    hats_dir: Path | None = None
    position_columns: tuple[str, str] | None = None
    error_column: str | None = None


@dataclasses.dataclass
class StepPlan:
    """Radius and Bayesian prior of each merge step (index 0 unused)."""

    radii_arcsec: list[float]
    suggestions: list[RadiusSuggestion | None]
    log_prior_odds: list[float]
    area_sr: list[float]


_ID_RE = re.compile(r"^([a-z0-9_]+)_id$")


def _guess_survey(frame: pd.DataFrame, path: Path | None) -> str:
    names = [m.group(1) for c in frame.columns if (m := _ID_RE.match(c))]
    names = [n for n in names if f"{n}_ra" in frame.columns and f"{n}_dec" in frame.columns]
    if len(names) == 1:
        return names[0]
    if path is not None:
        stem = re.sub(r"[^a-z0-9_]", "_", path.name.split(".")[0].lower())
        if f"{stem}_id" in frame.columns:
            return stem
    raise InputError(
        "cannot tell the survey name: expected exactly one <survey>_id column with "
        "<survey>_ra and <survey>_dec; set 'survey' in the merge configuration",
        path=path,
    )


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

    Raises
    ------
    InputError
        Empty table, missing position columns, or an invalid position (names file, column
        and row).
    """
    survey = survey or _guess_survey(frame, path)
    if len(frame) == 0:
        raise InputError("empty catalogue", path=path)
    cols = (f"{survey}_ra", f"{survey}_dec")
    if not all(c in frame.columns for c in cols):
        cols = ("ra", "dec")
    for c in cols:
        if c not in frame.columns:
            raise InputError(
                f"position column missing (looked for {survey}_ra/_dec and ra/dec)",
                path=path,
                column=c,
            )
    values = []
    for c in cols:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v) | ((np.abs(v) > 90) if c.endswith("dec") else False)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"invalid position value {frame[c].iloc[row]!r}", path=path, column=c, row=row
            )
        values.append(v)
    ra, dec = _check_positions(values[0], values[1], survey)
    err = None
    if position_error_arcsec is not None:
        err = np.full(len(frame), float(position_error_arcsec))
    else:
        for c in (c.format(survey) for c in _ERROR_COLUMNS):
            if c in frame.columns:
                err = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
                break
    meta = dict(frame.attrs.get("meta", {}) or {})
    return Prepared(survey, frame, ra, dec, path, err, moc, meta)


def _read_meta(path: Path) -> dict:
    """What the preparation recorded: ``<file>.provenance.json`` beside the file (astrometric
    offsets, aperture corrections), else the file's own ``skysense`` metadata."""
    side = path.with_name(path.name + ".provenance.json")
    if side.is_file():
        try:
            return json.loads(side.read_text())
        except (OSError, ValueError):
            pass
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            md = pq.read_schema(path).metadata or {}
            if b"skysense" in md:
                return json.loads(md[b"skysense"])
        elif path.suffix.lower() in (".fits", ".fit"):
            from astropy.io import fits

            with fits.open(path) as hdul:
                header = hdul[1].header if len(hdul) > 1 else hdul[0].header
                return {
                    k: header[k]
                    for k in header
                    if k.startswith(("ASTR", "APCOR", "DRA", "DDEC", "SURVEY"))
                }
    except Exception:  # noqa: BLE001 - metadata is informative only
        return {}
    return {}


_ERROR_COLUMNS = ("{}_poserr_arcsec", "{}_pos_err", "position_error_arcsec")


def _read_hats_positions(entry, moc) -> Prepared:
    """A HATS input, reading only its positions (and position errors); rows stay on disk."""
    import pyarrow.parquet as pq

    from skysense.catalog.hats_io import read_hats_table

    schema = pq.read_schema(entry.file / "dataset" / "_common_metadata")
    frame = schema.empty_table().to_pandas().drop(columns=["_healpix_29"], errors="ignore")
    survey = entry.survey or _guess_survey(frame, entry.file)
    cols = (f"{survey}_ra", f"{survey}_dec")
    if not all(c in frame.columns for c in cols):
        cols = ("ra", "dec")
    err_col = None
    if entry.position_error_arcsec is None:
        err_col = next(
            (c.format(survey) for c in _ERROR_COLUMNS if c.format(survey) in frame.columns), None
        )
    needed = [c for c in (*cols, err_col) if c is not None and c in frame.columns]
    prep = load_prepared(
        read_hats_table(entry.file, columns=needed), survey=survey, path=entry.file,
        position_error_arcsec=entry.position_error_arcsec, moc=moc,
    )  # fmt: skip
    prep.frame = frame
    prep.hats_dir = entry.file
    prep.position_columns = cols
    prep.error_column = err_col
    return prep


def read_inputs(
    config: MergeConfig, *, progress: bool = False, positions_only: bool = False
) -> list[Prepared]:
    """Read and check every catalogue named in ``config`` (files, or HATS directories).

    With ``positions_only``, HATS inputs are not loaded: only their positions (and position
    errors) are read, for the tiled merge, whose tiles read the rows they need.
    """
    from tqdm import tqdm

    from skysense.catalog.hats_io import read_hats_table
    from skysense.catalog.io import read_catalogue

    out = []
    for entry in tqdm(config.catalogues, desc="reading catalogues", disable=not progress):
        # The preparation writes <stem>_moc.fits beside the table; use it unless told otherwise.
        moc_file = entry.moc or entry.file.with_name(entry.file.name.split(".")[0] + "_moc.fits")
        moc = None
        if moc_file.is_file():
            from skysense.catalog.moc import read_moc

            moc = read_moc(moc_file)
        if entry.file.is_dir() and positions_only:
            prep = _read_hats_positions(entry, moc)
            prep.meta = _read_meta(entry.file)
            out.append(prep)
            continue
        if entry.file.is_dir():
            frame = read_hats_table(entry.file).drop(columns=["_healpix_29"], errors="ignore")
        else:
            frame = read_catalogue(entry.file)
        prep = load_prepared(
            frame, survey=entry.survey, path=entry.file,
            position_error_arcsec=entry.position_error_arcsec, moc=moc,
        )  # fmt: skip
        prep.meta = {**_read_meta(entry.file), **prep.meta}
        out.append(prep)
    names = [p.survey for p in out]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"two catalogues have the same survey name ({names})",
            path=config.path,
            key="catalogues",
        )
    return out


def _coverage(p: Prepared):
    from skysense.catalog.moc import coverage_moc

    if p.moc is None:
        p.moc = coverage_moc(p.ra, p.dec)
    return p.moc


def plan_steps(
    config: MergeConfig, inputs: Sequence[Prepared], *, progress: bool = False
) -> StepPlan:
    """Radius suggestion (and the radius used) and Bayesian prior for every step.

    The histogram of step ``k`` is that of all pairs between catalogue ``k`` and the
    catalogues before it, within ``search_radius_arcsec``; it depends on the inputs only, so
    the single-machine and tiled merges use the same radii.

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
    from tqdm import tqdm

    for k in tqdm(range(1, len(inputs)), desc="separation histograms", disable=not progress):
        prev_ra = np.concatenate([p.ra for p in inputs[:k]])
        prev_dec = np.concatenate([p.dec for p in inputs[:k]])
        search = config.search_radius_arcsec
        pairs = pairs_within(inputs[k].ra, inputs[k].dec, prev_ra, prev_dec, search)
        wanted = config.step_radius(k)
        try:
            sugg = suggest_radius_from_separations(pairs.sep_arcsec, search)
        except InputError as exc:
            if wanted == "auto":
                raise InputError(f"radius_arcsec: auto for {inputs[k].survey!r}: {exc}") from exc
            sugg = None
        suggestions.append(sugg)
        radius = sugg.radius_arcsec if wanted == "auto" else float(wanted)
        radii.append(radius)
        if config.bayes:
            prev_moc = moc_union([_coverage(p) for p in inputs[:k]])
            overlap = prev_moc.intersection(_coverage(inputs[k]))
            area_sr = max(moc_area_deg2(overlap), 1e-12) * (np.pi / 180) ** 2
            n_common = sugg.n_true if sugg is not None else len(pairs.i1)
            prior = bayes.prior_from_counts(
                int(round(max(n_common, 1))), len(prev_ra), len(inputs[k].ra)
            )
            # The paper's B compares with positions uniform over the whole sphere; over a field
            # of area A the chance hypothesis is A / 4 pi times likelier, hence the offset.
            log_odds.append(np.log(prior) - np.log1p(-prior) + np.log(area_sr / (4 * np.pi)))
            areas.append(area_sr)
        else:
            log_odds.append(0.0)
            areas.append(0.0)
    return StepPlan(radii, suggestions, log_odds, areas)


def _optnir(ml: pd.DataFrame, inputs: Sequence[Prepared]) -> pd.DataFrame:
    from skysense.catalog.bands import is_known_band
    from skysense.catalog.moc import optnir_flags, regime_mocs

    per_survey = {}
    for p in inputs:
        bands = [b for b in band_columns(list(p.frame.columns)) if is_known_band(b)]
        if bands:
            per_survey[p.survey] = (_coverage(p), bands)
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
    """
    ml, _shared = assemble(assoc, [p.frame for p in inputs], rule=rule)
    keys = object_keys(assoc.ra, assoc.dec)
    ml.insert(0, "object_key", keys)
    ml.insert(0, "help_id", pd.array(help_ids(assoc.ra, assoc.dec, keys), dtype="string"))
    flags = _optnir(ml, optnir_inputs if optnir_inputs is not None else inputs)
    ml["flag_optnir_obs"] = flags["flag_optnir_obs"].to_numpy()
    ml["flag_optnir_det"] = flags["flag_optnir_det"].to_numpy()
    ml = ml[ordered_columns(list(ml.columns))]
    extra = None
    if bayes_on:
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
            lb = bayes.log_bayes_factor(
                assoc.sep_arcsec[sel, k], obj_err, err_k[assoc.rows[sel, k]]
            )
            log_b[sel, k] = lb
            prob[sel, k] = bayes.match_probability_from_log_odds(lb + plan.log_prior_odds[k])
        extra = {"log_bayes_factor": log_b, "match_probability": prob}
    ids = []
    for p in inputs:
        col = f"{p.survey}_id"
        ids.append(p.frame[col].to_numpy() if col in p.frame.columns else np.arange(len(p.frame)))
    at = association_table(assoc, keys, ids, extra)
    return ml, at


def _provenance(config, inputs, plan, extra) -> dict:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "field": config.field,
        "configuration": config.as_dict(),
        "surveys": [p.survey for p in inputs],
        "radii_arcsec": {inputs[k].survey: plan.radii_arcsec[k] for k in range(1, len(inputs))},
        "suggested_radii_arcsec": {
            inputs[k].survey: (None if s is None else s.radius_arcsec)
            for k, s in enumerate(plan.suggestions)
            if k > 0
        },
        "same_filter_rule": config.same_filter_rule,
        "inputs": [
            {
                "survey": p.survey,
                "file": None if p.path is None else str(p.path),
                "sha256": None if p.path is None else file_checksum(p.path),
                "n_rows": len(p.ra),
                "metadata": p.meta,
            }
            for p in inputs
        ],
        "package_versions": package_versions(),
        **extra,
    }


def run_merge(
    config: MergeConfig,
    out_dir: str | Path,
    *,
    fits_path: str | Path | None = None,
    scheduler: str | None = None,
    tiled: bool = False,
    tile_order: int | None = None,
    progress: bool = False,
) -> dict:
    """Merge the configured catalogues and write the outputs into ``out_dir`` (atomically).

    Parameters
    ----------
    config : MergeConfig
    out_dir : path-like
    fits_path : path-like, optional
        Also write the masterlist as FITS here (overrides ``output.fits``).
    scheduler : str, optional
        Dask scheduler address for the tiled merge (implies ``tiled``).
    tiled : bool
        Merge tile by tile on Dask (:mod:`skysense.catalog.engine`) instead of in memory.
    tile_order : int, optional
        HEALPix order of the tiles (default: chosen from the data).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        Summary: number of objects, radii, output paths.
    """
    out_dir = Path(out_dir)
    # The tiled merge reads HATS inputs tile by tile: only their positions are loaded here.
    inputs = read_inputs(config, progress=progress, positions_only=tiled or scheduler is not None)
    plan = plan_steps(config, inputs, progress=progress)
    surveys = [p.survey for p in inputs]
    name = config.output.name
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        for k in range(1, len(inputs)):
            if plan.suggestions[k] is not None:
                plot_radius(
                    plan.suggestions[k], tmp / f"radius_{inputs[k].survey}.png",
                    title=f"{inputs[k].survey} vs {', '.join(surveys[:k])}",
                    used_radius_arcsec=plan.radii_arcsec[k],
                )  # fmt: skip
        if tiled or scheduler is not None:
            from skysense.catalog.engine import merge_tiled

            n_objects, extra = merge_tiled(
                inputs, plan, tmp / name, tmp / "associations",
                rule=config.same_filter_rule, bayes_on=config.bayes,
                partition_rows=config.output.partition_rows, scheduler=scheduler,
                tile_order=tile_order, progress=progress,
            )  # fmt: skip
            ml = None
        else:
            assoc = associate([(p.ra, p.dec) for p in inputs], plan.radii_arcsec, surveys)
            ml, at = build_objects(
                assoc, inputs, rule=config.same_filter_rule, plan=plan, bayes_on=config.bayes
            )
            write_hats(
                ml, tmp / name, catalog_name=name, partition_rows=config.output.partition_rows
            )
            (tmp / "associations").mkdir()
            at.to_parquet(tmp / "associations" / "part-0.parquet", index=False)
            n_objects, extra = len(ml), {"engine": "single-machine"}
        prov = _provenance(config, inputs, plan, extra)
        prov["n_objects"] = int(n_objects)
        (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, default=str))
    fits = fits_path or (out_dir / config.output.fits if config.output.fits else None)
    if fits is not None:
        from skysense.catalog.hats_io import read_hats_table
        from skysense.catalog.io import write_catalogue

        table = ml if ml is not None else read_hats_table(out_dir / name)
        table = table.drop(columns=["_healpix_29"], errors="ignore")
        write_catalogue(table, fits, format="fits")
    return {
        "n_objects": int(n_objects),
        "radii_arcsec": plan.radii_arcsec[1:],
        "masterlist": str(out_dir / name),
        "fits": None if fits is None else str(fits),
    }
