"""Flat vs hierarchical XID+ flux prior: interval coverage with simulation truth (#18).

``python -m benchmarks._xid_prior [--seeds 6] [--area 0.01] [--json FILE]`` fits the
:mod:`skysense.sim` SPIRE fields of :func:`skysense.xid.calibration.calibrate_all_sources`
(every source listed, nothing about the population supplied) with XID+'s flat prior, with the
hierarchical prior learned from each field, and, for reference, with the log-normal prior
whose median and scatter come from an independent realisation; then the same two priors on
:func:`skysense.xid.simulate.simulate_field` toy maps (power-law fluxes from 0.3 mJy, most
below the 2 mJy noise), and what the two-pass tiling of the hierarchical prior costs: 0.04 deg^2
fields fitted whole and with :func:`skysense.xid.engine.fit_tiles` (150 sources per tile, 4
pilot tiles). Prints the overall 68 % / 95 % coverage per band and prior, and with
``--json`` writes them with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

from benchmarks._harness import write_json
from skysense.xid.calibration import calibrate_all_sources
from skysense.xid.model import GaussianBeam, band_model, pointing_matrix
from skysense.xid.sampler import sample_band
from skysense.xid.simulate import simulate_field

__all__ = ["main", "toy_coverage", "tiled_coverage"]


def tiled_coverage(seeds, *, area_deg2: float = 0.04) -> list[dict]:
    """68 % coverage per band, hierarchical prior, whole-field fit vs two-pass tiled fit."""
    import tempfile

    from skysense.xid.calibration import SPIRE_BANDS, simulate_spire
    from skysense.xid.engine import fit_tiles
    from skysense.xid.fit import fit

    kw = {"n_samples": 600, "n_warmup": 400, "n_chains": 2, "flux_kind": "hierarchical"}
    kw["on_duplicate"] = "keep"
    hits = {(k, b): [] for k in ("whole", "tiled") for b in SPIRE_BANDS}
    for seed in seeds:
        maps, truth = simulate_spire(int(seed), area_deg2=area_deg2)
        truth = truth.assign(id=truth["id"].astype(str))
        prior = truth[["id", "ra", "dec"]]
        res = fit(maps, prior, random_state=int(seed), **kw)
        with tempfile.TemporaryDirectory() as d:
            cat = fit_tiles(maps, prior, d, sources_per_tile=150, random_state=int(seed), **kw)
        cat = cat.merge(truth, left_on="HELP_ID", right_on="id")
        for b in SPIRE_BANDS:
            q = np.percentile(
                res.posteriors[b].flux.reshape(-1, res.models[b].nsrc), [15.9, 84.1], 0
            )
            t = truth[f"f_{b}"].to_numpy()[res.fitted[b]]
            hits["whole", b].append((t >= q[0]) & (t <= q[1]))
            c = cat[cat[f"F_{b.upper()}"].notna()]
            lo, hi = c[f"FErr_{b.upper()}_l"].to_numpy(), c[f"FErr_{b.upper()}_u"].to_numpy()
            t = c[f"f_{b}"].to_numpy()
            hits["tiled", b].append((t >= lo) & (t <= hi))
    rows = []
    for (k, b), h in hits.items():
        h = np.concatenate(h)
        rows.append({"fit": k, "band": b, "n": int(h.size), "cover68": float(h.mean())})
    return rows


def toy_coverage(kind: str, seeds, *, n_sources: int = 120, size: int = 40) -> dict:
    """68 % / 95 % coverage of ``kind`` on ``simulate_field`` toy maps, all and below the noise."""
    hit68, hit95, true = [], [], []
    yy, xx = np.mgrid[0:size, 0:size]
    for seed in seeds:
        sim = simulate_field(
            n_sources,
            size_pix=size,
            noise_mjy=2.0,
            flux_min_mjy=0.3,
            margin_pix=2,
            random_state=seed,
        )
        src = sim.sources
        a = pointing_matrix(src.x, src.y, xx.ravel(), yy.ravel(), GaussianBeam(18.15), 6.0)
        m = band_model(
            "spire_250", a, sim.sky.image_mjy.ravel(), sim.sky.error_mjy.ravel(), flux_kind=kind
        )
        p = sample_band(m, n_samples=1000, n_warmup=500, n_chains=2, random_state=seed)
        q = np.percentile(p.flux.reshape(-1, m.nsrc), [2.5, 15.9, 84.1, 97.5], axis=0)
        t = src["flux_true"].to_numpy()
        hit68.append((t >= q[1]) & (t <= q[2]))
        hit95.append((t >= q[0]) & (t <= q[3]))
        true.append(t)
    h68, h95, t = np.concatenate(hit68), np.concatenate(hit95), np.concatenate(true)
    faint = t < 2.0
    return {
        "prior": kind,
        "n": int(t.size),
        "cover68": float(h68.mean()),
        "cover95": float(h95.mean()),
        "n_below_noise": int(faint.sum()),
        "cover68_below_noise": float(h68[faint].mean()),
        "cover95_below_noise": float(h95[faint].mean()),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both experiments, print the tables and optionally write them as JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks._xid_prior", description=__doc__)
    p.add_argument("--seeds", type=int, default=6, help="number of simulated fields")
    p.add_argument("--area", type=float, default=0.01, help="field area, deg^2")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the tables as JSON")
    args = p.parse_args(argv)
    seeds = range(args.seeds)
    out: dict = {"load_before": os.getloadavg(), "seeds": args.seeds, "area_deg2": args.area}
    rows = []
    for kind in ("uniform", "hierarchical", "lognormal"):
        tab = calibrate_all_sources(seeds, area_deg2=args.area, flux_kind=kind)
        for r in tab[tab["flux_bin_mjy"] == "all"].to_dict(orient="records"):
            rows.append({"prior": kind, **r})
    sim = pd.DataFrame(rows)[["prior", "band", "n", "cover68", "cover95", "z_median"]]
    print(f"== skysense.sim SPIRE fields, every source listed ({args.seeds} x {args.area} deg^2)")
    print(sim.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    toy = pd.DataFrame([toy_coverage(k, seeds) for k in ("uniform", "hierarchical")])
    print(
        f"\n== simulate_field toy maps, 120 sources from 0.3 mJy, noise 2 mJy ({args.seeds} maps)"
    )
    print(toy.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    tiled = pd.DataFrame(tiled_coverage(seeds[:2]))
    print("\n== hierarchical prior: whole-field fit vs two-pass tiles (2 fields of 0.04 deg^2)")
    print(tiled.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    out["hierarchical_whole_vs_tiled"] = tiled.to_dict(orient="records")
    out["sim_spire_all_listed"] = sim.to_dict(orient="records")
    out["toy_maps"] = toy.to_dict(orient="records")
    out["load_after"] = os.getloadavg()
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
