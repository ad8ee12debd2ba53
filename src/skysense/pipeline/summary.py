"""The run summary, checked against the simulation's truth when the field is simulated.

Pure scores (arrays in, numbers out):

- :func:`association_scores`: **purity**, the fraction of masterlist objects whose catalogue rows
  all belong to one true object, and **completeness**, the fraction of true objects with at least
  two (non-duplicate) rows in the masterlist whose rows all ended up in one masterlist object;
- :func:`xid_scores`: per band, the fraction of true fluxes inside the posterior 16-84 %
  interval (**68 % coverage**) and the median relative error of sources brighter than three
  times the median posterior sigma (**flux accuracy**);
- photo-z: :func:`skysense.photoz.metrics.summary` (sigma_NMAD, outlier fraction, bias) on the
  galaxies that were not in the training set;
- :func:`radio_scores`: the radio IDs against the simulated hosts (completeness, purity, the
  reported against the measured reliability, Q0 against the fraction of hosts in the
  masterlist);
- :func:`sed_scores`: the SED fits' Bayesian log stellar mass, SFR and dust luminosity against
  the simulated galaxies' true values (bias, scatter, 1-sigma coverage).

:func:`truth_summary` joins the pipeline outputs to a simulated field's truth tables
(``truth/catalogue_rows.parquet`` maps each catalogue row to its true object) and
:func:`write_summary` writes ``summary.json`` and ``summary.md`` atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_write_text

__all__ = [
    "association_scores",
    "main_truth_id",
    "xid_scores",
    "radio_scores",
    "sed_scores",
    "SED_SFR_MIN_LOG_SSFR",
    "SED_Z_TOLERANCE",
    "truth_summary",
    "write_summary",
    "summary_markdown",
]


def association_scores(true_ids: np.ndarray, duplicate: np.ndarray | None = None) -> dict:
    """Purity and completeness of a cross-match against the true objects.

    Parameters
    ----------
    true_ids : ndarray (n_objects, n_surveys) of int
        The true object behind each masterlist object's row in each survey; -1 where the object
        has no row from that survey.
    duplicate : ndarray (n_objects, n_surveys) of bool, optional
        Rows that are spurious duplicate detections (left out of completeness: removing them is
        the preparation's job, not the association's).

    Returns
    -------
    dict
        ``purity``, ``completeness``, ``n_objects``, ``n_pure``, ``n_true_multi``,
        ``n_true_whole``.
    """
    ids = np.asarray(true_ids, dtype=np.int64)
    has = ids >= 0
    members = has.sum(axis=1)
    lo = np.where(has, ids, np.iinfo(np.int64).max).min(axis=1)
    hi = np.where(has, ids, -1).max(axis=1)
    present = members > 0
    pure = present & (lo == hi)
    dup = np.zeros_like(has) if duplicate is None else np.asarray(duplicate, bool)
    obj, _ = np.nonzero(has & ~dup)
    truth = ids[has & ~dup]
    long = pd.DataFrame({"truth": truth, "obj": obj})
    g = long.groupby("truth")["obj"].agg(["size", "nunique"])
    multi = g[g["size"] >= 2]
    whole = int((multi["nunique"] == 1).sum())
    n_obj = int(present.sum())
    return {
        "purity": float(pure.sum() / n_obj) if n_obj else math.nan,
        "completeness": float(whole / len(multi)) if len(multi) else math.nan,
        "n_objects": n_obj,
        "n_pure": int(pure.sum()),
        "n_true_multi": int(len(multi)),
        "n_true_whole": whole,
    }


def main_truth_id(true_ids: np.ndarray) -> np.ndarray:
    """The most frequent true object among each row's entries (ties: the first column's), or -1.

    Parameters
    ----------
    true_ids : ndarray (n_objects, n_surveys) of int, -1 for none

    Returns
    -------
    ndarray (n_objects,) of int
    """
    ids = np.asarray(true_ids, dtype=np.int64)
    out = np.full(len(ids), -1, dtype=np.int64)
    best = np.zeros(len(ids), dtype=int)
    for k in range(ids.shape[1]):  # columns are in priority order: earlier wins ties
        cand = ids[:, k]
        votes = (ids == cand[:, None]).sum(axis=1)
        better = (cand >= 0) & (votes > best)
        out[better], best[better] = cand[better], votes[better]
    return out


def xid_scores(
    flux: np.ndarray, lower: np.ndarray, upper: np.ndarray, true_flux: np.ndarray
) -> dict:
    """Coverage and accuracy of XID+ fluxes against the true fluxes of one band.

    Parameters
    ----------
    flux, lower, upper : ndarray (n,), mJy
        Posterior median, 16th and 84th percentiles.
    true_flux : ndarray (n,), mJy
        The true flux of each source (NaN: unknown, left out).

    Returns
    -------
    dict
        ``n``, ``coverage_68`` (fraction of true fluxes in [lower, upper]), ``n_bright`` and
        ``median_rel_error_bright`` (median of (flux - true) / true for true > 3 x the median
        posterior sigma), ``median_pull`` (median of |flux - true| / sigma).
    """
    f, lo, hi, t = (np.asarray(a, float) for a in (flux, lower, upper, true_flux))
    ok = np.isfinite(f) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(t)
    f, lo, hi, t = f[ok], lo[ok], hi[ok], t[ok]
    if not len(f):
        return {"n": 0, "coverage_68": math.nan, "n_bright": 0,
                "median_rel_error_bright": math.nan, "median_pull": math.nan}  # fmt: skip
    sigma = np.maximum((hi - lo) / 2.0, 1e-12)
    bright = t > 3.0 * np.median(sigma)
    return {
        "n": int(len(f)),
        "coverage_68": float(np.mean((lo <= t) & (t <= hi))),
        "n_bright": int(bright.sum()),
        "median_rel_error_bright": (
            float(np.median((f[bright] - t[bright]) / t[bright])) if bright.any() else math.nan
        ),
        "median_pull": float(np.median(np.abs(f - t) / sigma)),
    }


def radio_scores(
    radio_truth: pd.DataFrame,
    help_true_id: pd.Series,
    associations: pd.DataFrame,
    q0: float,
    eligible: np.ndarray | None = None,
) -> dict:
    """Score radio IDs against the simulated hosts.

    Parameters
    ----------
    radio_truth : DataFrame
        ``radio_id``, ``object_id`` (the host) of every radio source.
    help_true_id : Series
        True object of each masterlist object (-1: none), indexed by ``help_id``.
    associations : DataFrame
        The radio association table: ``radio_id``, ``help_id``, ``reliability``, ``accepted``.
    q0 : float
        The fitted Q0.
    eligible : ndarray (n_objects,) of bool, optional
        Masterlist objects that can be counterparts (a magnitude inside the method's cells);
        default all.

    Returns
    -------
    dict
        ``n_radio``, ``n_hosts_in_masterlist``, ``n_hosts_eligible``, ``q0_true`` (the
        fraction of radio sources with an eligible host: what Q0 estimates), ``q0``,
        ``n_ids``, ``completeness`` (correct IDs over eligible hosts), ``purity`` (correct over
        IDs) and ``mean_reliability`` of the IDs.
    """
    host = radio_truth.set_index("radio_id")["object_id"]
    ok_ids = help_true_id >= 0
    in_any = host.isin(set(help_true_id[ok_ids].to_numpy().tolist()))
    if eligible is not None:
        ok_ids &= np.asarray(eligible, dtype=bool)
    in_ml = host.isin(set(help_true_id[ok_ids].to_numpy().tolist()))
    acc = associations[associations["accepted"]]
    truth_of_id = help_true_id.reindex(acc["help_id"].astype(str).to_numpy()).to_numpy()
    ok = truth_of_id == host.reindex(acc["radio_id"].to_numpy()).to_numpy()
    n_in = int(in_ml.sum())
    host_ok = in_ml.reindex(acc["radio_id"].to_numpy()).fillna(False).to_numpy(bool)
    return {
        "n_radio": int(len(host)),
        "n_hosts_in_masterlist": int(in_any.sum()),
        "n_hosts_eligible": n_in,
        "q0_true": n_in / max(len(host), 1),
        "q0": float(q0),
        "n_ids": int(len(acc)),
        "completeness": float((ok & host_ok).sum() / n_in) if n_in else float("nan"),
        "purity": float(ok.mean()) if len(acc) else float("nan"),
        "mean_reliability": float(acc["reliability"].mean()) if len(acc) else float("nan"),
    }


#: SFR is scored on star-forming truths only (log sSFR > -11 yr^-1): a quiescent model's SFR
#: can be 10^-20 of its mass per year, whose logarithm no photometry constrains.
SED_SFR_MIN_LOG_SSFR = -11.0
#: ``z_good``: galaxies fitted at a redshift within this fraction of (1 + z) of the truth.
SED_Z_TOLERANCE = 0.05


def sed_scores(true_log: np.ndarray, estimate: np.ndarray, sigma: np.ndarray) -> dict:
    """Recovery of one log quantity of the SED fits against the truth.

    Parameters
    ----------
    true_log, estimate, sigma : ndarray (n,), dex
        True value, Bayesian estimate and its standard deviation (log10 units); rows with a
        non-finite value are left out.

    Returns
    -------
    dict
        ``n``, ``bias`` (median of estimate - truth), ``scatter`` (standard deviation of the
        differences), ``nmad`` (1.4826 x median absolute deviation of them),
        ``coverage_1sigma`` (fraction with |estimate - truth| <= sigma).
    """
    t, e, s = (np.asarray(a, dtype=float) for a in (true_log, estimate, sigma))
    ok = np.isfinite(t) & np.isfinite(e) & np.isfinite(s)
    d = e[ok] - t[ok]
    if not d.size:
        return {"n": 0, "bias": math.nan, "scatter": math.nan, "nmad": math.nan,
                "coverage_1sigma": math.nan}  # fmt: skip
    return {
        "n": int(d.size),
        "bias": float(np.median(d)),
        "scatter": float(np.std(d)),
        "nmad": float(1.4826 * np.median(np.abs(d - np.median(d)))),
        "coverage_1sigma": float(np.mean(np.abs(d) <= s[ok])),
    }


def _sed_truth_scores(fit: pd.DataFrame, main: pd.Series, objects: pd.DataFrame) -> dict:
    """Per quantity :func:`sed_scores` of the fitted objects whose main true object is a galaxy
    with a known stellar mass (fields simulated with the SED model family)."""
    obj = objects.set_index("object_id")
    tid = main.reindex(fit["help_id"].astype(str).to_numpy()).fillna(-1).to_numpy(np.int64)
    galaxy = (obj["kind"].reindex(tid).astype(object) == "galaxy").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        truth = {q: np.log10(obj[col].reindex(tid).to_numpy(float)) for q, col in
                 (("mstar", "mstar_msun"), ("sfr", "sfr_msun_yr"), ("l_dust", "l_dust_lsun"))}  # fmt: skip
    star_forming = truth["sfr"] - truth["mstar"] > SED_SFR_MIN_LOG_SSFR
    z_true = obj["z"].reindex(tid).to_numpy(float)
    z_ok = np.abs(fit["redshift"].to_numpy(float) - z_true) <= SED_Z_TOLERANCE * (1 + z_true)

    def scores(rows: np.ndarray) -> dict:
        res = {}
        for q, keep in (("mstar", rows), ("sfr", rows & star_forming), ("l_dust", rows)):
            res[q] = sed_scores(truth[q][keep], fit[f"bayes_{q}"].to_numpy(float)[keep],
                                fit[f"bayes_{q}_err"].to_numpy(float)[keep])  # fmt: skip
        return res

    out = scores(galaxy)
    # the SED fit alone: galaxies fitted at (nearly) their true redshift (zspec, good zphot)
    out["z_good"] = scores(galaxy & z_ok)
    out["n_fitted_galaxies"] = int((galaxy & np.isfinite(fit["bayes_mstar"].to_numpy(float))).sum())
    return out


def _str_ids(values: pd.Series) -> pd.Series:
    s = values.astype("string")
    return s.str.strip()


def _member_truth(ml: pd.DataFrame, rows: pd.DataFrame, surveys: Sequence[str]):
    ids = np.full((len(ml), len(surveys)), -1, dtype=np.int64)
    dup = np.zeros((len(ml), len(surveys)), dtype=bool)
    for k, s in enumerate(surveys):
        sub = rows[rows["survey"] == s]
        lookup = pd.DataFrame(
            {
                "source_id": _str_ids(sub["source_id"]).to_numpy(),
                "object_id": sub["object_id"].to_numpy(np.int64),
                "dup": sub["is_duplicate"].to_numpy(bool),
            }
        ).drop_duplicates("source_id")
        key = pd.DataFrame({"source_id": _str_ids(ml[f"{s}_id"]).to_numpy()})
        joined = key.merge(lookup, on="source_id", how="left")
        ids[:, k] = joined["object_id"].fillna(-1).to_numpy(np.int64)
        dup[:, k] = joined["dup"].fillna(False).to_numpy(bool)
    return ids, dup


def _read_table(path: Path) -> pd.DataFrame:
    if Path(path).is_dir():
        from skysense.catalog.hats_io import read_hats_table

        return read_hats_table(path)
    return pd.read_parquet(path)


def truth_summary(
    field_dir: str | os.PathLike,
    *,
    masterlist: str | os.PathLike,
    surveys: Sequence[str] | None = None,
    xid: str | os.PathLike | None = None,
    training: str | os.PathLike | None = None,
    bands: Sequence[str] = (),
    radio: str | os.PathLike | None = None,
    sed: str | os.PathLike | None = None,
) -> dict:
    """Score the pipeline's outputs against a simulated field's truth.

    Parameters
    ----------
    field_dir : path
        A field written by :func:`skysense.sim.write_field`.
    masterlist : path
        The masterlist (HATS folder or Parquet, with photo-z columns when present).
    surveys : sequence of str, optional
        Surveys in merge priority order (default: from the ``<survey>_id`` columns).
    xid : path, optional
        The XID+ catalogue (Parquet).
    training : path, optional
        Parquet of the ``help_id`` used to train the photo-z (left out of its scores).
    bands : sequence of str
        Map bands of the XID+ catalogue.
    radio : path, optional
        Output folder of the radio IDs (``radio_associations.parquet``, ``radio_id.json``),
        scored when the field has ``truth/radio.parquet``.
    sed : path, optional
        The SED fits' ``properties.parquet`` (:mod:`skysense.sed`), scored when the field's
        truth carries stellar masses (simulated with the SED model family).

    Returns
    -------
    dict
        ``association``, ``xid`` (per band), ``photoz``, ``radio``, ``sed`` (per quantity:
        ``mstar``, ``sfr`` on star-forming truths, ``l_dust``; the same under ``z_good`` for
        the galaxies fitted within :data:`SED_Z_TOLERANCE` (1 + z) of their true redshift).
    """
    field = Path(field_dir)
    rows = pd.read_parquet(field / "truth" / "catalogue_rows.parquet")
    objects = pd.read_parquet(field / "truth" / "objects.parquet")
    ml = _read_table(Path(masterlist))
    if surveys is None:
        known = set(rows["survey"].unique())
        surveys = [c[:-3] for c in ml.columns if c.endswith("_id") and c[:-3] in known]
    ids, dup = _member_truth(ml, rows, surveys)
    out: dict = {"association": association_scores(ids, dup)}
    main = pd.Series(main_truth_id(ids), index=ml["help_id"].astype(str).to_numpy())
    if radio is not None and (field / "truth" / "radio.parquet").is_file():
        doc = json.loads((Path(radio) / "radio_id.json").read_text())
        edges = doc["settings"]["mag_edges"]
        mag = pd.to_numeric(ml[doc["magnitude"]], errors="coerce").to_numpy(float)
        out["radio"] = radio_scores(
            pd.read_parquet(field / "truth" / "radio.parquet"), main,
            pd.read_parquet(Path(radio) / "radio_associations.parquet"), doc["q0"],
            eligible=(mag >= edges[0]) & (mag <= edges[-1]),
        )  # fmt: skip
    if xid is not None and bands:
        cat = pd.read_parquet(xid)
        src = pd.read_parquet(field / "truth" / "map_sources.parquet").set_index("object_id")
        true_obj = main.reindex(cat["HELP_ID"].astype(str).to_numpy()).fillna(-1).to_numpy()
        per_band = {}
        for band in bands:
            B = band.upper()
            if f"F_{B}" not in cat or f"f_{band}" not in src:
                continue
            t = src[f"f_{band}"].reindex(true_obj).to_numpy(float)  # -1 gives NaN
            per_band[band] = xid_scores(cat[f"F_{B}"], cat[f"FErr_{B}_l"], cat[f"FErr_{B}_u"], t)
        out["xid"] = per_band
    if "zphot" in ml.columns:
        from skysense.photoz import metrics

        obj = objects.set_index("object_id")
        true_id = main.to_numpy()
        z = obj["z"].reindex(true_id).to_numpy(float)
        kind = obj["kind"].reindex(true_id).astype(object).to_numpy()
        keep = (kind == "galaxy") & np.isfinite(z) & (ml["zphot_flag"].to_numpy() == 0)
        n_train = 0
        if training is not None:
            used = set(pd.read_parquet(training)["help_id"].astype(str))
            in_train = ml["help_id"].astype(str).isin(used).to_numpy()
            n_train = int((keep & in_train).sum())
            keep &= ~in_train
        s = metrics.summary(z[keep], ml["zphot"].to_numpy(float)[keep],
                            ml["zphot_err"].to_numpy(float)[keep])  # fmt: skip
        out["photoz"] = {
            k: s[k]
            for k in (
                "n",
                "sigma_nmad",
                "outlier_fraction",
                "bias_mean",
                "bias_median",
                "coverage_1sigma",
            )  # fmt: skip
            if k in s
        }
        out["photoz"]["n_training_excluded"] = n_train
    if sed is not None and "mstar_msun" in objects.columns:
        out["sed"] = _sed_truth_scores(pd.read_parquet(sed), main, objects)
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def summary_markdown(doc: dict) -> str:
    """The run summary as Markdown (what ``summary.md`` holds)."""
    lines = [f"# Pipeline run summary: {doc.get('field', '')}", "", "## Steps", ""]
    lines += ["| step | seconds | what it did |", "|---|---|---|"]
    for step, s in (doc.get("steps") or {}).items():
        lines.append(f"| {step} | {_fmt(s.get('seconds', ''))} | {s.get('message', '')} |")
    truth = doc.get("truth")
    if not truth:
        lines += ["", "No truth available (not a simulated field): no scores."]
        return "\n".join(lines) + "\n"
    a = truth["association"]
    lines += ["", "## Against the simulation's truth", "", "### Masterlist association", ""]
    lines += [
        f"- purity: {_fmt(a['purity'])} ({a['n_pure']} of {a['n_objects']} objects hold rows "
        "of one true object only)",
        f"- completeness: {_fmt(a['completeness'])} ({a['n_true_whole']} of {a['n_true_multi']} "
        "true objects seen by several surveys are one masterlist object)",
    ]
    if truth.get("xid"):
        lines += ["", "### XID+ fluxes", "", "| band | n | 68% coverage | bright n | "
                  "median rel. error (bright) | median pull |", "|---|---|---|---|---|---|"]  # fmt: skip
        for band, s in truth["xid"].items():
            lines.append(
                f"| {band} | {s['n']} | {_fmt(s['coverage_68'])} | {s['n_bright']} | "
                f"{_fmt(s['median_rel_error_bright'])} | {_fmt(s['median_pull'])} |"
            )
    if truth.get("radio"):
        lines += ["", "### Radio IDs (likelihood ratio) against the simulated hosts", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in truth["radio"].items()]
    if truth.get("photoz"):
        p = truth["photoz"]
        lines += ["", "### Photometric redshifts (galaxies not in the training set)", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in p.items()]
    if truth.get("sed"):
        sd = truth["sed"]
        lines += ["", "### SED fits against the true galaxies (Bayesian estimates, dex)", ""]
        lines += [f"{sd.get('n_fitted_galaxies', 0)} fitted galaxies; SFR scored on the "
                  "star-forming ones (true log sSFR > -11); '(z good)': fitted within "
                  f"{SED_Z_TOLERANCE} (1 + z) of the true redshift.", ""]  # fmt: skip
        lines += ["| quantity | n | bias | scatter | NMAD | 1-sigma coverage |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for sub, what in ((sd, ""), (sd.get("z_good") or {}, " (z good)")):
            for q, name in (("mstar", "log M*"), ("sfr", "log SFR"), ("l_dust", "log L_dust")):
                if q in sub:
                    r = sub[q]
                    lines.append(f"| {name}{what} | {r['n']} | {_fmt(r['bias'])} | "
                                 f"{_fmt(r['scatter'])} | {_fmt(r['nmad'])} | "
                                 f"{_fmt(r['coverage_1sigma'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_summary(doc: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``out_dir`` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    j = atomic_write_text(out / "summary.json", json.dumps(clean(doc), indent=2) + "\n")
    m = atomic_write_text(out / "summary.md", summary_markdown(doc))
    return {"json": j, "markdown": m}
