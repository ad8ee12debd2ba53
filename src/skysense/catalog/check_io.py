"""The masterlist validation report on disk: read a masterlist (and the merge outputs beside
it), compute the checks of :mod:`skysense.catalog.check`, write the page and its PNGs.

The masterlist and the association table are read partition by partition in Dask tasks
(:func:`skysense._dask.dask_client`): each returns summable summaries (column statistics,
number counts, counts below thresholds); medians and MADs are exact, found in a few passes
(:class:`skysense.catalog.check.KthSearch`). The driver never holds either table whole. The
survey-to-survey comparisons through the association table read the merge's inputs, which
they do only for inputs given as single files (small fields)."""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_dir
from skysense.catalog.check import (
    CHI2_MAX,
    KthSearch,
    chi2_outliers,
    column_stats,
    count_keys,
    counts_from_keys,
    filter_letter,
    magnitude_comparison,
    merge_column_stats,
    problems_from_stats,
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


def _input_frames(ml_path: Path) -> dict[str, pd.DataFrame]:
    """The prepared inputs of the merge given as single files (from its provenance), by
    survey; empty without one."""
    prov_file = ml_path.parent / "provenance.json"
    if not prov_file.is_file():
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


def _survey_band_pairs(frames: dict[str, pd.DataFrame], assoc: pd.DataFrame | None):
    """(band, survey1, survey2, frame with m/merr of both) for bands several surveys measure,
    from the merge's inputs (:func:`_input_frames`)."""
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


def _survey_size_pairs(frames: dict[str, pd.DataFrame], assoc: pd.DataFrame | None):
    """(survey1, survey2, their radii of the same objects) for surveys that both measure sizes."""
    frames = {s: f for s, f in frames.items() if "r_half_arcsec" in f}
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


def _sources(path: Path, *, hats: bool = True) -> list[str]:
    """The partition files of a HATS directory (or, ``hats=False``, of any Parquet dataset
    directory), or the file itself."""
    if path.is_dir():
        if hats or (path / "dataset").is_dir():
            from skysense.catalog.hats_io import hats_files

            return [str(f) for f in hats_files(path)]
        files = sorted(str(f) for f in path.rglob("*.parquet") if f.is_file())
        if not files:
            raise InputError("no Parquet files in the directory", path=path)
        return files
    return [str(path)]


def _read_part(src: str, columns: list[str] | None = None) -> pd.DataFrame:
    if src.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        df = pq.read_table(src, columns=columns).to_pandas()
    else:
        df = read_masterlist(src)
    return df.drop(columns=["_healpix_29"], errors="ignore")


def _columns(src: str) -> list[str]:
    if src.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(src).names
        except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
            raise InputError(f"cannot read: {exc}", path=src) from exc
        return [c for c in names if c != "_healpix_29"]
    return list(_read_part(src).columns)


def _num(df: pd.DataFrame, col: str | None) -> np.ndarray:
    if col is None or col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _diff(df: pd.DataFrame, pair) -> tuple[np.ndarray, np.ndarray]:
    """(m1 - m2, merr1^2 + merr2^2) over rows where both magnitudes are finite."""
    _, c1, e1, c2, e2 = pair
    m1, m2 = _num(df, c1), _num(df, c2)
    ok = np.isfinite(m1) & np.isfinite(m2)
    v1, v2 = (np.nan_to_num(_num(df, e)[ok], nan=0.0) for e in (e1, e2))
    return m1[ok] - m2[ok], v1**2 + v2**2


def _ml_summary(src: str, pairs, bands, bin_width: float) -> dict:
    df = _read_part(src)
    diffs = {}
    for pair in pairs:
        d, _ = _diff(df, pair)
        diffs[pair[0]] = (len(d), float(d.min()) if len(d) else np.nan,
                          float(d.max()) if len(d) else np.nan)  # fmt: skip
    return {
        "n": len(df),
        "stats": column_stats(df),
        "counts": {b: count_keys(_num(df, f"m_{b}"), bin_width) for b in bands},
        "flag_merged": int(df["flag_merged"].sum()) if "flag_merged" in df.columns else 0,
        "diffs": diffs,
    }


def _ml_values(src: str, keys: list, pairs, medians: dict) -> dict:
    by_label = {p[0]: p for p in pairs}
    df = _read_part(src, columns=sorted({c for p in pairs for c in p[1:] if c is not None}))
    out = {}
    for kind, label in keys:
        d, _ = _diff(df, by_label[label])
        out[(kind, label)] = d if kind == "d" else np.abs(d - medians[label])
    return out


def _ml_tail(src: str, pairs, medians: dict, ranges: dict, chi2_max: float) -> dict:
    """Outliers and the 60-bin histogram of each comparison, given its median and range."""
    df = _read_part(src, columns=sorted({c for p in pairs for c in p[1:] if c is not None}))
    out = {}
    for pair in pairs:
        label = pair[0]
        if label not in medians:
            continue
        d, var = _diff(df, pair)
        hist, _ = np.histogram(d, bins=60, range=ranges[label])
        out[label] = (chi2_outliers(d, var, medians[label], chi2_max), hist)
    return out


def _assoc_part(src: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    t = pq.read_table(src, columns=["survey", "separation_arcsec", "is_position"]).to_pandas()
    return t[~t["is_position"].astype(bool)]


def _assoc_summary(src: str) -> dict:
    out = {}
    for survey, grp in _assoc_part(src).groupby("survey"):
        sep = grp["separation_arcsec"].to_numpy(float)
        out[str(survey)] = (len(sep), float(sep.min()), float(sep.max()))
    return out


def _assoc_values(src: str, keys: list, hist_ranges: dict | None = None) -> dict:
    t = _assoc_part(src)
    out = {}
    surveys = {k[1] for k in keys} | set(hist_ranges or {})
    for survey in surveys:
        sep = t.loc[t["survey"].astype(str) == survey, "separation_arcsec"].to_numpy(float)
        if ("sep", survey) in keys:
            out[("sep", survey)] = sep
        if hist_ranges and survey in hist_ranges:
            out[("hist", survey)] = np.histogram(sep, bins=50, range=hist_ranges[survey])[0]
    return out


def _kth_task(extract, src: str, queries: dict) -> dict:
    """One partition's answer to :class:`KthSearch` queries: counts below thresholds, or the
    values inside a search's bracket."""
    values = extract(src, list(queries))
    out = {}
    for key, (mode, arg) in queries.items():
        v = np.sort(values[key])
        out[key] = (
            KthSearch.partition_counts(v, arg) if mode == "counts" else arg.partition_values(v)
        )
    return out


def _compute(tasks, client) -> list:
    from skysense._dask import compute_with_progress

    return compute_with_progress(tasks, client=client)


def _medians(extract, sources: list[str], ranges: dict, client) -> dict:
    """Exact medians of values spread over ``sources``: ``ranges`` key -> (n, min, max)."""
    import dask

    searches: dict = {}
    for key, (n, lo, hi) in ranges.items():
        if n:
            searches[key] = [KthSearch(k, lo, hi, n) for k in sorted({(n - 1) // 2, n // 2})]
    while True:
        queries, owners = {}, {}
        for key, group in searches.items():
            for j, s in enumerate(group):
                if not s.done:
                    # One query per value set and rank (keys are (kind, label, j) here).
                    q = (*key, j)
                    queries[q] = ("values", s) if s.collecting else ("counts", s.thresholds())
                    owners[q] = s
        if not queries:
            break
        tasks = [dask.delayed(_kth_task)(functools.partial(_strip_rank, extract), src, queries)
                 for src in sources]  # fmt: skip
        results = _compute(tasks, client)
        for q, s in owners.items():
            if queries[q][0] == "counts":
                s.update_counts(KthSearch.combine([r[q] for r in results]))
            else:
                s.update_values([r[q] for r in results])
    return {key: (group[0].value + group[-1].value) / 2 for key, group in searches.items()}


def _strip_rank(extract, src: str, keys: list) -> dict:
    """``extract`` for (kind, label, rank) keys: the values of (kind, label)."""
    base = extract(src, sorted({k[:2] for k in keys}))
    return {k: base[k[:2]] for k in keys}


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
    scheduler: str | None = None,
) -> Path:
    """Write the validation report of a masterlist into ``out_dir`` (atomically).

    Streams: one Dask task per masterlist partition and association file per pass.

    Parameters
    ----------
    masterlist : path-like
        HATS directory (as written by ``skysense catalog merge``), Parquet or FITS file.
    out_dir : path-like
        Report directory: ``report.md`` plus PNG plots.
    associations : path-like, optional
        Association table (default: ``associations`` beside the masterlist, if present).
    scheduler : str, optional
        Dask scheduler (:func:`skysense._dask.dask_client`).

    Returns
    -------
    pathlib.Path
        The report page.
    """
    import dask

    from skysense._dask import dask_client

    ml_path = Path(masterlist)
    if not ml_path.exists():
        raise InputError("file not found", path=ml_path)
    sources = _sources(ml_path)
    columns = _columns(sources[0])
    a_path = Path(associations) if associations else ml_path.parent / "associations"
    a_sources = _sources(a_path, hats=False) if a_path.exists() else []
    bands = band_columns(columns)
    names = [b for b in bands if "m" in bands[b]]
    pairs = []
    for i, b1 in enumerate(names):
        for b2 in names[i + 1 :]:
            if filter_letter(b1) == filter_letter(b2):
                e1, e2 = (f"merr_{b}" if f"merr_{b}" in columns else None for b in (b1, b2))
                pairs.append((f"m_{b1} - m_{b2}", f"m_{b1}", e1, f"m_{b2}", e2))
    with dask_client(scheduler) as client:
        tasks = [dask.delayed(_ml_summary)(src, pairs, names, 0.5) for src in sources]
        tasks += [dask.delayed(_assoc_summary)(src) for src in a_sources]
        results = _compute(tasks, client)
        summaries, a_summaries = results[: len(sources)], results[len(sources) :]
        n_rows = sum(r["n"] for r in summaries)
        if n_rows == 0:
            raise InputError("empty masterlist", path=ml_path)
        ranges = {}
        for label, *_ in pairs:
            parts = [r["diffs"][label] for r in summaries if r["diffs"][label][0]]
            ranges[("d", label)] = (sum(p[0] for p in parts), min((p[1] for p in parts), default=0.0),
                                    max((p[2] for p in parts), default=0.0))  # fmt: skip
        extract = functools.partial(_ml_values, pairs=pairs, medians={})
        medians = {k[1]: v for k, v in _medians(extract, sources, ranges, client).items()}
        extract = functools.partial(_ml_values, pairs=pairs, medians=medians)
        mad_ranges = {("ad", lab): (ranges[("d", lab)][0], 0.0,
                                    max(abs(ranges[("d", lab)][1] - m), abs(ranges[("d", lab)][2] - m)))
                      for lab, m in medians.items()}  # fmt: skip
        mads = {k[1]: v for k, v in _medians(extract, sources, mad_ranges, client).items()}
        hist_ranges = {lab: ranges[("d", lab)][1:] for lab in medians}
        tails = _compute([dask.delayed(_ml_tail)(src, pairs, medians, hist_ranges, chi2_max)
                          for src in sources], client)  # fmt: skip
        sep_ranges: dict = {}
        for r in a_summaries:
            for survey, (n, lo, hi) in r.items():
                old = sep_ranges.get(("sep", survey), (0, np.inf, -np.inf))
                sep_ranges[("sep", survey)] = (old[0] + n, min(old[1], lo), max(old[2], hi))
        sep_medians = {
            k[1]: v for k, v in _medians(_assoc_values, a_sources, sep_ranges, client).items()
        }
        sep_hists = {}
        if sep_medians:
            h_ranges = {s: sep_ranges[("sep", s)][1:] for s in sep_medians}
            parts = _compute([dask.delayed(_assoc_values)(src, [], h_ranges) for src in a_sources],
                             client)  # fmt: skip
            for s in sep_medians:
                sep_hists[s] = np.sum([p[("hist", s)] for p in parts if ("hist", s) in p], axis=0)
    comparisons = []
    for label, *_ in pairs:
        n = ranges[("d", label)][0]
        if not n:
            comparisons.append((label, magnitude_comparison([], [], [], [], chi2_max), None))
            continue
        n_out = sum(t[label][0] for t in tails)
        hist = np.sum([t[label][1] for t in tails], axis=0)
        st = {"n": n, "median": medians[label], "mad": mads[label], "n_outliers": n_out,
              "outlier_fraction": n_out / n}  # fmt: skip
        comparisons.append((label, st, (np.linspace(*hist_ranges[label], 61), hist)))
    # Survey-to-survey comparisons read the merge's inputs (once): only single-file inputs.
    frames = _input_frames(ml_path) if a_path.exists() else {}
    assoc = pd.read_parquet(a_path) if frames else None
    for band, s1, s2, both in _survey_band_pairs(frames, assoc):
        st = magnitude_comparison(
            both[f"m_{s1}"], both[f"merr_{s1}"], both[f"m_{s2}"], both[f"merr_{s2}"], chi2_max
        )
        comparisons.append((f"{band}: {s1} - {s2}", st, None))
    stats = merge_column_stats([r["stats"] for r in summaries])
    keys: dict[str, Counter[int]] = {b: Counter() for b in names}
    for r in summaries:
        for b, kc in r["counts"].items():
            keys[b].update(kc)
    lines = [
        f"# Masterlist check: `{ml_path.name}`",
        "",
        f"{n_rows} objects, {len(columns)} columns.",
        "",
    ]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        problems = problems_from_stats(stats)
        lines += ["## Column problems", ""]
        if len(problems):
            lines += ["| column | problem | rows |", "|---|---|---|"]
            lines += [f"| `{r.column}` | {r.problem} | {r.count} |" for r in problems.itertuples()]
        else:
            lines.append("None: no all-missing, all-zero or negative flux/error columns.")
        lines += ["", f"## Magnitude differences (outliers: chi2 > {chi2_max:g})", ""]
        if comparisons:
            lines += [
                "| comparison | n | median | MAD | outliers | fraction |",
                "|---|---|---|---|---|---|",
            ]
            for k, (label, st, hist) in enumerate(comparisons):
                lines.append(
                    f"| {label} | {st['n']} | {st['median']:.4f} | {st['mad']:.4f} | {st['n_outliers']} | {st['outlier_fraction']:.4f} |"
                )
                if st["n"]:
                    edges, counts = (
                        hist if hist is not None else np.histogram(st["diff"], bins=60)[::-1]
                    )
                    png = f"magdiff_{k}.png"
                    _plot(
                        tmp / png,
                        lambda ax, e=edges, c=counts, label=label: (
                            ax.stairs(c, e, color="k"),
                            ax.set_xlabel(label + " (mag)"),
                            ax.set_ylabel("objects"),
                        ),
                    )
                    lines += ["", f"![{label}]({png})", ""]
        else:
            lines.append("No filter is measured twice.")
        lines += ["", "## Sizes (half-light radius) across surveys", ""]
        sizes = _survey_size_pairs(frames, assoc)
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
            edges, counts = counts_from_keys(keys[band], 0.5)
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
            n_det = int(sum(keys[band].values()))
            lines += [f"- `m_{band}`: {n_det} measurements ![counts {band}]({png})"]
        lines += ["", "## Separations", ""]
        if sep_medians:
            for survey in sorted(sep_medians):
                n = sep_ranges[("sep", survey)][0]
                png = f"separation_{survey}.png"
                edges = np.linspace(*sep_ranges[("sep", survey)][1:], 51)
                _plot(
                    tmp / png,
                    lambda ax, e=edges, c=sep_hists[survey], n=survey: (
                        ax.stairs(c, e, color="k"),
                        ax.set_xlabel(f"{n}: separation (arcsec)"),
                        ax.set_ylabel("matches"),
                    ),
                )
                lines += [
                    f"- {survey}: {n} matches, median {sep_medians[survey]:.3f} arcsec ![sep {survey}]({png})"
                ]
        else:
            lines.append("No association table found.")
        if "flag_merged" in columns:
            lines += ["", f"{sum(r['flag_merged'] for r in summaries)} objects have flag_merged."]
        (tmp / "report.md").write_text("\n".join(lines) + "\n")
    return out_dir / "report.md"
