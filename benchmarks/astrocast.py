"""AstroCast benchmark: VCI3M hindcasts on the real Kenyan series, skysense vs AstroCast.

County file (47 counties, dekadal MODIS 2001-2020): the stored column "k day lag time" in row t
is AstroCast's forecast of VCI3M in row t-1 issued k/10 rows earlier, i.e. issued at row
i = t-1-k/10 for lead k/10 dekads. Weekly cluster files: "k day lag time" in row t forecasts
VCI3M in row t issued k/7 rows earlier. Every model is scored on exactly the (region, issue,
lead) triples where the stored hindcast exists.

Inputs are the stored series as AstroCast's own operational hindcasts saw them: the pipeline's
smoothed NDVI and its VCI (extremes over the archive). We cannot undo that smoothing; our
forecasters only ever see rows up to the issue date (expanding window), so whatever the stored
series leaks it leaks equally to AstroCast's hindcasts and ours.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd

from benchmarks._harness import RESULTS, SHARED_DATA, Row

__all__ = ["run", "add_arguments"]

VEG = SHARED_DATA / "vegetation"


def add_arguments(parser) -> None:
    parser.add_argument("--no-weekly", action="store_true", help="skip the weekly cluster files")
    parser.add_argument(
        "--sets",
        default="county,modis,viirs",
        help="comma-separated data sets to run: county, modis, viirs (default all three)",
    )
    parser.add_argument("--no-granger", action="store_true", help="skip the Granger part")
    parser.add_argument(
        "--scheduler", default="processes", help="Dask scheduler (default processes)"
    )


def _stored_fact_check(df: pd.DataFrame, step: int) -> dict:
    """Reproduce the issue's measured facts from the stored columns (pooled over regions)."""
    from skysense.astrocast.scores import alert_rates, r2_score

    out = {}
    for k in (30, 60):
        s = k // step
        obs, fc, per = [], [], []
        for _, g in df.groupby("region", sort=False):
            y3 = g["vci3m"].to_numpy()
            h = g[f"hindcast_{k}d"].to_numpy()
            n = len(g)
            for t in range(1 + s, n):
                if np.isfinite(h[t]):
                    obs.append(y3[t - 1])
                    fc.append(h[t])
                    per.append(y3[t - 1 - s])
        hit, fa = alert_rates(obs, fc)
        out[f"{k}d"] = {
            "stored_r2": r2_score(obs, fc),
            "persistence_r2": r2_score(obs, per),
            "stored_hit": hit,
            "stored_false_alarm": fa,
            "n": len(obs),
        }
    return out


def _neighbour_extras(df: pd.DataFrame) -> dict:
    """Mean VCI of the counties touching each county (from the shapefile)."""
    import geopandas as gpd

    shp = gpd.read_file(VEG / "kenya_county_shapes" / "County.shp")
    shp = shp.set_index(shp["Name"].str.strip())
    wide = df.pivot(index="date", columns="region", values="vci")
    extras = {}
    for name in wide.columns:
        if name not in shp.index:
            continue
        geom = shp.loc[name, "geometry"]
        nb = [
            m
            for m in shp.index
            if m != name and m in wide.columns and shp.loc[m, "geometry"].touches(geom)
        ]
        if nb:
            extras[name] = wide[nb].mean(axis=1).to_numpy()[:, None]
    return extras


def _run_file(
    label, df, *, step_days, window, n_leads, shift, models, extras, scheduler, quick, halves=False
):
    from skysense.astrocast.engine import hindcast_regions
    from skysense.astrocast.io import to_days
    from skysense.astrocast.scores import score_by_lead

    series, start, stored = {}, {}, []
    regions = list(dict.fromkeys(df["region"]))
    if quick:
        regions = regions[:4]
    for reg in regions:
        g = df[df["region"] == reg].reset_index(drop=True)
        n = len(g)
        t = to_days(g["date"])
        series[reg] = (t, g["vci"].to_numpy(), g["vci3m"].to_numpy())
        rows = []
        for s in range(1, n_leads + 1):
            col = g[f"hindcast_{s * step_days}d"].to_numpy()
            for i in range(n - s - shift):
                r = i + s + shift
                if np.isfinite(col[r]):
                    rows.append((reg, i, s, col[r]))
        st = pd.DataFrame(rows, columns=["region", "issue_index", "lead", "mean"])
        if quick:
            st = st[st.issue_index >= st.issue_index.max() - 120]
        stored.append(st)
        start[reg] = int(st.issue_index.min())
    stored = pd.concat(stored, ignore_index=True)
    t0 = time.perf_counter()
    fc, timing = hindcast_regions(
        series, models, n_leads=n_leads, start=start, extras=extras, scheduler=scheduler
    )
    wall = time.perf_counter() - t0
    key = stored[["region", "issue_index", "lead"]]
    fc = fc.merge(key, on=["region", "issue_index", "lead"])
    obs = fc[["region", "issue_index", "lead", "observed"]].drop_duplicates(
        ["region", "issue_index", "lead"]
    )
    st = stored.merge(obs, on=["region", "issue_index", "lead"])
    st["model"] = "astrocast_stored"
    allfc = pd.concat([fc, st], ignore_index=True).dropna(subset=["observed", "mean"])
    # Same triples for every model: keep only triples every model scored.
    nmod = allfc.groupby(["region", "issue_index", "lead"])["model"].transform("nunique")
    allfc = allfc[nmod == allfc["model"].nunique()]
    scores = score_by_lead(allfc, by="model")
    scores["lead_days"] = scores["lead"] * step_days
    if halves:
        # the development split of meta.auto_rule: per region, issues before the middle of
        # its stored issue range; the second half was not looked at when choosing the rule
        mid = stored.groupby("region").issue_index.agg(lambda x: (x.min() + x.max()) // 2)
        late = allfc.issue_index >= allfc.region.map(mid)
        scores = {
            "all": scores,
            "first_half": score_by_lead(allfc[~late], by="model"),
            "second_half": score_by_lead(allfc[late], by="model"),
        }
    # Coverage of the stated 1-sigma and 2-sigma bands, per model that states a std.
    cov = {}
    for m in ("auto", "auto/gp", "gp"):
        g = allfc[allfc.model == m]
        if len(g):
            z = np.abs(g["observed"] - g["mean"]) / g["std"]
            cov[m] = {
                "within_1sigma": float((z < 1).mean()),
                "within_2sigma": float((z < 2).mean()),
                "within_1sigma_by_lead": {
                    int(k): float(v) for k, v in (z < 1).groupby(g["lead"]).mean().items()
                },
            }
    return scores, timing, wall, cov


#: How the default's combination rule was chosen: on the development split only (the first
#: half of the issue dates of the weekly VIIRS series, scored on the stored-hindcast triples
#: there), by replaying each rule on the candidates' saved hindcasts (the candidates do not
#: depend on the rule). R^2 of the rule minus linear AR's, worst lead (and the mean over the
#: nine leads); the chosen rule is applied unchanged to the county and MODIS sets, and the
#: second half of the VIIRS dates is reported apart (``weekly_viirs.second_half_scores``).
AUTO_RULE = {
    "rule": "constrained least squares (w >= 0, sum 1) on the last 156 verified errors, Gram "
    "matrices pooled over leads (each scaled by linear AR's MSE), shrunk toward linear AR by "
    "lam_h = n / (n + shrink * h)",
    "shrink": 450.0,
    "development_split": "weekly VIIRS, first half of the issue dates (70,380 of 139,518 triples)",
    "dev_r2_minus_linear_ar_worst_lead": {
        "previous default (DM-gated selection, inverse-MSE stack of near candidates)": -0.002678,
        "CLS per lead, no shrinkage": -0.02259,
        "CLS per lead, shrink n/(n+150)": -0.00375,
        "CLS per lead, shrink n/(n+450)": -0.00114,
        "CLS per lead, shrink n/(n+1350)": -0.00033,
        "CLS per lead, shrunk toward the best past candidate, n/(n+150)": -0.01733,
        "CLS per lead, shrink n/(n+450 h)": -0.00010,
        "CLS pooled over leads, shrink n/(n+1350)": -0.000075,
        "CLS pooled over leads, shrink n/(n+150 h)": -0.000075,
        "CLS pooled over leads, shrink n/(n+450 h) (chosen)": -0.000014,
    },
    "dev_r2_minus_linear_ar_mean_over_leads_chosen": 0.000021,
    "note": "on the development split no rule with finite shrinkage was >= linear AR at 63 d; "
    "the grid stopped at 450 h",
    "evidence_rule_trial": {
        "rule": "SelectForecaster(shrink=None): the unshrunk pooled stack, moved toward from "
        "linear AR by lam_h = the lower one-sided 95 % bound of the least-squares weight of the "
        "stack against linear AR on the stack's own past verified forecasts (last 156, at "
        "least 30; Newey-West variance, Andrews 1991 bandwidth, at least h), clipped to [0, 1]",
        "chosen_on": "the same development split, the best of five evidence rules there (worst "
        "lead; the shrunk stack gated by a DM test with h - 1 lags -0.0000728, with the "
        "Andrews bandwidth -0.0000776, the unshrunk stack so gated -0.000754, the shrunk stack "
        "moved toward by the bound +0.0000006, the unshrunk stack so moved +0.0000021 (chosen; "
        "mean over leads +0.0000537)); constants 0.95 and Andrews' rule from theory",
        "result_r2_minus_best_baseline_by_lead_7_to_63_or_10_to_90_days": {
            "county": [
                -3e-7,
                6.38e-5,
                3.665e-4,
                1.3847e-3,
                3.19e-3,
                6.1553e-3,
                9.3843e-3,
                1.17872e-2,
                1.18757e-2,
            ],
            "weekly_modis": [
                0.0,
                -3.0e-6,
                -1.05e-5,
                -3.34e-5,
                -1.048e-4,
                -3.026e-4,
                -6.057e-4,
                -9.865e-4,
                -1.4462e-3,
            ],
            "weekly_viirs": [
                9e-7,
                1.3e-6,
                2.79e-5,
                1.175e-4,
                2.411e-4,
                3.32e-4,
                4.921e-4,
                4.552e-4,
                1.226e-4,
            ],
            "weekly_viirs_second_half": [
                2e-7,
                -5e-7,
                -5.2e-6,
                1.57e-5,
                6.7e-6,
                5.1e-6,
                -1.11e-5,
                -1.85e-5,
                -5.65e-5,
            ],
        },
        "fixed_shrinkage_on_viirs_second_half_same_replay": [
            3e-7,
            7e-7,
            3.8e-6,
            2.8e-6,
            2.9e-6,
            5.4e-6,
            2.3e-6,
            -5.9e-6,
            -1.29e-5,
        ],
        "runs": "benchmark runs 2026-12-07T12:39:48Z (viirs, load 17-21) and 13:12:00Z (county, "
        "modis, load 20-25)",
        "verdict": "not adopted: below linear AR at 8 of 9 MODIS leads and 5 of 9 on the VIIRS "
        "second half, sets it was not chosen on (county gained up to 0.012 but lost 3e-7 at "
        "10 d); the default stays the fixed shrinkage",
    },
    "diagnosis_of_remaining_deficits": {
        "method": "exact replay of SelectForecaster on the candidates' saved hindcasts (the "
        "replayed auto equals the benchmark's bit for bit on weekly MODIS; on VIIRS it "
        "reproduces every lead's R^2 difference), scored on the stored-hindcast triples",
        "not_mechanical": "the warm-up (linear AR alone until 30 verified errors at every lead) "
        "contributes exactly 0; the baseline is auto's own linear AR candidate, so there is no "
        "refit noise; issues where ar_gp still equals linear AR contribute 0; a candidate "
        "equal to linear AR now leaves the forecast linear AR's to the bit (it differed by "
        "~1e-15 before: weighted sum instead of anchor plus weighted differences)",
        "cause": "one pooled weight vector for all leads: auto minus linear AR = sum over "
        "candidates of a first-order term 2 sum(e_AR * w_k (f_k - f_AR)) / SST, minus the "
        "quadratic term sum((f_auto - f_AR)^2) / SST",
        "decomposition_r2": {
            "modis_7d": {
                "total": -4.28e-7,
                "gp": -2.51e-7,
                "ar_gp": 1.28e-6,
                "gradient_boosting": -9.88e-7,
                "quadratic": -4.72e-7,
            },
            "modis_14d": {
                "total": -6.96e-7,
                "gp": -2.02e-7,
                "ar_gp": -3.57e-7,
                "gradient_boosting": 1.24e-7,
                "quadratic": -2.62e-7,
            },
            "viirs_63d": {
                "total": -1.311e-5,
                "gp": -4.19e-7,
                "ar_gp": -1.59e-5,
                "gradient_boosting": 8.36e-6,
                "quadratic": -5.10e-6,
            },
        },
        "region_bootstrap_se_r2": {"modis_7d": 2.5e-7, "modis_14d": 2.6e-7, "viirs_63d": 2.3e-5},
    },
    "lead_pool_rule": {
        "status": "registered before scoring: written into SelectForecaster (lead_pool=0.5, "
        "then the default) and here before any real-data run with it; the Kenyan sets (county, "
        "weekly MODIS, weekly VIIRS) had all been seen with earlier rules",
        "rule": "per lead h, CLS weights (w >= 0, sum 1) on sum_j lead_pool^|h - j| G_j "
        "(G_j: lead j's Gram matrix of the last 156 joint verified errors, scaled by linear "
        "AR's MSE at j), then the same shrinkage toward linear AR, lam_h = n / (n + 450 h)",
        "lead_pool": 0.5,
        "development_set": "synthetic only: benchmarks/_astrocast_synth.py, 40 weekly series "
        "of 700 weeks, seed 202026 (bimodal climatology + seasonal AR(2)+AR(52) anomaly with "
        "a threshold term and a slow AR(1) component, Student-t innovations, triangular NDVI "
        "smoothing, archive VCI, 12-week VCI3M); persistence level set so linear AR's R^2 "
        "at 4/6/8 weeks (0.982/0.934/0.845) is near the issue's quoted 0.985/0.941/0.857; "
        "candidates hindcast once (issues from 156), rules replayed exactly on them",
        "diagnosis": "on the synthetic set auto >= linear AR at every lead, but the seed's "
        "GP beats linear AR at 7-28 d (R^2 +4.4e-5, +2.3e-4, +4.2e-4, +2.8e-4) and loses "
        "beyond (-0.019 at 63 d); the one pooled weight vector gives it the same weight at "
        "every lead, and lam_1 = 156/606 caps the move, so auto stays below the GP at 7-21 d "
        "(-2.7e-5, -1.5e-4, -2.4e-4); gradient boosting's moves cost up to 1.8e-6 at 7-49 d",
        "criterion": "largest worst-lead (auto - best baseline of linear AR and the GP) R^2 "
        "on the synthetic set, ties by the mean over leads; grid lead_pool in {0, 0.5, 1}",
        "synthetic_auto_minus_best_baseline_by_lead_7_to_63_days": {
            "1 (pooled, old default)": [
                -2.65e-5,
                -1.48e-4,
                -2.39e-4,
                4.16e-5,
                4.69e-4,
                6.29e-4,
                7.91e-4,
                9.49e-4,
                1.10e-3,
            ],
            "0.5 (chosen)": [
                -2.28e-5,
                -1.37e-4,
                -2.28e-4,
                4.57e-5,
                4.56e-4,
                5.90e-4,
                7.19e-4,
                8.41e-4,
                9.56e-4,
            ],
            "0 (per lead)": [
                -2.12e-5,
                -1.35e-4,
                -2.29e-4,
                3.95e-5,
                4.46e-4,
                5.72e-4,
                6.95e-4,
                8.14e-4,
                9.17e-4,
            ],
        },
        "result_auto_minus_best_baseline_by_lead_7_to_63_or_10_to_90_days": {
            "county": [
                8.23e-6,
                5.88e-5,
                1.78e-4,
                4.31e-4,
                7.91e-4,
                1.25e-3,
                1.73e-3,
                2.09e-3,
                2.26e-3,
            ],
            "weekly_modis": [
                9.3e-7,
                5.1e-8,
                3.86e-6,
                2.01e-5,
                6.03e-5,
                1.16e-4,
                2.09e-4,
                3.16e-4,
                4.24e-4,
            ],
            "weekly_viirs": [
                1.44e-6,
                2.05e-6,
                1.12e-5,
                1.60e-5,
                3.10e-5,
                5.34e-5,
                8.20e-5,
                1.00e-4,
                1.24e-4,
            ],
            "weekly_viirs_second_half": [
                1.59e-6,
                2.81e-6,
                1.17e-5,
                9.63e-6,
                2.24e-5,
                5.47e-5,
                1.12e-4,
                1.80e-4,
                2.39e-4,
            ],
        },
        "result_minus_old_default_county": [
            -3.70e-6,
            -1.42e-5,
            -7.28e-6,
            4.72e-5,
            1.69e-4,
            3.55e-4,
            5.83e-4,
            7.77e-4,
            8.84e-4,
        ],
        "runs": "one benchmark run 2026-12-07 18:58-19:35 UTC (county, modis, viirs; load "
        "7-10); its rows and meta kept in meta.lead_pool_trial_scores",
        "verdict": "not adopted, by the registered test: >= best baseline at every lead of "
        "all three sets (the old default is below at MODIS 7/14 d and VIIRS 63 d), and above "
        "the old default at every MODIS and VIIRS lead, but below it at county 10, 20, 30 d "
        "(-3.7e-6, -1.4e-5, -7.3e-6) where the old default met the goal; the default stays "
        "lead_pool=1 and the results are the earlier runs",
        "adoption": "kept as the default only if on every real set it is >= the old default "
        "(lead_pool=1) at every lead where the old default met >= best baseline; otherwise "
        "kept as an option and the old default and results restored",
    },
    "lead_cap_trial": {
        "rule": "SelectForecaster(lead_cap='verified'): lam_h = min(n / (n + 450 h), the "
        "least-squares step from linear AR toward the unshrunk stack on lead h's verified "
        "errors of the stack's own past forecasts, clipped to [0, 1]) (exactly 0 where moving "
        "toward the stack did not lower that lead's past squared error); 'fit': the step on "
        "the candidates' errors combined with today's weights (in-sample)",
        "protocol": "written after every set had been seen (2026-12-07 session 23), from the "
        "mechanism above; adoption criterion fixed before the replays: >= linear AR at every "
        "lead on all three sets. 'verified' was declared the candidate before its MODIS "
        "replay; the 'fit' VIIRS replay had been seen by then",
        "r2_minus_linear_ar_by_lead_7_to_63_days": {
            "weekly_modis_plain_shrinkage": [
                -4.3e-7,
                -7.0e-7,
                2.6e-6,
                1.256e-5,
                3.331e-5,
                5.18e-5,
                8.515e-5,
                1.205e-4,
                1.534e-4,
            ],
            "weekly_modis_verified": [
                1.2e-8,
                -2.0e-7,
                1.18e-6,
                8.63e-6,
                2.237e-5,
                3.173e-5,
                5.514e-5,
                7.711e-5,
                8.578e-5,
            ],
            "weekly_modis_fit": [
                9.9e-8,
                -6.59e-7,
                2.54e-6,
                1.236e-5,
                3.293e-5,
                4.96e-5,
                7.869e-5,
                1.079e-4,
                1.328e-4,
            ],
            "weekly_viirs_plain_shrinkage": [
                4.6e-7,
                6.2e-7,
                5.46e-6,
                1.009e-5,
                1.778e-5,
                2.548e-5,
                2.244e-5,
                1.55e-6,
                -1.311e-5,
            ],
            "weekly_viirs_verified": [
                6.6e-7,
                7.4e-7,
                5.19e-6,
                9.0e-6,
                1.299e-5,
                1.796e-5,
                2.065e-5,
                -3.5e-7,
                -2.179e-5,
            ],
            "weekly_viirs_fit": [
                8.8e-7,
                6.9e-7,
                5.43e-6,
                9.93e-6,
                1.744e-5,
                2.489e-5,
                2.026e-5,
                4.97e-6,
                -1.031e-5,
            ],
        },
        "county": "not replayed (the criterion had already failed on VIIRS)",
        "verdict": "not adopted: each cap leaves two or three leads below linear AR; the "
        "differences are within about one region-bootstrap standard error (VIIRS 63 d: "
        "2e-5), so no rule short of linear AR itself at a lead can promise >= at it",
    },
}


def run(opts):
    from skysense.astrocast.io import read_astrocast_h5

    quick = bool(getattr(opts, "quick", False))
    scheduler = getattr(opts, "scheduler", "processes")
    meta = {"load_average_start": os.getloadavg(), "auto_rule": AUTO_RULE}
    rows = []
    sets = {x.strip() for x in getattr(opts, "sets", "county,modis,viirs").split(",")}
    if getattr(opts, "no_weekly", False):
        sets -= {"modis", "viirs"}
    meta["sets"] = sorted(sets)
    county = read_astrocast_h5(VEG / "astrocast_rcmrd_kenya_county_modis_dekadal.h5")
    if "county" in sets:
        meta["fact_check_county"] = _stored_fact_check(county, 10)
        # "auto" (the CLI default) reports its candidates (auto/gp, auto/linear_ar, auto/ar_gp,
        # auto/gradient_boosting) from the same run; the weights it gives them at each issue come
        # from its own verified past forecasts only.
        models = {
            "auto": ("auto", {"window": 9}),
            "persistence": ("persistence", {}),
            "random_forest": ("random_forest", {"n_estimators": 50, "refit_every": 72}),
            "linear_ar": ("linear_ar", {"n_lags": 12}),
            "linear_ar_spatial": ("linear_ar", {"n_lags": 12}),
        }
        extras = _neighbour_extras(county)
        # The neighbours' VCI goes to the "_spatial" baseline and to "auto" (whose linear AR,
        # AR + GP and gradient boosting candidates then use it); the other baselines run without.
        scores, timing, wall, cov = _run_county(county, models, extras, scheduler, quick)
        meta["county"] = {
            "scores": scores.to_dict(orient="records"),
            "wall_s": wall,
            "auto_seconds_per_forecast": float(
                timing.loc[timing.model == "auto", "seconds_per_fit"].mean()
            ),
            "coverage": cov,
        }
        meta["county"]["cpu_s"] = float(timing["cpu_seconds"].sum())
        _rows_from_scores(rows, scores, "county dekadal", 10)
        _goal_rows(rows, scores, cov, "county dekadal", 10, min_lead=3, alerts_lead=3)
        rows.append(
            Row(
                "county hindcast wall time (47 series, all models)",
                wall,
                None,
                unit="s",
                notes=f"auto {meta['county']['auto_seconds_per_forecast'] * 1e3:.1f} ms/forecast; "
                f"process CPU {meta['county']['cpu_s']:.0f} s; load {os.getloadavg()[0]:.1f}",
            )
        )
    if not getattr(opts, "no_weekly", False):
        for sensor in ("MODIS", "VIIRS"):
            if sensor.lower() in sets:
                _run_weekly(sensor, rows, meta, scheduler, quick)
    if not getattr(opts, "no_granger", False):
        meta["granger_county"] = granger_county(county, quick=quick)
    meta["load_average_end"] = os.getloadavg()
    _carry_over(rows, meta, sets, granger=not getattr(opts, "no_granger", False), quick=quick)
    return rows, meta


#: Row-name prefixes and meta keys of each data set, for :func:`_carry_over`.
_SET_ROWS = {"county": "county ", "modis": "weekly MODIS ", "viirs": "weekly VIIRS "}
_SET_META = {"county": ("county", "fact_check_county"), "modis": ("weekly_modis",),
             "viirs": ("weekly_viirs",)}  # fmt: skip


def _carry_over(rows, meta, sets, *, granger, quick):
    """Keep the stored rows and meta of the data sets not run this time (the report rewrites
    ``results/astrocast.json`` whole), each row marked with the date of its run, and append
    this run to ``meta["runs"]``. A ``--quick`` run keeps nothing (its file is a smoke test)."""
    path = RESULTS / "astrocast.json"
    if quick or not path.exists():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    when = old.get("when", "?")
    for name in sorted(set(_SET_ROWS) - set(sets)):
        for r in old.get("rows", []):
            if r["task"].startswith(_SET_ROWS[name]):
                fields = {k: v for k, v in r.items() if k != "ratio"}
                if "[from the run of" not in fields.get("notes", ""):
                    fields["notes"] = fields.get("notes", "") + f" [from the run of {when}]"
                rows.append(Row(**fields))
        for key in _SET_META[name]:
            if key in old.get("meta", {}):
                meta.setdefault(key, old["meta"][key])
    if not granger and "granger_county" in old.get("meta", {}):
        meta.setdefault("granger_county", old["meta"]["granger_county"])
    # the record of a rule tried and not adopted (auto_rule.evidence_rule_trial) stays
    for key in ("evidence_rule_trial_scores", "lead_pool_trial_scores"):
        if key in old.get("meta", {}):
            meta.setdefault(key, old["meta"][key])
    meta["runs"] = old.get("meta", {}).get("runs", []) + [
        {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sets": sorted(sets),
            "load_average_start": meta.get("load_average_start"),
            "load_average_end": meta.get("load_average_end"),
        }
    ]


def granger_county(county: pd.DataFrame, *, quick: bool = False) -> dict:
    """Granger causality between county VCI anomalies; strength vs distance; linear vs RF."""
    import geopandas as gpd

    from skysense.astrocast.granger import (
        adf_pvalues,
        deseasonalize,
        granger_pairs,
        oos_improvement,
        pc_vs_mean,
        strength_vs_distance,
    )
    from skysense.astrocast.indices import period_of_year
    from skysense.astrocast.io import to_days

    wide = county.pivot(index="date", columns="region", values="vci").dropna()
    if quick:
        wide = wide.iloc[:, :8]
    an = deseasonalize(wide.to_numpy(), period_of_year(wide.index), to_days(wide.index))
    adf = adf_pvalues(an)
    t0 = time.perf_counter()
    pairs = granger_pairs(an, list(wide.columns), max_lag=6, ic="bic", fdr=0.05)
    seconds = time.perf_counter() - t0
    shp = gpd.read_file(VEG / "kenya_county_shapes" / "County.shp").to_crs("EPSG:21037")
    cen = {
        str(n).strip(): (g.centroid.x / 1e3, g.centroid.y / 1e3)
        for n, g in zip(shp["Name"], shp.geometry)
    }
    keep = pairs["source"].isin(list(cen)) & pairs["target"].isin(list(cen))
    table = strength_vs_distance(
        pairs[keep].reset_index(drop=True), cen, bins=[0, 100, 200, 300, 450, 700, 1200]
    )
    top = pairs[pairs.significant].sort_values("strength", ascending=False).head(10)
    cols = {c: k for k, c in enumerate(wide.columns)}
    gains = []
    for _, r in top.iterrows():
        x, y = an[:, cols[r.source]], an[:, cols[r.target]]
        gains.append(
            {
                "source": r.source,
                "target": r.target,
                "lag": int(r.lag),
                "linear_gain": oos_improvement(x, y, int(r.lag)),
                "rf_gain": oos_improvement(x, y, int(r.lag), model="random_forest"),
            }
        )
    pcm = [pc_vs_mean(an, k, lag=2) for k in range(an.shape[1])]
    return {
        "n_series": an.shape[1],
        "n_time": an.shape[0],
        "adf_fraction_stationary": float(np.mean(adf < 0.05)),
        "n_pairs": len(pairs),
        "n_significant_fdr05": int(pairs.significant.sum()),
        "seconds": seconds,
        "strength_vs_distance_km": table.to_dict(orient="records"),
        "top_pairs_oos_gain": gains,
        "pc1_better_than_mean_fraction": float(
            np.mean([d["pc1"] < d["regional_mean"] for d in pcm])
        ),
        "mse_own_pc1_mean_median": [
            float(np.median([d[k] for d in pcm])) for k in ("own_only", "pc1", "regional_mean")
        ],
    }


def _run_county(county, models, extras, scheduler, quick):
    def uses_extras(k):
        return k.endswith("_spatial") or k == "auto"

    base = {k: v for k, v in models.items() if not uses_extras(k)}
    spatial = {k: v for k, v in models.items() if uses_extras(k)}

    def uses_extras_model(m):
        return uses_extras(m.split("/")[0])

    s1, t1, w1, _ = _run_file(
        "county",
        county,
        step_days=10,
        window=9,
        n_leads=9,
        shift=1,
        models=base,
        extras=None,
        scheduler=scheduler,
        quick=quick,
    )
    s2, t2, w2, cov2 = _run_file(
        "county",
        county,
        step_days=10,
        window=9,
        n_leads=9,
        shift=1,
        models=spatial,
        extras=extras,
        scheduler=scheduler,
        quick=quick,
    )
    # astrocast_stored and persistence are scored in both runs (on the same triples): keep one
    scores = pd.concat([s1, s2[s2.model.map(uses_extras_model)]], ignore_index=True)
    return scores, pd.concat([t1, t2]), w1 + w2, cov2


def _run_weekly(sensor, rows, meta, scheduler, quick):
    from skysense.astrocast.io import read_astrocast_h5

    weekly = []
    for c in (1, 2, 3):
        w = read_astrocast_h5(VEG / "astrocast_passage" / f"{sensor}_CLUSTER_{c}_hindcasts.h5")
        w["region"] = f"C{c}:" + w["region"]
        weekly.append(w)
    weekly = pd.concat(weekly, ignore_index=True).dropna(subset=["vci", "vci3m"])
    wmodels = {
        "auto": ("auto", {"window": 12}),
        "persistence": ("persistence", {}),
    }
    load_start = os.getloadavg()
    ws, wt, wwall, wcov = _run_file(
        "weekly",
        weekly,
        step_days=7,
        window=12,
        n_leads=9,
        shift=0,
        models=wmodels,
        extras=None,
        scheduler=scheduler,
        quick=quick,
        halves=sensor == "VIIRS",
    )
    halves = ws if isinstance(ws, dict) else None
    if halves is not None:
        ws = halves["all"]
    key = f"weekly_{sensor.lower()}"
    meta[key] = {
        "n_series": int(weekly["region"].nunique()),
        "scores": ws.to_dict(orient="records"),
        "wall_s": wwall,
        "cpu_s": float(wt["cpu_seconds"].sum()),
        "load_average_start": load_start,
        "load_average_after": os.getloadavg(),
        "coverage": wcov,
    }
    _rows_from_scores(rows, ws, f"weekly {sensor} clusters", 7)
    if halves is not None:
        # the default's rule was chosen on the first half of these dates: the second half is
        # the out-of-sample check on this set
        meta[key]["first_half_scores"] = halves["first_half"].to_dict(orient="records")
        meta[key]["second_half_scores"] = halves["second_half"].to_dict(orient="records")
        _rows_from_scores(rows, halves["second_half"], f"weekly {sensor} clusters, second half "
                          "of the issue dates (out-of-sample for the rule)", 7)  # fmt: skip
    _goal_rows(rows, ws, wcov, f"weekly {sensor} clusters", 7, min_lead=4, alerts_lead=None)
    rows.append(
        Row(
            f"weekly {sensor} hindcast wall time ({meta[key]['n_series']} series, auto (its "
            "candidates: the seed's GP, linear AR, AR + GP, gradient boosting) + persistence)",
            wwall,
            None,
            unit="s",
            notes=f"process CPU {meta[key]['cpu_s']:.0f} s (all tasks, 2 worker processes); "
            f"load {load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores); "
            "goal < 300 s",
        )
    )


def _goal_rows(rows, scores, cov, label, step, *, min_lead, alerts_lead):
    """#20's goals: auto vs AstroCast's stored hindcasts from ``min_lead`` on, drought alerts
    at ``alerts_lead`` (hit >= 0.90, false alarm <= 0.04), 68% interval coverage 63-73%."""
    wide = scores.set_index(["lead", "model"])
    for lead in sorted(scores["lead"].unique()):
        if lead < min_lead or (lead, "astrocast_stored") not in wide.index:
            continue
        a, b = wide.loc[(lead, "auto"), "r2"], wide.loc[(lead, "astrocast_stored"), "r2"]
        rows.append(
            Row(
                f"{label} VCI3M R2 vs AstroCast stored, lead {lead * step} d",
                float(a),
                float(b),
                peer_name="AstroCast stored hindcast",
                unit="R2",
                higher_is_better=True,
                notes=f"goal: beat it at >= 30 d: {a > b}",
            )
        )
    if alerts_lead is not None:
        for col, goal, ok in (
            ("hit_rate", ">= 0.90", lambda v: v >= 0.90),
            ("false_alarm_rate", "<= 0.04", lambda v: v <= 0.04),
        ):
            v = float(wide.loc[(alerts_lead, "auto"), col])
            rows.append(
                Row(
                    f"{label} drought-alert {col.replace('_', ' ')}, lead {alerts_lead * step} d",
                    v,
                    float(wide.loc[(alerts_lead, "astrocast_stored"), col]),
                    peer_name="AstroCast stored hindcast",
                    unit="",
                    higher_is_better=col == "hit_rate",
                    notes=f"goal {goal}: {ok(v)}",
                )
            )
    c = cov.get("auto", {}).get("within_1sigma")
    if c is not None:
        by = cov["auto"]["within_1sigma_by_lead"]
        rows.append(
            Row(
                f"{label} 68% interval coverage (auto, all leads)",
                c,
                None,
                unit="",
                higher_is_better=True,
                notes=f"goal 0.63-0.73: {0.63 <= c <= 0.73}; by lead "
                + " ".join(f"{v:.3f}" for v in by.values()),
            )
        )


BASELINES = (
    "linear_ar",
    "linear_ar_spatial",
    "persistence",
    "astrocast_stored",
    "gp",
    "random_forest",
)


def _rows_from_scores(rows, scores, label, step):
    wide = scores.set_index(["lead", "model"])
    for lead in sorted(scores["lead"].unique()):

        def get(m, col, lead=lead):
            return float(wide.loc[(lead, m), col]) if (lead, m) in wide.index else None

        extra = {
            m: {c: get(m, c) for c in ("r2", "rmse", "hit_rate", "false_alarm_rate")}
            for m in scores["model"].unique()
        }
        # baselines: the plain models, and the seed's GP and linear AR as run inside "auto"
        base = {
            m: get(m, "r2")
            for m in scores["model"].unique()
            if m.split("/")[-1] in BASELINES and m != "auto"
        }
        best_name = max(base, key=lambda m: base[m])
        cands = ", ".join(
            f"{m} {get(m, 'r2'):.3f}" for m in sorted(scores["model"].unique()) if m != "auto"
        )
        rows.append(
            Row(
                f"{label} VCI3M R2, lead {lead * step} d",
                get("auto", "r2"),
                base[best_name],
                peer_name=f"best baseline ({best_name})",
                unit="R2",
                higher_is_better=True,
                notes=f"default >= best baseline: {get('auto', 'r2') >= base[best_name]}; {cands}",
                extra=extra,
            )
        )
