"""``skysense catalog radio-id``: radio cross-identification by likelihood ratio."""

from __future__ import annotations

from skysense.cli._common import SCHEDULER, verb

__all__ = ["add_verbs"]

_RADIO_ID = f"""
config | radio ID configuration (YAML or TOML)
masterlist | masterlist: HATS directory, Parquet or FITS file
--out required | output directory (replaced atomically)
{SCHEDULER}
"""


def _radio_id(args) -> str:
    from skysense._dask import show_progress
    from skysense.catalog.radio.config import load_radio_config
    from skysense.catalog.radio.io import describe_radio_id, run_radio_id

    s = run_radio_id(load_radio_config(args.config), args.masterlist, args.out,
                     scheduler=args.scheduler, progress=show_progress())  # fmt: skip
    return describe_radio_id(s, args.out)


def add_verbs(verbs) -> None:
    """Add ``radio-id`` to ``skysense catalog``."""
    verb(verbs, "radio-id", _radio_id,
         "identify radio sources in a masterlist by likelihood ratio", _RADIO_ID)  # fmt: skip
