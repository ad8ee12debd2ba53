"""Write the results of a hidden-source search: candidate table, final prior, final fit.

Every file is written atomically (:func:`skysense.xid.io.write_table`,
:func:`skysense.xid.io.write_outputs`); the candidate table carries column units, so it is
ready for ``skysense vo publish``.
"""

from __future__ import annotations

import os
from pathlib import Path

from skysense.xid.hidden.search import HIDDEN_UNITS, HiddenResult
from skysense.xid.io import write_outputs, write_table

__all__ = ["write_hidden"]


def write_hidden(
    hidden: HiddenResult, out_dir: str | os.PathLike, *, fit_outputs: bool = True
) -> dict:
    """Write ``hidden.fits/.parquet`` (candidates), ``prior_hidden.fits/.parquet`` (the prior
    with the added sources) and, with ``fit_outputs``, the final XID+ fit's outputs.

    Returns
    -------
    dict - name -> path or list of paths
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = hidden.table()
    units = dict(HIDDEN_UNITS)
    units.update({c: "mJy" for c in table.columns if c.startswith(("F_", "FErr_"))})
    written = {"hidden": write_table(table, out / "hidden", units=units)}
    written["prior"] = write_table(
        hidden.prior.reset_index(drop=True), out / "prior_hidden", units={"ra": "deg", "dec": "deg"}
    )
    if fit_outputs:
        written.update(write_outputs(hidden.result, out, png=False))
    return written
