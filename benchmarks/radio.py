"""Radio cross-identification benchmark: likelihood ratio vs nearest neighbour at the same radius.

Real data: AT20G Bright Source Sample (20 GHz) against SuperCOSMOS (``../shared/data/crossmatch``;
skipped with a reason when absent). The reference IDs are those AT20G lists (its optical
magnitude equals the SuperCOSMOS B magnitude of the object, within 0.6 mag for galaxies
measured elsewhere; see ``tests/catalog/_at20g.py``). Reported: recovered fraction of the listed
IDs, agreement of the IDs made with the listed ones, and the LR method's own mean reliability.

Simulation: a crowded field (2,500 radio sources with 1-3 arcsec elliptical errors, 60,000
optical objects per deg^2, 70% with a counterpart): completeness and purity of LR vs nearest
neighbour, and the fitted Q0 against the truth.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._harness import ROOT, SHARED_DATA, Row

# The AT20G reader and scorer, and the simulated field, are the tests' own (one copy).
sys.path.insert(0, str(ROOT / "tests" / "catalog"))


def _at20g(rows: list[Row], meta: dict) -> None:
    import _at20g

    from skysense.catalog.radio.config import parse_radio_config
    from skysense.catalog.radio.io import run_radio_id

    data = SHARED_DATA / "crossmatch"
    if not (data / "at20g_bss_table2.dat").is_file():
        meta["at20g"] = f"skipped: {data} is absent"
        print(meta["at20g"])
        return
    radio, ml = _at20g.load(data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        radio.to_csv(tmp / "at20g.csv", index=False)
        ml.to_parquet(tmp / "scos.parquet")
        cfg = parse_radio_config(_at20g.config_dict(str(tmp / "at20g.csv")))
        t0 = time.perf_counter()
        s = run_radio_id(cfg, tmp / "scos.parquet", tmp / "out")
        wall = time.perf_counter() - t0
        assoc = pd.read_parquet(tmp / "out" / "radio_associations.parquet")
    acc = assoc[assoc["accepted"]]
    q = pd.Series(np.arange(len(radio)), index=radio["name"])[acc["radio_id"]].to_numpy()
    row = acc["help_id"].str[5:].astype(int).to_numpy()
    listed = np.isfinite(radio["opt_mag"].to_numpy())
    nq, nr = _at20g.nearest_neighbour(radio, ml)
    for tol, label in ((0.6, "listed IDs"), (0.006, "listed IDs, exact B mag")):
        ref = _at20g.reference_ids(radio, ml, tol)
        lr = _at20g.score(listed, ref, q, row, acc["reliability"].to_numpy())
        nn = _at20g.score(listed, ref, nq, nr)
        n = lr["n_listed_in_data"]
        rows.append(Row(f"AT20G {label} recovered ({n})", lr["recovered_fraction"],
                        nn["recovered_fraction"], "nearest neighbour 5\"", "fraction", True))  # fmt: skip
        rows.append(Row(f"AT20G {label} agreement of IDs", lr["agreement"], nn["agreement"],
                        "nearest neighbour 5\"", "fraction", True,
                        notes=f"LR mean reliability {lr['mean_reliability']:.3f}"))  # fmt: skip
        meta[f"at20g_tol_{tol}"] = {"lr": lr, "nn": nn}
    meta["at20g_summary"] = {k: v for k, v in s.items() if k not in ("settings", "outputs")}
    rows.append(Row("AT20G radio-id wall time", wall, None, "", "s"))


def _simulation(rows: list[Row], meta: dict, quick: bool) -> None:
    from _radio_synth import make_field

    from skysense.catalog.match import pairs_within
    from skysense.catalog.radio.config import parse_radio_config
    from skysense.catalog.radio.io import RadioCatalogue, identify_radio
    from skysense.catalog.radio.lr import ellipse_covariance

    n = 800 if quick else 2500
    opt, radio = make_field(n_radio=n, density_deg2=60000.0, radio_sigma=(1.0, 3.0), seed=11)
    cfg = parse_radio_config({
        "radio": {"file": "unused", "band": "sim", "flux": "flux_mjy",
                  "position_error": {"major": "maj", "minor": "min", "pa": "pa"}},
        "optical": {"magnitude": "m_r", "position_error": {"sigma": "err_arcsec"}},
        "method": {"search_radius_arcsec": 6.0, "background_inner_arcsec": 15,
                   "background_outer_arcsec": 60, "mag_edges": [16, 24, 0.5]},
    })  # fmt: skip
    rc = RadioCatalogue(radio.ra.to_numpy(), radio.dec.to_numpy(), radio.flux_mjy.to_numpy(),
                        radio.flux_err_mjy.to_numpy(), radio.name.to_numpy(),
                        ellipse_covariance(radio.maj, radio["min"], radio.pa))  # fmt: skip
    t0 = time.perf_counter()
    res = identify_radio(rc, opt, cfg)
    wall = time.perf_counter() - t0
    host = radio.host.to_numpy()
    acc = res.candidates[res.candidates["accepted"]]
    good = host[acc["query"].to_numpy()] == acc["opt_row"].to_numpy()
    i1, i2, sep = pairs_within(radio.ra, radio.dec, opt.ra, opt.dec, 6.0)
    nn = pd.DataFrame({"q": i1, "o": i2, "s": sep}).sort_values(["q", "s"]).drop_duplicates("q")
    nn_ok = host[nn.q.to_numpy()] == nn.o.to_numpy()
    n_true = int((host >= 0).sum())
    peer = 'nearest neighbour 6"'
    rows.append(Row("sim completeness", good.sum() / n_true, nn_ok.sum() / n_true, peer,
                    "fraction", True))  # fmt: skip
    rows.append(Row("sim purity", good.mean(), nn_ok.mean(), peer, "fraction", True,
                    notes=f"LR mean reliability {acc['reliability'].mean():.3f}"))  # fmt: skip
    rows.append(Row("sim Q0 (truth as peer)", res.model.q0.q0, float(np.mean(host >= 0)),
                    "truth", "", notes="closer is better; ratio not meaningful"))  # fmt: skip
    rows.append(Row(f"sim radio-id wall time ({n} sources, {len(opt)} objects)", wall, None,
                    "", "s"))  # fmt: skip
    meta["sim"] = {"n_radio": n, "n_optical": len(opt), "threshold": res.threshold._asdict(),
                   "expected_false": res.threshold.expected_false,
                   "measured_false": int((~good).sum())}  # fmt: skip


def run(opts) -> tuple[list[Row], dict]:
    meta: dict = {"loadavg_start": Path("/proc/loadavg").read_text().split()[:3]
                  if os.path.exists("/proc/loadavg") else None}  # fmt: skip
    rows: list[Row] = []
    _at20g(rows, meta)
    _simulation(rows, meta, opts.quick)
    if os.path.exists("/proc/loadavg"):
        meta["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average: start {meta['loadavg_start']}, end {meta.get('loadavg_end')}")
    return rows, meta
