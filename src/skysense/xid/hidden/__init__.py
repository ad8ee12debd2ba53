"""Hidden far-infrared sources: significant positive XID+ residuals that no prior explains.

- :mod:`~skysense.xid.hidden.search` (pure): :func:`residual_candidates` of one fit and the
  iterative :func:`find_hidden_sources` (fit, find, add to the prior, refit);
- :mod:`~skysense.xid.hidden.io`: :func:`write_hidden` writes the candidate table, the extended
  prior and the final fit's outputs.

Quick start::

    from skysense.xid import read_map, read_prior
    from skysense.xid.hidden import find_hidden_sources, write_hidden
    maps = [read_map("psw.fits", band="spire_250")]
    hidden = find_hidden_sources(maps, read_prior("prior.fits"), random_state=0)
    write_hidden(hidden, "hidden/")
"""

from skysense.xid.hidden.io import write_hidden
from skysense.xid.hidden.search import (
    HIDDEN_UNITS,
    HiddenResult,
    find_hidden_sources,
    residual_candidates,
)

__all__ = [
    "residual_candidates",
    "find_hidden_sources",
    "HiddenResult",
    "HIDDEN_UNITS",
    "write_hidden",
]
