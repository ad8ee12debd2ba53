"""#18: what the tiled two-pass population costs against a whole-field hierarchical fit.

``python -m benchmarks._xid_tiled_population [--seeds 6] [--out DIR]`` simulates small SPIRE
250 fields (500 sources on 110^2 pixels of 6", 2 mJy noise, :func:`skysense.xid.simulate
.simulate_field`, seeds 0..N-1), each fitted three ways with the default hierarchical prior:

* ``whole``: one fit of the field, the population learned with the fluxes,
* ``tiled_skew``: :func:`skysense.xid.engine.fit_tiles` (2-3 tiles of ~260 sources, 2 pilot
  tiles): pass 2 fixes the learned skew-normal population,
* ``tiled_noskew``: the same population file with its skew set to 0 (a log-normal of the
  learned mean and sd in log flux, what pass 2 fixed before).

Prints per setting the 68 % interval coverage of the true fluxes (all, below and above twice
the noise) and, against ``whole``, the median and 95th percentile of |median shift| / sd and
the median interval-width ratio, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from skysense.xid.engine import fit_tiles
from skysense.xid.fit import fit
from skysense.xid.simulate import simulate_field

SETTINGS = ("whole", "tiled_skew", "tiled_noskew")


def _field(seed: int, out: Path, kw: dict) -> list[tuple]:
    f = simulate_field(500, size_pix=110, noise_mjy=2.0, margin_pix=3, random_state=seed)
    prior = f.sources[["id", "ra", "dec"]]
    truth = f.sources.set_index("id")["flux_true"]
    tiles = {"sources_per_tile": 260, "buffer_arcsec": 40.0, "n_pilot": 2, "n_rep": 0}
    res = {"whole": fit([f.sky], prior, random_state=seed, **kw).catalogue(n_rep=0)}
    d = out / f"s{seed}"
    shutil.rmtree(d, ignore_errors=True)
    res["tiled_skew"] = fit_tiles([f.sky], prior, d / "skew", random_state=seed, **tiles, **kw)
    pop = json.loads((d / "skew" / "population.json").read_text(encoding="utf-8"))
    (d / "noskew").mkdir(parents=True)
    noskew = {b: [*v[:2], 0.0] for b, v in pop.items()}
    (d / "noskew" / "population.json").write_text(json.dumps(noskew), encoding="utf-8")
    res["tiled_noskew"] = fit_tiles([f.sky], prior, d / "noskew", random_state=seed, **tiles, **kw)
    w0 = res["whole"].set_index("HELP_ID").loc[truth.index]
    sd0 = (w0["FErr_SPIRE_250_u"] - w0["FErr_SPIRE_250_l"]) / 2
    rows = []
    for name in SETTINGS:
        c = res[name].set_index("HELP_ID").loc[truth.index]
        inside = (truth >= c["FErr_SPIRE_250_l"]) & (truth <= c["FErr_SPIRE_250_u"])
        faint = truth < 4.0
        dz = np.abs(c["F_SPIRE_250"] - w0["F_SPIRE_250"]) / sd0
        wr = (c["FErr_SPIRE_250_u"] - c["FErr_SPIRE_250_l"]) / (2 * sd0)
        rows.append(
            (name, inside.mean(), inside[faint].mean(), inside[~faint].mean(), len(c))
            + (np.median(dz), np.percentile(dz, 95), np.median(wr))
        )
    print(f"seed {seed}: population (10^mean mJy, sd dex, alpha) {pop}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--out", type=Path, default=None, help="work directory (default: temporary)")
    args = ap.parse_args(argv)
    kw = {"n_samples": 500, "n_warmup": 300, "n_chains": 2}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows = [r for s in range(args.seeds) for r in _field(s, out, kw)]
    print(f"load average {os.getloadavg()[0]:.1f}")
    for name in SETTINGS:
        r = np.array([x[1:] for x in rows if x[0] == name], float)
        w = r[:, 3]
        cov = [np.sum(w * r[:, k]) / w.sum() for k in (0, 1, 2)]
        vs = r[:, 4:].mean(axis=0)
        print(
            f"{name:13s} coverage68 all {cov[0]:.3f} faint {cov[1]:.3f} bright {cov[2]:.3f}; "
            f"vs whole: |dmedian|/sd median {vs[0]:.3f} p95 {vs[1]:.3f}, width ratio {vs[2]:.3f}"
        )


if __name__ == "__main__":
    main()
