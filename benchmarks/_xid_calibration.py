"""XID+ interval coverage on :mod:`skysense.sim` SPIRE maps: prints the calibration tables.

``python -m benchmarks._xid_calibration [--seeds 6] [--area 0.01] [--json FILE]`` runs the two
experiments of :mod:`skysense.xid.calibration` (every source listed, with the log-normal
population prior and with XID+'s flat prior; faint sources left out) and prints one table
each; ``--json`` also writes them, with the load average before and after (as in
``benchmarks/results/xid_calibration.json``). The experiments are pure library code; this
script is the edge that prints and writes.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from benchmarks._harness import write_json
from skysense.xid.calibration import calibrate_all_sources, calibrate_faint_left_out

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the experiments, print the tables and optionally write them as JSON."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks._xid_calibration",
        description="XID+ interval coverage on skysense.sim SPIRE maps (prints the tables)",
    )
    p.add_argument("--seeds", type=int, default=6, help="number of simulated fields")
    p.add_argument("--area", type=float, default=0.01, help="field area, deg^2")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the tables as JSON")
    args = p.parse_args(argv)
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
