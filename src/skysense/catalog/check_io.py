"""The masterlist validation report on disk: read a masterlist (and the merge outputs beside
it), compute the checks of :mod:`skysense.catalog.check`, write the page and its PNGs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_dir
from skysense.catalog.check import (
    CHI2_MAX,
    column_problems,
    filter_letter,
    magnitude_comparison,
    number_counts,
)
from skysense.catalog.merge import band_columns
from skysense.errors import InputError

__all__ = ["read_masterlist", "run_check"]


def read_masterlist(path: str | os.PathLike) -> pd.DataFrame:
    """A masterlist from a HATS directory, a Parquet file or any table file skysense reads.

    Raises
    ------
    InputError
        Missing, unreadable or empty masterlist.
    """
    from skysense.catalog.hats_io import read_hats_table
    from skysense.catalog.io import read_catalogue

    path = Path(path)
    if not path.exists():
        # Before the format is guessed from the name, so that a typo reads as what it is.
        raise InputError("file not found", path=path)
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        df = read_hats_table(path)
    else:
        df = read_catalogue(path)
    if len(df) == 0:
        raise InputError("empty masterlist", path=path)
    return df.drop(columns=["_healpix_29"], errors="ignore")


def _input_frames(ml_path: Path, assoc: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The prepared inputs of the merge (from its provenance), by survey; empty without one."""
    prov_file = ml_path.parent / "provenance.json"
    if assoc is None or not prov_file.is_file():
        return {}
    from skysense.catalog.io import read_catalogue

    prov = json.loads(prov_file.read_text())
    frames = {}
    for item in prov.get("inputs", []):
        file = item.get("file")
        if file and Path(file).is_file():
            frames[item["survey"]] = read_catalogue(file)
    return frames


def _keyed(f: pd.DataFrame, s: str, assoc: pd.DataFrame, values: dict) -> pd.DataFrame:
    """``values`` (columns of survey ``s``'s rows) with the ``object_key`` of each row."""
    ids = (
        f[f"{s}_id"].astype(str)
        if f"{s}_id" in f.columns
        else pd.Series(np.arange(len(f))).astype(str)
    )
    sub = pd.DataFrame({"source_id": ids.to_numpy(), **values})
    a = assoc[assoc["survey"] == s][["object_key", "source_id"]].astype({"source_id": str})
    return a.merge(sub, on="source_id")[["object_key", *values]]


def _survey_band_pairs(ml_path: Path, assoc: pd.DataFrame | None):
    """(band, survey1, survey2, frame with m/merr of both) for bands several surveys measure."""
    frames = _input_frames(ml_path, assoc)
    out = []
    bands = {s: band_columns(list(f.columns)) for s, f in frames.items()}
    surveys = list(frames)
    for i, s1 in enumerate(surveys):
        for s2 in surveys[i + 1 :]:
            for band in bands[s1]:
                if (
                    band not in bands[s2]
                    or "m" not in bands[s1][band]
                    or "m" not in bands[s2][band]
                ):
                    continue
                joined = []
                for s in (s1, s2):
                    f = frames[s]
                    values = {f"m_{s}": pd.to_numeric(f[bands[s][band]["m"]], errors="coerce").to_numpy(),
                              f"merr_{s}": pd.to_numeric(f[bands[s][band].get("merr", bands[s][band]["m"])], errors="coerce").to_numpy() if "merr" in bands[s][band] else np.nan}  # fmt: skip
                    joined.append(_keyed(f, s, assoc, values))
                both = joined[0].merge(joined[1], on="object_key")
                out.append((band, s1, s2, both))
    return out


def _survey_size_pairs(ml_path: Path, assoc: pd.DataFrame | None):
    """(survey1, survey2, their radii of the same objects) for surveys that both measure sizes."""
    frames = {s: f for s, f in _input_frames(ml_path, assoc).items() if "r_half_arcsec" in f}
    surveys = list(frames)
    out = []
    for i, s1 in enumerate(surveys):
        for s2 in surveys[i + 1 :]:
            a, b = (
                _keyed(frames[s], s, assoc, {s: frames[s]["r_half_arcsec"].to_numpy(float)})
                for s in (s1, s2)
            )
            both = a.merge(b, on="object_key")
            out.append((s1, s2, both[s1].to_numpy(), both[s2].to_numpy()))
    return out


def _plot(path: Path, draw) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


def run_check(
    masterlist: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    associations: str | os.PathLike | None = None,
    chi2_max: float = CHI2_MAX,
) -> Path:
    """Write the validation report of a masterlist into ``out_dir`` (atomically).

    Parameters
    ----------
    masterlist : path-like
        HATS directory (as written by ``skysense catalog merge``), Parquet or FITS file.
    out_dir : path-like
        Report directory: ``report.md`` plus PNG plots.
    associations : path-like, optional
        Association table (default: ``associations`` beside the masterlist, if present).

    Returns
    -------
    pathlib.Path
        The report page.
    """
    ml_path = Path(masterlist)
    ml = read_masterlist(ml_path)
    assoc = None
    a_path = Path(associations) if associations else ml_path.parent / "associations"
    if a_path.exists():
        assoc = pd.read_parquet(a_path)
    out_dir = Path(out_dir)
    lines = [
        f"# Masterlist check: `{ml_path.name}`",
        "",
        f"{len(ml)} objects, {ml.shape[1]} columns.",
        "",
    ]
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        problems = column_problems(ml)
        lines += ["## Column problems", ""]
        if len(problems):
            lines += ["| column | problem | rows |", "|---|---|---|"]
            lines += [f"| `{r.column}` | {r.problem} | {r.count} |" for r in problems.itertuples()]
        else:
            lines.append("None: no all-missing, all-zero or negative flux/error columns.")
        lines += ["", f"## Magnitude differences (outliers: chi2 > {chi2_max:g})", ""]
        bands = band_columns(list(ml.columns))
        comparisons = []
        names = [b for b in bands if "m" in bands[b]]
        for i, b1 in enumerate(names):
            for b2 in names[i + 1 :]:
                if filter_letter(b1) == filter_letter(b2):
                    st = magnitude_comparison(ml[f"m_{b1}"], ml.get(f"merr_{b1}", np.nan * ml[f"m_{b1}"]),
                                              ml[f"m_{b2}"], ml.get(f"merr_{b2}", np.nan * ml[f"m_{b2}"]), chi2_max)  # fmt: skip
                    comparisons.append((f"m_{b1} - m_{b2}", st))
        for band, s1, s2, both in _survey_band_pairs(ml_path, assoc):
            st = magnitude_comparison(
                both[f"m_{s1}"], both[f"merr_{s1}"], both[f"m_{s2}"], both[f"merr_{s2}"], chi2_max
            )
            comparisons.append((f"{band}: {s1} - {s2}", st))
        if comparisons:
            lines += [
                "| comparison | n | median | MAD | outliers | fraction |",
                "|---|---|---|---|---|---|",
            ]
            for k, (label, st) in enumerate(comparisons):
                lines.append(
                    f"| {label} | {st['n']} | {st['median']:.4f} | {st['mad']:.4f} | {st['n_outliers']} | {st['outlier_fraction']:.4f} |"
                )
                if st["n"]:
                    png = f"magdiff_{k}.png"
                    _plot(
                        tmp / png,
                        lambda ax, st=st, label=label: (
                            ax.hist(st["diff"], bins=60, color="k", histtype="step"),
                            ax.set_xlabel(label + " (mag)"),
                            ax.set_ylabel("objects"),
                        ),
                    )
                    lines += ["", f"![{label}]({png})", ""]
        else:
            lines.append("No filter is measured twice.")
        lines += ["", "## Sizes (half-light radius) across surveys", ""]
        sizes = _survey_size_pairs(ml_path, assoc)
        if sizes:
            from skysense.catalog.morphology import compare_sizes

            lines += ["| comparison | n | median ratio | NMAD of log ratio | Spearman |",
                      "|---|---|---|---|---|"]  # fmt: skip
            for s1, s2, r1, r2 in sizes:
                st = compare_sizes(r1, r2)
                if st["n"] < 3:
                    lines.append(f"| r_half {s2} / {s1} | {st['n']} | - | - | - |")
                    continue
                lines.append(f"| r_half {s2} / {s1} | {st['n']} | {st['median_ratio']:.3f} | "
                             f"{st['nmad_log_ratio']:.3f} | {st['spearman']:.3f} |")  # fmt: skip
        else:
            lines.append("No two surveys measure sizes of the same objects.")
        lines += ["", "## Number counts", ""]
        for band in names:
            edges, counts = number_counts(ml[f"m_{band}"])
            png = f"counts_{band}.png"
            _plot(
                tmp / png,
                lambda ax, e=edges, c=counts, b=band: (
                    ax.stairs(np.maximum(c, 0.5), e, color="k"),
                    ax.set_yscale("log"),
                    ax.set_xlabel(f"m_{b} (AB)"),
                    ax.set_ylabel("objects per 0.5 mag"),
                ),
            )
            n_det = int(np.isfinite(pd.to_numeric(ml[f"m_{band}"], errors="coerce")).sum())
            lines += [f"- `m_{band}`: {n_det} measurements ![counts {band}]({png})"]
        lines += ["", "## Separations", ""]
        if assoc is not None and len(assoc):
            for survey, grp in assoc[~assoc["is_position"]].groupby("survey"):
                sep = grp["separation_arcsec"].to_numpy(float)
                png = f"separation_{survey}.png"
                _plot(
                    tmp / png,
                    lambda ax, s=sep, n=survey: (
                        ax.hist(s, bins=50, color="k", histtype="step"),
                        ax.set_xlabel(f"{n}: separation (arcsec)"),
                        ax.set_ylabel("matches"),
                    ),
                )
                lines += [
                    f"- {survey}: {len(sep)} matches, median {np.median(sep):.3f} arcsec ![sep {survey}]({png})"
                ]
        else:
            lines.append("No association table found.")
        if "flag_merged" in ml.columns:
            lines += ["", f"{int(ml['flag_merged'].sum())} objects have flag_merged."]
        (tmp / "report.md").write_text("\n".join(lines) + "\n")
    return out_dir / "report.md"
