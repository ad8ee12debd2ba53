"""``skysense astrocast ...``: VCI, GP forecasts, honest hindcasts, Granger causality."""

from __future__ import annotations

import sys

from skysense.cli._common import SCHEDULER, add_area, keywords, verb

__all__ = ["register"]

_INPUT = """
input INPUT | series: AstroCast .h5, .csv (date, region, ndvi/vci/vci3m columns) or .nc
-o --output required | output .csv, .parquet or .nc
--date-column str=date | CSV date column (default date)
--region-column str=region | CSV region column
--regions | comma-separated subset of regions
--from-ndvi flag | recompute VCI/VCI3M from NDVI (running extremes, no future data) even when the
    file has VCI
"""
_FORECAST = f"""
--model str=auto | forecaster: auto (candidates stacked on past verified errors), gp (the seed's),
    linear_ar, ar_gp, gradient_boosting, random_forest, persistence
--n-leads int=9 | lead steps (default 9)
--plot-map PNG | drought-probability map (needs --shapes)
--shapes | boundary shapefile with a Name field
--map-lead int=3 | lead step mapped (default 3)
{SCHEDULER}
"""
_HINDCAST = f"""
--models str=auto,persistence | comma-separated: auto (also reports its candidates gp, linear_ar,
    ar_gp, gradient_boosting as auto/<name>), gp, persistence, linear_ar, ar_gp, gradient_boosting,
    random_forest
--n-leads int=9
--start-year int=2010 | first issue year
--scores | also write the scores table here
{SCHEDULER}
"""
_GRANGER = """
--max-lag int=6
--ic {aic,bic}=bic
--fdr float=0.05
"""


def _load(args):
    from skysense.astrocast.io import load_regions

    regions = [r.strip() for r in args.regions.split(",")] if args.regions else None
    kw = keywords(args, "from_ndvi date_column region_column")
    data, notes = load_regions(args.input, regions=regions, **kw)
    for note in notes:
        print(f"skysense: note: {note}", file=sys.stderr)
    return data


def _vci(args) -> str:
    from skysense.astrocast.io import write_table
    from skysense.astrocast.series import vci_table

    write_table(vci_table(_load(args)), args.output)
    return f"wrote {args.output}"


def _forecast(args) -> None:
    from skysense.astrocast.engine import forecast_series
    from skysense.astrocast.io import write_table
    from skysense.astrocast.scores import describe_forecast

    kw = keywords(args, "n_leads scheduler model")
    fc = forecast_series(_load(args), **kw)
    write_table(fc, args.output)
    print(f"wrote {args.output}; {describe_forecast(fc)}")
    if args.plot_map:
        from skysense.astrocast.plots import plot_class_map

        plot_class_map(args.shapes, fc[fc["lead"] == min(args.map_lead, args.n_leads)],
                       args.plot_map)  # fmt: skip
        print(f"wrote {args.plot_map}")


def _hindcast(args) -> None:
    from skysense.astrocast.engine import hindcast_series
    from skysense.astrocast.io import write_table
    from skysense.astrocast.scores import describe_hindcast, hindcast_scores

    kw = keywords(args, "n_leads start_year scheduler input:source")
    fc, timing = hindcast_series(_load(args), args.models.split(","), **kw)
    write_table(fc, args.output)
    scores = hindcast_scores(fc)
    print(describe_hindcast(scores, timing))
    if args.scores:
        write_table(scores, args.scores)


def _granger(args) -> str:
    from skysense.astrocast.granger import describe_granger, granger_table
    from skysense.astrocast.io import write_table

    res, nonstat = granger_table(_load(args), max_lag=args.max_lag, ic=args.ic, fdr=args.fdr,
                                 source=args.input)  # fmt: skip
    if nonstat:
        print(f"skysense: note: ADF p > 0.05 (maybe non-stationary): {nonstat}", file=sys.stderr)
    write_table(res, args.output)
    return f"{describe_granger(res, args.fdr)}; wrote {args.output}"


def register(subparsers) -> None:
    verbs = add_area(subparsers, "astrocast", "vegetation condition (VCI) forecasts and Granger "
                     "causality (AstroCast)")  # fmt: skip
    verb(verbs, "vci", _vci, "compute VCI, VCI3M and NDMA drought classes", _INPUT)
    verb(verbs, "forecast", _forecast, "forecast VCI3M from the end of each series", _INPUT,
         _FORECAST)  # fmt: skip
    verb(verbs, "hindcast", _hindcast, "honest expanding-window hindcasts and scores", _INPUT,
         _HINDCAST)  # fmt: skip
    verb(verbs, "granger", _granger, "pairwise Granger causality with FDR control", _INPUT,
         _GRANGER)  # fmt: skip
