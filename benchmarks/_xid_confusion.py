"""#18 acceptance: interval coverage of XID+'s old defaults vs the new ones on simulated SPIRE.

``python -m benchmarks._xid_confusion [--seeds 6] [--area 0.01] [--json FILE]`` fits the
:mod:`skysense.sim` SPIRE fields of :mod:`skysense.xid.calibration` in both experiments
(every source listed; faint sources left out: only MIPS 24 > 50 uJy listed, the pipeline's
default prior cut) with three settings, nothing about the population supplied:

* ``xid+``: XID+'s flat flux prior and white sigma_conf (skysense's defaults before #18),
* ``hierarchical+white``: the hierarchical population prior, white sigma_conf,
* ``default``: the hierarchical prior and the correlated confusion field (the defaults now).

Prints the pooled 68 % / 95 % coverage per band, the bright-source (> 20 mJy) median relative
error and the wall time of each setting with the load average, then each field's coverage
(:func:`skysense.xid.calibration.field_table`), and with ``--json`` writes them. ``--toy DIR`` adds the XID_basic toy maps (eg2, eg3, eg6) fitted with the defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._harness import write_json
from skysense.xid.calibration import (
    MIPS_BANDS,
    PACS_BANDS,
    SPIRE_BANDS,
    calibrate_all_sources,
    calibrate_faint_left_out,
)

__all__ = ["main", "toy_maps"]

SETTINGS = {
    "xid+": {"flux_kind": "uniform", "correlated": False},
    "hierarchical+white": {"flux_kind": "hierarchical", "correlated": False},
    "default": {"flux_kind": None, "correlated": None},
    # MIPS 24 before #18's last change: the hierarchical prior and no confusion term
    "no-confusion": {"flux_kind": None, "correlated": "none"},
}
KW = {"n_samples": 500, "n_warmup": 300, "n_chains": 4}


def _summary(tab: pd.DataFrame) -> list[dict]:
    rows = []
    for band, t in tab.groupby("band"):
        a = t[t.flux_bin_mjy == "all"].iloc[0]
        bright = t[t.flux_bin_mjy.isin(["20-50", "50-inf"])]
        rows.append(
            {
                "band": band,
                "n": int(a.n),
                "cover68": float(a.cover68),
                "cover95": float(a.cover95),
                "n_bright": int(bright.n.sum()),
                # n-weighted over the two bright bins (the table keeps bin medians only)
                "bright_median_rel_err": float(
                    np.sum(bright.n * bright.accuracy_median) / max(bright.n.sum(), 1)
                ),
            }
        )
    return rows


TOY_FWHM_PIX = {"eg2": 2.0, "eg3": 3.0, "eg6": 3.0}


def _gls_limit(model, true: np.ndarray, n_real: int = 200) -> dict:
    """What the map allows for the bright (> 20 mJy) sources, whatever the prior.

    The unbiased generalised-least-squares fluxes ``(A^T W A)^-1 A^T W d`` (known beam,
    positions and noise) on this map, and the expected median |relative error| of the
    same estimator over ``n_real`` noise realisations (Cramer-Rao: no unbiased estimator
    does better on average).
    """
    import scipy.sparse as sp

    bright = true > 20
    if not bright.any():
        return {}
    a = sp.csc_matrix(model.amat)
    w = 1.0 / model.sigma_mjy**2
    q = (a.T @ sp.diags(w) @ a).toarray()
    cov = np.linalg.pinv(q)  # sources sharing a pixel position: their sum only
    est = cov @ (a.T @ (w * model.data_mjy))
    rng = np.random.default_rng(0)
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0, None))
    sims = [
        np.median(np.abs(root @ rng.standard_normal(true.size))[bright] / true[bright])
        for _ in range(n_real)
    ]
    return {
        "gls_bright_median_abs_rel_err": float(
            np.median(np.abs(est[bright] - true[bright]) / true[bright])
        ),
        "gls_bright_expected_median_abs_rel_err": float(np.mean(sims)),
        "gls_bright_expected_p5_p95": [float(v) for v in np.percentile(sims, [5, 95])],
        "gls_bright_median_sd_mjy": float(np.median(np.sqrt(np.diag(cov))[bright])),
    }


def _toy_problem(d: Path, ex: str):
    """The XID_basic map ``ex`` as a SkyMap in mJy/beam, its prior list and true fluxes."""
    from astropy.table import Table

    from skysense.xid.io import read_map
    from skysense.xid.skymap import SkyMap

    # XID_basic's Gaussian PRF: FWHM 2 px in eg2, 3 px in eg3-eg6 (the noiseless maps are
    # reproduced to 1e-4 of their rms by sum_k F_k PRF_k with these, per-pixel units)
    fwhm_pix = TOY_FWHM_PIX.get(ex, 3.0)
    sky = read_map(
        d / f"{ex}_noisymap.fits", band="toy", noise_path=d / f"{ex}_sigmap.fits", unit="mJy/beam"
    )
    area = 2 * np.pi * (fwhm_pix / 2.3548200450309493) ** 2  # per pixel -> per beam
    sky = SkyMap("toy", sky.image_mjy * area, sky.error_mjy * area, sky.wcs, fwhm_pix * 4.0)
    src = Table.read(d / f"{ex}_src.fits").to_pandas()
    ra, dec = sky.wcs.pixel_to_world_values(src.X.to_numpy(float), src.Y.to_numpy(float))
    prior = pd.DataFrame({"id": [f"s{i}" for i in range(len(src))], "ra": ra, "dec": dec})
    return sky, prior, src["F"].to_numpy(float), fwhm_pix


def _toy_band_model(d: Path, ex: str):
    """A toy map's band model without a confusion term: ``(model, fitted, sky, prior, true,
    fwhm_pix)``, ``fitted`` indexing the prior rows the model kept."""
    from skysense.xid.fit import build_band_model
    from skysense.xid.model import ConfusionPrior

    sky, prior, true, fwhm_pix = _toy_problem(d, ex)
    m, fitted, _ = build_band_model(
        sky, prior, on_duplicate="keep", conf_prior=ConfusionPrior("none")
    )
    return m, fitted, sky, prior, true, fwhm_pix


def toy_limits(shared: Path, examples=("eg2", "eg3", "eg6")) -> list[dict]:
    """The GLS information limit of each toy map's bright sources (no sampling)."""
    d = shared / "xidplus" / "xid_basic_toy"
    rows = []
    for ex in examples:
        m, fitted, _, _, true, fwhm_pix = _toy_band_model(d, ex)
        rows.append({"map": ex, "fwhm_pix": fwhm_pix, **_gls_limit(m, true[fitted])})
    return rows


def toy_maps(shared: Path, examples=("eg2", "eg3", "eg6")) -> list[dict]:
    """Coverage and bright (> 20 mJy) median |relative error| on the XID_basic toy maps."""
    from skysense.xid.fit import fit

    d = shared / "xidplus" / "xid_basic_toy"
    rows = []
    for ex in examples:
        sky, prior, true_all, fwhm_pix = _toy_problem(d, ex)
        t0 = time.perf_counter()
        res = fit([sky], prior, on_duplicate="keep", random_state=0, **KW)
        wall = time.perf_counter() - t0
        m, p = res.models["toy"], res.posteriors["toy"]
        draws = p.flux.reshape(-1, m.nsrc)
        true = true_all[res.fitted["toy"]]
        q = np.percentile(draws, [2.5, 15.9, 50.0, 84.1, 97.5], axis=0)
        bright = true > 20
        rows.append(
            {
                "map": ex,
                "fwhm_pix": fwhm_pix,
                "n": int(true.size),
                "cover68": float(np.mean((true >= q[1]) & (true <= q[3]))),
                "cover95": float(np.mean((true >= q[0]) & (true <= q[4]))),
                "n_bright": int(bright.sum()),
                "bright_median_abs_rel_err": float(
                    np.median(np.abs(q[2][bright] - true[bright]) / true[bright])
                )
                if bright.any()
                else None,
                **_gls_limit(m, true),
                "sigma_conf_median": float(np.median(p.sigma_conf)),
                "wall_s": wall,
                "load": os.getloadavg(),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the experiments, print the tables and optionally write them as JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks._xid_confusion", description=__doc__)
    p.add_argument("--seeds", type=int, default=6, help="number of simulated fields")
    p.add_argument("--area", type=float, default=0.01, help="field area, deg^2")
    p.add_argument(
        "--settings", default=",".join(SETTINGS), help="comma-separated settings ('' for none)"
    )
    p.add_argument(
        "--bands",
        choices=("spire", "pacs", "mips"),
        default="spire",
        help="simulated maps (mips: faint left out means the pipeline's IRAC 3.6 um > 45 uJy cut)",
    )
    p.add_argument("--toy", default=None, metavar="DIR", help="reference data dir (toy maps)")
    p.add_argument("--toy-examples", default="eg2,eg3,eg6", help="comma-separated toy maps to fit")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the tables as JSON")
    args = p.parse_args(argv)
    seeds = range(args.seeds)
    bands = {"spire": SPIRE_BANDS, "pacs": PACS_BANDS, "mips": MIPS_BANDS}[args.bands]
    # the MIPS map's own listing must not depend on its fluxes: cut on IRAC 3.6 um instead
    cut = {"cut_band": "irac_i1", "mips_cut_mjy": 0.045} if args.bands == "mips" else {}
    out: dict = {
        "seeds": args.seeds,
        "area_deg2": args.area,
        "bands": list(bands),
        "sampler": KW,
        "runs": [],
    }
    for exp, fn, extra in (
        ("all_listed", calibrate_all_sources, {}),
        ("faint_left_out", calibrate_faint_left_out, cut),
    ):
        for name in filter(None, args.settings.split(",")):
            load0, t0 = os.getloadavg(), time.perf_counter()
            tab, fields = fn(
                seeds,
                area_deg2=args.area,
                bands=bands,
                by_field=True,
                **SETTINGS[name],
                **KW,
                **extra,
            )
            run = {
                "experiment": exp,
                "setting": name,
                "wall_s": time.perf_counter() - t0,
                "load_before": load0,
                "load_after": os.getloadavg(),
                "bands": _summary(tab),
                # per field: its faint sources share the learned population, so fields'
                # coverages move together; the spread says what 6 fields can resolve
                "fields": fields.to_dict(orient="records"),
            }
            out["runs"].append(run)
            print(f"== {exp}, {name}: {run['wall_s']:.0f} s, load {load0[0]:.1f}", flush=True)
            print(
                pd.DataFrame(run["bands"]).to_string(index=False, float_format="%.3f"), flush=True
            )
            cols = ["band", "seed", "n", "cover68", "cover95", "below68", "true_log10_skew"]
            print(fields[cols].to_string(index=False, float_format="%.3f"), flush=True)
    if args.toy:
        out["toy_maps"] = toy_maps(Path(args.toy), tuple(args.toy_examples.split(",")))
        out["toy_gls_limits"] = toy_limits(Path(args.toy))
        print("== XID_basic toy maps, default settings")
        print(pd.DataFrame(out["toy_maps"]).drop(columns="load").to_string(index=False))
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
