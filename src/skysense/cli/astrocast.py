"""``skysense astrocast ...``: VCI, GP forecasts, honest hindcasts, Granger causality."""

from __future__ import annotations

import sys

from skysense.cli._common import add_area, add_scheduler_option, add_verb

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
    from skysense.astrocast.io import load_regions

    regions = [r.strip() for r in args.regions.split(",")] if args.regions else None
    data, notes = load_regions(args.input, regions=regions, from_ndvi=args.from_ndvi,
                               date_column=args.date_column, region_column=args.region_column)  # fmt: skip
    for note in notes:
        print(f"skysense: note: {note}", file=sys.stderr)
    return data


def _vci(args) -> int:
    from skysense.astrocast.io import write_table
    from skysense.astrocast.series import vci_table

    write_table(vci_table(_load(args)), args.output)
    print(f"wrote {args.output}")
    return 0


def _forecast(args) -> int:
    from skysense.astrocast.engine import forecast_series
    from skysense.astrocast.io import write_table

    fc = forecast_series(_load(args), n_leads=args.n_leads, scheduler=args.scheduler)
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
    from skysense.astrocast.engine import hindcast_series
    from skysense.astrocast.io import write_table
    from skysense.astrocast.scores import score_by_lead

    fc, timing = hindcast_series(_load(args), args.models.split(","), n_leads=args.n_leads,
                                 start_year=args.start_year, scheduler=args.scheduler,
                                 source=args.input)  # fmt: skip
    write_table(fc, args.output)
    scores = score_by_lead(fc.dropna(subset=["observed"]), by="model")
    print(scores.to_string(index=False, float_format="%.3f"))
    print(timing.groupby("model").seconds_per_fit.mean().rename("seconds per forecast").to_string())
    if args.scores:
        write_table(scores, args.scores)
    return 0


def _granger(args) -> int:
    from skysense.astrocast.granger import granger_table
    from skysense.astrocast.io import write_table

    res, nonstat = granger_table(_load(args), max_lag=args.max_lag, ic=args.ic, fdr=args.fdr,
                                 source=args.input)  # fmt: skip
    if nonstat:
        print(f"skysense: note: ADF p > 0.05 (maybe non-stationary): {nonstat}", file=sys.stderr)
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
