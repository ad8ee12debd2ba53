"""Many series on Dask: one task per region, progress, fitting time per series.

By default the regions run in local worker processes, one region per process at a time: the
GP optimiser holds the GIL (threads would not run in parallel), and Python's warning filters
are process-global, so scikit-learn's own filter juggling in concurrent threads corrupts them
(the symptom was a flood of "``sklearn.utils.parallel.delayed`` should be used with
``sklearn.utils.parallel.Parallel``"). In a process of its own each task records its library
warnings and returns their counts; the engine logs one summary line
(logger ``skysense.astrocast.engine``). GP ConvergenceWarnings (a hyperparameter at a bound,
normal for these series) are counted where the GP is fitted
(:attr:`~skysense.astrocast.forecast.SeasonalGP.n_convergence_warnings_`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from skysense._dask import compute_with_progress, dask_client
from skysense.astrocast.baselines import DEFAULT_MODEL, FORECASTERS, WINDOWED, make_forecaster
from skysense.astrocast.hindcast import hindcast

__all__ = [
    "hindcast_regions",
    "forecast_regions",
    "hindcast_series",
    "forecast_series",
    "issue_starts",
    "DEFAULT_SCHEDULER",
    "SPATIAL",
]

#: Forecasters that use neighbouring regions' series (``extras``) when given; "auto" passes
#: them on to its candidates (linear AR, gradient boosting, AR + GP).
SPATIAL = ("auto", "linear_ar", "random_forest")

#: Where region tasks run when no scheduler is given (see the module docstring).
DEFAULT_SCHEDULER = "processes"

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def _counting_warnings(record: bool):
    """Collect the warnings of the block as ``Counter[(category, first line)]``.

    Only where the task is alone in its process (``record``): ``catch_warnings`` is not
    thread-safe.
    """
    counts: collections.Counter = collections.Counter()
    if not record:
        yield counts
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield counts
    for w in caught:
        text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        counts[(w.category.__name__, text[:160])] += 1


def _summarise(label: str, counts: collections.Counter, n_convergence: int) -> None:
    """One log line for all the warnings of a run (none when there were none)."""
    total = sum(counts.values())
    if not total and not n_convergence:
        return
    parts = []
    if n_convergence:
        parts.append(f"{n_convergence} GP fit(s) with a ConvergenceWarning (a hyperparameter "
                     "at its bound or the optimiser stopped early; counted, not shown)")  # fmt: skip
    if total:
        top = ", ".join(f"{n} x {cat}: {text}" for (cat, text), n in counts.most_common(3))
        more = len(counts) - 3
        parts.append(f"{total} library warning(s) hidden ({top}"
                     + (f"; {more} other kind(s)" if more > 0 else "") + ")")  # fmt: skip
    level = logging.WARNING if total else logging.INFO
    _log.log(level, "%s: %s", label, "; ".join(parts))


def _check_models(names) -> None:
    """Unknown forecaster names fail here, before any Dask task starts."""
    from skysense.errors import InputError

    bad = [m for m in names if m not in FORECASTERS]
    if bad:
        raise InputError(f"unknown model(s) {bad}; choose from {sorted(FORECASTERS)}")


def _resolve(scheduler: str | None) -> tuple[str, bool]:
    scheduler = scheduler or DEFAULT_SCHEDULER
    return scheduler, scheduler in ("processes", "synchronous")


def _one_region(region, t_days, vci, vci3m, models, n_leads, start, extra, with_prob, record):
    # One BLAS/OpenMP thread per task: tasks already fill the cores, and with spinning BLAS
    # threads on a shared machine one 156 x 156 Cholesky took 160 ms instead of 3 ms.
    with _counting_warnings(record) as counts, threadpool_limits(1):
        fc, timing = _hindcast_region(
            region, t_days, vci, vci3m, models, n_leads, start, extra, with_prob
        )
    return fc, timing, counts


def _hindcast_region(region, t_days, vci, vci3m, models, n_leads, start, extra, with_prob):
    frames = []
    timing = []
    for label, (name, kwargs) in models.items():
        fc = make_forecaster(name, **kwargs)
        t0, c0 = time.perf_counter(), time.process_time()
        h = hindcast(
            t_days,
            vci,
            vci3m,
            fc,
            n_leads=n_leads,
            start=start,
            extra=extra if name in SPATIAL else None,
            with_probabilities=with_prob and name in WINDOWED,
        )
        timing.append(
            {
                "region": region,
                "model": label,
                "seconds": time.perf_counter() - t0,
                # process CPU time: on a shared machine the wall time mostly measures the load
                "cpu_seconds": time.process_time() - c0,
                "n_forecasts": int(h.issue_index.nunique()),
                "convergence_warnings": int(getattr(fc, "n_convergence_warnings_", 0)),
            }
        )
        if "candidate" in h:
            cand = h.pop("candidate")
            h.insert(0, "model", np.where(cand == "", label, label + "/" + cand))
        else:
            h.insert(0, "model", label)
        h.insert(0, "region", region)
        frames.append(h)
    return pd.concat(frames, ignore_index=True), pd.DataFrame(timing)


def hindcast_regions(
    series: dict,
    models: dict,
    *,
    n_leads: int,
    start: int | dict,
    extras: dict | None = None,
    scheduler: str | None = None,
    with_probabilities: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Honest hindcasts of every region with every model, one Dask task per region.

    Parameters
    ----------
    series : dict region -> (t_days (n,), vci (n,), vci3m (n,))
    models : dict label -> (forecaster name, kwargs)
        e.g. ``{"gp": ("gp", {}), "persistence": ("persistence", {})}``.
    n_leads : int
    start : int or dict region -> int
        First issue index.
    extras : dict region -> ndarray (n, k), optional
        Neighbour series for the spatial option (used by :data:`SPATIAL` forecasters).
    scheduler : str, optional
        ``None``: :data:`DEFAULT_SCHEDULER` (local processes, both cores for the GIL-bound
        optimiser); ``"threads"``, ``"synchronous"`` or a cluster address.

    Returns
    -------
    forecasts : DataFrame
        :func:`hindcast` rows plus ``region, model``.
    timing : DataFrame
        ``region, model, seconds, cpu_seconds, n_forecasts, convergence_warnings,
        seconds_per_fit``.
    """
    import dask

    scheduler, record = _resolve(scheduler)
    tasks = []
    for region, (t, v, y3) in series.items():
        s = start[region] if isinstance(start, dict) else start
        ex = None if extras is None else extras.get(region)
        tasks.append(
            dask.delayed(_one_region)(
                region,
                np.asarray(t),
                np.asarray(v),
                np.asarray(y3),
                models,
                n_leads,
                s,
                ex,
                with_probabilities,
                record,
            )
        )
    with dask_client(scheduler) as client:
        results = compute_with_progress(tasks, label="astrocast hindcast", client=client)
    fc = pd.concat([r[0] for r in results], ignore_index=True)
    timing = pd.concat([r[1] for r in results], ignore_index=True)
    _summarise("astrocast hindcast", sum((r[2] for r in results), collections.Counter()),
               int(timing["convergence_warnings"].sum()))  # fmt: skip
    timing["seconds_per_fit"] = timing["seconds"] / timing["n_forecasts"].clip(lower=1)
    return fc, timing


def _forecast_one(region, t_days, vci, vci3m, window, n_leads, gp_kwargs, record, model):
    with _counting_warnings(record) as counts, threadpool_limits(1):
        out = _forecast_region(region, t_days, vci, vci3m, window, n_leads, gp_kwargs, model)
    return out, counts


def _forecast_region(region, t_days, vci, vci3m, window, n_leads, gp_kwargs, model=DEFAULT_MODEL):
    t0 = time.perf_counter()
    ok = np.isfinite(vci3m)
    last = int(np.flatnonzero(ok)[-1])
    if model == "gp":
        fc = make_forecaster("gp", window=window, **({"refit_every": 72} | gp_kwargs))
        warm = 72
    else:
        fc = make_forecaster(model, **({"window": window} if model in WINDOWED else {}))
        # the combination needs verified errors of every candidate (min_verified + leads);
        # with shrink=None then of the stack itself (as many again): 160 issues cover both
        warm = 160
    # Run the last years as a hindcast first so that the stated std is calibrated on this
    # series' own verified forecast errors (and, for "auto", the candidates are weighted).
    first = max(2 * window + 12, last - warm)
    for i in range(first, last + 1):
        mean, std = fc.forecast(t_days[: i + 1], vci[: i + 1], vci3m[: i + 1], n_leads)
    step = float(np.median(np.diff(t_days[-50:])))
    return pd.DataFrame(
        {
            "region": region,
            "lead": np.arange(1, n_leads + 1),
            "t_issue_days": t_days[last],
            "t_target_days": t_days[last] + step * np.arange(1, n_leads + 1),
            "mean": mean,
            "std": std,
            "fit_seconds": time.perf_counter() - t0,
            "convergence_warnings": int(getattr(fc, "n_convergence_warnings_", 0)),
        }
    )


def forecast_regions(
    series: dict,
    *,
    n_leads: int,
    scheduler: str | None = None,
    gp_kwargs: dict | None = None,
    model: str = DEFAULT_MODEL,
) -> pd.DataFrame:
    """Forecast of VCI3M from the end of every series, one Dask task per region.

    Parameters
    ----------
    series : dict region -> (t_days (n,), vci (n,), vci3m (n,), window)
    n_leads : int
    model : str
        Forecaster name (:data:`~skysense.astrocast.baselines.DEFAULT_MODEL`: the stacked
        candidates; ``"gp"``: the seed's GP).
    gp_kwargs : dict, optional
        Extra :class:`~skysense.astrocast.baselines.GPForecaster` arguments (``model="gp"``).

    scheduler : str, optional
        As for :func:`hindcast_regions`.

    Returns
    -------
    DataFrame ``region, lead, t_issue_days, t_target_days, mean, std, fit_seconds,
    convergence_warnings``
    """
    import dask

    scheduler, record = _resolve(scheduler)
    tasks = [
        dask.delayed(_forecast_one)(
            r,
            np.asarray(t),
            np.asarray(v),
            np.asarray(y3),
            w,
            n_leads,
            gp_kwargs or {},
            record,
            model,
        )
        for r, (t, v, y3, w) in series.items()
    ]
    with dask_client(scheduler) as client:
        out = compute_with_progress(tasks, label="astrocast forecast", client=client)
    fc = pd.concat([o[0] for o in out], ignore_index=True)
    conv = int(fc.groupby("region").convergence_warnings.first().sum())
    _summarise("astrocast forecast", sum((o[1] for o in out), collections.Counter()), conv)
    return fc


def issue_starts(series: dict, start_year: int, *, source=None) -> dict[str, int]:
    """First issue index per region: the first date in ``start_year`` or later, and never
    before the history the forecasters need (``2 * window + 12`` samples).

    Raises
    ------
    InputError
        A region with no data after the start of ``start_year``.
    """
    from skysense.errors import InputError

    start = {}
    for r, s in series.items():
        first = np.searchsorted(s.dates, pd.Timestamp(f"{start_year}-01-01"))
        if first >= len(s.dates) - 1:
            raise InputError(f"region {r}: no data after {start_year}-01-01", path=source)
        start[r] = max(int(first), 2 * s.window + 12)
    return start


def hindcast_series(
    series: dict,
    models: list[str],
    *,
    n_leads: int,
    start_year: int,
    scheduler: str | None = None,
    source=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Honest hindcasts of prepared regions (:func:`skysense.astrocast.io.load_regions`).

    Parameters
    ----------
    series : dict region -> RegionSeries
    models : list of str
        Forecaster names (:data:`~skysense.astrocast.baselines.FORECASTERS`); ``auto`` and
        ``gp`` take the VCI3M window of the series. ``auto`` also reports its candidates as
        ``auto/<name>``.
    n_leads : int
    start_year : int
        First issue year (:func:`issue_starts`).

    Returns
    -------
    forecasts, timing : DataFrame
        As :func:`hindcast_regions`.
    """
    _check_models(models)
    window = next(iter(series.values())).window
    spec = {m: (m, {"window": window} if m in WINDOWED else {}) for m in models}
    start = issue_starts(series, start_year, source=source)
    arrays = {r: (s.t_days, s.vci, s.vci3m) for r, s in series.items()}
    return hindcast_regions(arrays, spec, n_leads=n_leads, start=start, scheduler=scheduler)


def forecast_series(
    series: dict, *, n_leads: int, scheduler: str | None = None, model: str = DEFAULT_MODEL
) -> pd.DataFrame:
    """Forecasts from the end of prepared regions, with NDMA class probabilities.

    Returns
    -------
    DataFrame
        :func:`forecast_regions` columns plus ``p_<class>`` and ``p_drought``
        (:func:`~skysense.astrocast.indices.add_class_probabilities`).
    """
    from skysense.astrocast.indices import add_class_probabilities

    _check_models([model])
    arrays = {r: (s.t_days, s.vci, s.vci3m, s.window) for r, s in series.items()}
    fc = forecast_regions(arrays, n_leads=n_leads, scheduler=scheduler, model=model)
    return add_class_probabilities(fc)
