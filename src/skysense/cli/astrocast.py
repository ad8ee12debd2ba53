"""``skysense astrocast ...``: VCI, GP forecasts, honest hindcasts, Granger causality."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from skysense.cli._common import add_area, add_scheduler_option, add_verb
from skysense.errors import InputError

__all__ = ["register"]


def _add_input(p):
    p.add_argument(
        "input",
        metavar="INPUT",
        help="series: AstroCast .h5, .csv (date, region, ndvi/vci/vci3m columns) or .nc",
    )
    p.add_argument("-o", "--output", required=True, help="output .csv, .parquet or .nc")
    p.add_argument("--date-column", default="date", help="CSV date column (default date)")
    p.add_argument("--region-column", default="region", help="CSV region column")
    p.add_argument("--regions", help="comma-separated subset of regions")
    p.add_argument(
        "--from-ndvi",
        action="store_true",
        help="recompute VCI/VCI3M from NDVI (running extremes, no future data) "
        "even when the file has VCI",
    )


def _load(args):
    from skysense.astrocast.io import prepare_series, read_series
    from skysense.astrocast.series import region_series

    kw = {}
    if str(args.input).lower().endswith(".csv"):
        kw = {"date": args.date_column, "region": args.region_column}
    df = read_series(args.input, **kw)
    regions = list(dict.fromkeys(df["region"]))
    if args.regions:
        want = [r.strip() for r in args.regions.split(",")]
        missing = [r for r in want if r not in regions]
        if missing:
            raise InputError(f"regions not in file: {missing}", path=args.input)
        regions = want
    out = {}
    for r in regions:
        g = df[df["region"] == r].drop(columns="region")
        value = "ndvi" if (args.from_ndvi or "vci" not in g) else "vci"
        g, repairs = prepare_series(g, value=value, source=f"{args.input} [{r}]")
        for rep in repairs:
            print(f"skysense: note: {r}: {rep}", file=sys.stderr)
        out[r] = region_series(g, use_stored_vci=not args.from_ndvi)
    return out


def _vci(args) -> int:
    from skysense.astrocast.indices import DROUGHT_CLASSES, drought_class
    from skysense.astrocast.io import write_table

    frames = []
    for r, s in _load(args).items():
        cls = drought_class(s.vci3m)
        frames.append(
            pd.DataFrame(
                {
                    "region": r,
                    "date": s.dates,
                    "astrocast_time": s.t_days,
                    "vci": s.vci,
                    "vci3m": s.vci3m,
                    "drought_class": [DROUGHT_CLASSES[c] if c >= 0 else "" for c in cls],
                }
            )
        )
    write_table(pd.concat(frames, ignore_index=True), args.output)
    print(f"wrote {args.output}")
    return 0


def _forecast(args) -> int:
    from skysense.astrocast.engine import forecast_regions
    from skysense.astrocast.indices import DROUGHT_CLASSES, class_probabilities
    from skysense.astrocast.io import write_table

    data = _load(args)
    series = {r: (s.t_days, s.vci, s.vci3m, s.window) for r, s in data.items()}
    fc = forecast_regions(series, n_leads=args.n_leads, scheduler=args.scheduler)
    p = class_probabilities(fc["mean"].to_numpy(), fc["std"].to_numpy())
    for k, name in enumerate(DROUGHT_CLASSES):
        fc[f"p_{name}"] = p[:, k]
    fc["p_drought"] = p[:, :3].sum(1)
    write_table(fc, args.output)
    per_series = fc.groupby("region").fit_seconds.first()
    print(
        f"wrote {args.output}; GP fit {per_series.mean():.2f} s per series "
        f"(mean of {len(per_series)})"
    )
    if args.plot_map:
        from skysense.astrocast.plots import plot_class_map

        lead = fc[fc["lead"] == min(args.map_lead, args.n_leads)]
        plot_class_map(args.shapes, lead, args.plot_map)
        print(f"wrote {args.plot_map}")
    return 0


def _hindcast(args) -> int:
    from skysense.astrocast.engine import hindcast_regions
    from skysense.astrocast.io import write_table
    from skysense.astrocast.scores import score_by_lead

    data = _load(args)
    models = {
        m: (m, {"window": data[next(iter(data))].window} if m == "gp" else {})
        for m in args.models.split(",")
    }
    start = {}
    for r, s in data.items():
        first = np.searchsorted(s.dates, pd.Timestamp(f"{args.start_year}-01-01"))
        if first >= len(s.dates) - 1:
            raise InputError(f"region {r}: no data after {args.start_year}-01-01", path=args.input)
        start[r] = max(int(first), 2 * s.window + 12)
    series = {r: (s.t_days, s.vci, s.vci3m) for r, s in data.items()}
    fc, timing = hindcast_regions(
        series, models, n_leads=args.n_leads, start=start, scheduler=args.scheduler
    )
    write_table(fc, args.output)
    scores = score_by_lead(fc.dropna(subset=["observed"]), by="model")
    print(scores.to_string(index=False, float_format="%.3f"))
    print(timing.groupby("model").seconds_per_fit.mean().rename("seconds per forecast").to_string())
    if args.scores:
        write_table(scores, args.scores)
    return 0


def _granger(args) -> int:
    from skysense.astrocast.granger import adf_pvalues, deseasonalize, granger_pairs
    from skysense.astrocast.indices import period_of_year
    from skysense.astrocast.io import write_table

    data = _load(args)
    wide = pd.DataFrame({r: pd.Series(s.vci, index=s.dates) for r, s in data.items()})
    wide = wide.interpolate(limit=3).dropna()
    if len(wide) < 50:
        raise InputError(
            f"only {len(wide)} common dates across regions; need >= 50", path=args.input
        )
    kind = next(iter(data.values())).period_kind
    t = ((wide.index - pd.Timestamp("2001-01-01")) / pd.Timedelta(days=1)).to_numpy(float)
    an = deseasonalize(wide.to_numpy(), period_of_year(wide.index, kind), t)
    adf = adf_pvalues(an)
    nonstat = [c for c, p in zip(wide.columns, adf) if p > 0.05]
    if nonstat:
        print(f"skysense: note: ADF p > 0.05 (maybe non-stationary): {nonstat}", file=sys.stderr)
    res = granger_pairs(an, list(wide.columns), max_lag=args.max_lag, ic=args.ic, fdr=args.fdr)
    write_table(res, args.output)
    print(
        f"{int(res.significant.sum())} of {len(res)} ordered pairs significant at FDR "
        f"{args.fdr}; wrote {args.output}"
    )
    return 0


def register(subparsers) -> None:
    verbs = add_area(
        subparsers,
        "astrocast",
        "vegetation condition (VCI) forecasts and Granger causality (AstroCast)",
    )
    p = add_verb(verbs, "vci", _vci, "compute VCI, VCI3M and NDMA drought classes")
    _add_input(p)
    p = add_verb(verbs, "forecast", _forecast, "GP forecast of VCI3M from the end of each series")
    _add_input(p)
    p.add_argument("--n-leads", type=int, default=9, help="lead steps (default 9)")
    p.add_argument("--plot-map", metavar="PNG", help="drought-probability map (needs --shapes)")
    p.add_argument("--shapes", help="boundary shapefile with a Name field")
    p.add_argument("--map-lead", type=int, default=3, help="lead step mapped (default 3)")
    add_scheduler_option(p)
    p = add_verb(verbs, "hindcast", _hindcast, "honest expanding-window hindcasts and scores")
    _add_input(p)
    p.add_argument(
        "--models",
        default="gp,persistence,linear_ar,random_forest",
        help="comma-separated: gp, persistence, linear_ar, random_forest",
    )
    p.add_argument("--n-leads", type=int, default=9)
    p.add_argument("--start-year", type=int, default=2010, help="first issue year")
    p.add_argument("--scores", help="also write the scores table here")
    add_scheduler_option(p)
    p = add_verb(verbs, "granger", _granger, "pairwise Granger causality with FDR control")
    _add_input(p)
    p.add_argument("--max-lag", type=int, default=6)
    p.add_argument("--ic", choices=("aic", "bic"), default="bic")
    p.add_argument("--fdr", type=float, default=0.05)
