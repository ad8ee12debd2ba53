"""``python -m benchmarks AREA [options]``: run one area's side-by-side benchmark."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import benchmarks
from benchmarks._harness import report


def _areas() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("area", choices=_areas())
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(f"benchmarks.{args.area}")
    sub = argparse.ArgumentParser(prog=f"python -m benchmarks {args.area}")
    if hasattr(module, "add_arguments"):
        module.add_arguments(sub)
    opts = sub.parse_args(rest)
    opts.quick = args.quick
    rows, meta = module.run(opts)
    report(args.area, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
