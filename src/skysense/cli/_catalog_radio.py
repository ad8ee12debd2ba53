"""``skysense catalog radio-id``: radio cross-identification by likelihood ratio."""

from __future__ import annotations

from skysense.cli._common import add_scheduler_option, add_verb

__all__ = ["add_verbs"]


def _radio_id(args) -> int:
    from skysense._dask import show_progress
    from skysense.catalog.radio.config import load_radio_config
    from skysense.catalog.radio.io import run_radio_id

    s = run_radio_id(load_radio_config(args.config), args.masterlist, args.out,
                     scheduler=args.scheduler, progress=show_progress())  # fmt: skip
    print(
        f"{s['n_ids']} of {s['n_radio']} radio sources identified (LR >= {s['threshold_lr']:.3g}, "
        f"Q0 {s['q0']:.3f}, {s['expected_false_ids']:.1f} expected false) in {args.out}"
    )
    return 0


def add_verbs(verbs) -> None:
    """Add ``radio-id`` to ``skysense catalog``."""
    p = add_verb(verbs, "radio-id", _radio_id,
                 "identify radio sources in a masterlist by likelihood ratio")  # fmt: skip
    p.add_argument("config", help="radio ID configuration (YAML or TOML)")
    p.add_argument("masterlist", help="masterlist: HATS directory, Parquet or FITS file")
    p.add_argument("--out", required=True, help="output directory (replaced atomically)")
    add_scheduler_option(p)
