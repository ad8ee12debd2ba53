"""XID+ interval coverage on :mod:`skysense.sim` SPIRE maps: prints the calibration tables.

``python -m benchmarks._xid_calibration [--seeds 6] [--area 0.01] [--json FILE]`` runs the two
experiments of :mod:`skysense.xid.calibration` (every source listed, with the log-normal
population prior and with XID+'s flat prior; faint sources left out) and prints one table
each; ``--json`` also writes them, with the load average before and after (as in
``benchmarks/results/xid_calibration.json``). The experiments are pure library code; this
script is the edge that prints and writes.

``--toy-floor DIR`` (the reference data folder) instead diagnoses the XID_basic toy maps eg3
and eg6 (#18's bright-source goal: median |relative error| < 5 % above 20 mJy): whether the
noise map is the map's real noise ((noisy - noiseless) / sigma), the bright sources' S/N
alone and with their listed neighbours (GLS), the noise factor a 5 % median error would
need, and fits with three flux priors: the default (learned skew-normal population), the
population learned as a log-normal (shape fixed at 0, the family XID_basic drew from) and
the simulation's true population supplied (log10 F ~ N(0, 1): the Bayes floor).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._harness import write_json
from skysense.xid.calibration import calibrate_all_sources, calibrate_faint_left_out

__all__ = ["main", "toy_floor"]


def _noise_check(d: Path, ex: str, model, true: np.ndarray) -> dict:
    """The toy map's noise against its noise map, and what it allows the bright sources."""
    import scipy.sparse as sp
    from astropy.io import fits

    noisy, clean, sig = (
        fits.getdata(d / f"{ex}_{k}.fits").astype(float) for k in ("noisymap", "map", "sigmap")
    )
    z = (noisy - clean) / sig
    a = sp.csc_matrix(model.amat)
    q = (a.T @ sp.diags(1.0 / model.sigma_mjy**2) @ a).toarray()
    sd_gls = np.sqrt(np.diag(np.linalg.pinv(q)))  # with the listed neighbours
    sd_alone = 1.0 / np.sqrt(np.diag(q))  # each source alone: the noise-only limit
    br = true > 20
    err = 0.6745 * np.median(sd_gls[br] / true[br])  # median |N(0, sd)| / flux
    return {
        "noise_z_sd": float(z.std()),
        "sigma_pixel_median": float(np.median(sig)),
        "sigma_pixel_p5_p95": [float(v) for v in np.percentile(sig, [5, 95])],
        "n_bright": int(br.sum()),
        "bright_snr_median_alone": float(np.median(true[br] / sd_alone[br])),
        "bright_snr_median_gls": float(np.median(true[br] / sd_gls[br])),
        "bright_gls_sd_over_alone_median": float(np.median(sd_gls[br] / sd_alone[br])),
        "expected_median_abs_rel_err_gls": float(err),
        "noise_factor_for_5pc": float(0.05 / err),
    }


def toy_floor(shared: Path, examples=("eg3", "eg6")) -> list[dict]:
    """Noise diagnosis and fits with three flux priors of the XID_basic toy maps."""
    from benchmarks._xid_confusion import KW, _toy_band_model
    from skysense.xid.fit import fit

    # the module (skysense.xid re-exports the function fit under the same name)
    fit_module = importlib.import_module("skysense.xid.fit")

    d = shared / "xidplus" / "xid_basic_toy"
    rows = []
    for ex in examples:
        m, fitted, sky, prior, true_all, _ = _toy_band_model(d, ex)
        row = {"map": ex, **_noise_check(d, ex, m, true_all[fitted])}
        lg = np.log10(true_all)
        row["true_log10_mean_sd_skew"] = [
            float(lg.mean()),
            float(lg.std()),
            float(np.mean((lg - lg.mean()) ** 3) / lg.std() ** 3),
        ]
        for name, kw, cols in (
            ("default", {}, {}),
            ("learned_lognormal", {"_skew_sd": 0.0}, {}),
            (
                "true_population",
                {"flux_kind": "lognormal"},
                {"flux_mu_toy": 1.0, "flux_sigma_toy": 1.0},
            ),
        ):
            t0, l0 = time.perf_counter(), os.getloadavg()[0]
            skew_sd = kw.pop("_skew_sd", None)
            build = fit_module.build_band_model
            if skew_sd is not None:  # the hierarchical prior with the shape fixed at 0

                def patched(*a, _b=build, _sd=skew_sd, **k):
                    mod, r, bad = _b(*a, **k)
                    fp = dataclasses.replace(mod.flux_prior, hyper_skew_sd=_sd)
                    return dataclasses.replace(mod, flux_prior=fp), r, bad

                fit_module.build_band_model = patched
            try:
                res = fit(
                    [sky], prior.assign(**cols), on_duplicate="keep", random_state=0, **KW, **kw
                )
            finally:
                fit_module.build_band_model = build
            p, mm = res.posteriors["toy"], res.models["toy"]
            draws, true = p.flux.reshape(-1, mm.nsrc), true_all[res.fitted["toy"]]
            q = np.percentile(draws, [2.5, 15.9, 50.0, 84.1, 97.5], axis=0)
            br = true > 20
            row[name] = {
                "cover68": float(np.mean((true >= q[1]) & (true <= q[3]))),
                "cover95": float(np.mean((true >= q[0]) & (true <= q[4]))),
                "bright_median_abs_rel_err": float(
                    np.median(np.abs(q[2][br] - true[br]) / true[br])
                ),
                "wall_s": time.perf_counter() - t0,
                "load": [l0, os.getloadavg()[0]],
            }
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the experiments, print the tables and optionally write them as JSON."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks._xid_calibration",
        description="XID+ interval coverage on skysense.sim SPIRE maps (prints the tables)",
    )
    p.add_argument("--seeds", type=int, default=6, help="number of simulated fields")
    p.add_argument("--area", type=float, default=0.01, help="field area, deg^2")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the tables as JSON")
    p.add_argument(
        "--toy-floor",
        default=None,
        metavar="DIR",
        help="reference data dir: diagnose the XID_basic toy maps' bright-source error floor instead",
    )
    args = p.parse_args(argv)
    if args.toy_floor:
        rows = toy_floor(Path(args.toy_floor))
        for r in rows:
            print(r)
        if args.json:
            write_json(args.json, {"toy_floor": rows})
        return 0
    seeds = range(args.seeds)
    pd.set_option("display.width", 140)
    out = {"load_before": os.getloadavg()}
    for name, fn, kw in (
        ("all sources listed, log-normal population prior", calibrate_all_sources, {}),
        (
            "all sources listed, XID+ default flat prior",
            calibrate_all_sources,
            {"flux_kind": "uniform"},
        ),
        ("faint sources left out (MIPS 24 > 50 uJy listed)", calibrate_faint_left_out, {}),
    ):
        tab = fn(seeds, area_deg2=args.area, **kw)
        print(f"\n== {name} ({args.seeds} fields of {args.area} deg^2)")
        print(tab.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        out[name] = tab.to_dict(orient="records")
    out["load_after"] = os.getloadavg()
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
