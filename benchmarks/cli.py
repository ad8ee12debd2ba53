"""Start-up time of the command line: ``skysense <area> --help`` in a fresh process.

Rows
----
* ``skysense --help`` and ``skysense <area> --help`` for every area module in
  ``skysense/cli``: wall time of a fresh ``python -m skysense.cli ... --help`` subprocess,
  median of ``--repeat`` runs (default 5), seconds. The target is well under 1 s: the CLI
  imports the heavy libraries (NumPy, pandas, astropy, Dask) only inside the verb that runs.
* Peer: the bare interpreter, ``python -c pass``, timed the same way: the floor that no
  Python command line can beat. The ratio (peer/skysense) is the share of the time that is
  interpreter start-up.

Each row's notes give the fastest and slowest run, and the extra field the modules that
``-X importtime`` reports above 5 ms cumulative at the top level (what is still eager).
"""

from __future__ import annotations

import pkgutil
import statistics
import subprocess
import sys
import time

from benchmarks._harness import Row

__all__ = ["run", "add_arguments"]


def add_arguments(parser) -> None:
    parser.add_argument(
        "--repeat", type=int, default=5, help="fresh processes per command (default 5)"
    )


def _areas() -> list[str]:
    import skysense.cli

    return sorted(
        m.name for m in pkgutil.iter_modules(skysense.cli.__path__) if not m.name.startswith("_")
    )


def _times(argv: list[str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def _eager_imports(argv: list[str], threshold_us: int = 5000) -> list[str]:
    """Top-level modules that ``-X importtime`` says took more than ``threshold_us``."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, check=True
    )
    out = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and int(cumulative) > threshold_us:
            if not name.startswith("  "):  # top level only (children are indented)
                out.append(f"{name.strip()} {int(cumulative) / 1000:.0f} ms")
    return out


def run(opts) -> tuple[list[Row], dict]:
    repeat = 3 if opts.quick else opts.repeat
    peer_times = _times([sys.executable, "-c", "pass"], repeat)
    peer = statistics.median(peer_times)
    rows = []
    for area in [None, *_areas()]:
        args = ["-m", "skysense.cli", *([area] if area else []), "--help"]
        times = _times([sys.executable, *args], repeat)
        rows.append(
            Row(
                f"skysense {area + ' ' if area else ''}--help",
                statistics.median(times),
                peer,
                peer_name="python -c pass",
                unit="s",
                notes=f"min {min(times):.3f} s, max {max(times):.3f} s, {repeat} runs",
                extra={"times_s": times, "eager_imports": _eager_imports(args)},
            )
        )
    meta = {
        "repeat": repeat,
        "peer_times_s": peer_times,
        "python": sys.executable,
        "target_s": 1.0,
    }
    return rows, meta
