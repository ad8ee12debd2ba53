"""Names XID+ recognises: catalogue columns and the HELP map bands.

Pure: the identifier names (positions: :data:`skysense.tables.RA_NAMES` and
:data:`skysense.tables.DEC_NAMES`), and the one lookup that every reader and
matcher of :mod:`skysense.xid` uses, so they accept the same names and fail the same way.

:data:`MAP_BANDS` is the one table of the far-infrared maps HELP de-blended with XID+ (its
DMU 26 fitted MIPS 24, PACS 100/160 and SPIRE 250/350/500): band name as in the HELP filter
list and masterlists (``f_pacs_green``), instrument, wavelength, the beam FWHM and the map
pixel of the standard maps. They are the defaults when a map header gives no ``FWHM``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from skysense.errors import InputError

__all__ = ["ID_NAMES", "find_column", "MapBand", "MAP_BANDS", "FWHM_ARCSEC", "PIXEL_ARCSEC"]

#: Identifier columns, in order of preference (compared without case).
ID_NAMES = ("help_id", "id", "object_id", "source_id")


@dataclasses.dataclass(frozen=True)
class MapBand:
    """A HELP far-infrared map band.

    Attributes
    ----------
    band : str - HELP band name (``pacs_green``)
    instrument : str - ``MIPS``, ``PACS`` or ``SPIRE``
    wavelength_um : float, um - nominal wavelength
    fwhm_arcsec : float, arcsec - beam FWHM of the standard maps
    pixel_arcsec : float, arcsec - pixel of the standard maps
    """

    band: str
    instrument: str
    wavelength_um: float
    fwhm_arcsec: float
    pixel_arcsec: float


#: HELP map bands, by wavelength. MIPS and SPIRE: the HerMES/SWIRE maps XID+ was run on
#: (SPIRE 18.15/25.15/36.3" beams on 6/8.33/12" pixels). PACS: the scan-map PSF FWHM at
#: 20"/s (PACS Observer's Manual: 6.69" x 6.89" at 100 um, 10.65" x 12.13" at 160 um) as
#: circular 6.8" and 11.4"; the 1.7" and 3.4" pixels are those of :data:`skysense.sim.maps.PACS_MAPS`
#: (PEP/HerMES-like sampling), real maps carry their own WCS.
MAP_BANDS: dict[str, MapBand] = {
    b.band: b
    for b in (
        MapBand("mips_24", "MIPS", 24.0, 5.9, 1.2),
        MapBand("pacs_green", "PACS", 100.0, 6.8, 1.7),
        MapBand("pacs_red", "PACS", 160.0, 11.4, 3.4),
        MapBand("spire_250", "SPIRE", 250.0, 18.15, 6.0),
        MapBand("spire_350", "SPIRE", 350.0, 25.15, 8.33),
        MapBand("spire_500", "SPIRE", 500.0, 36.3, 12.0),
    )
}
#: HELP band name -> beam FWHM (arcsec) of the standard HELP maps.
FWHM_ARCSEC: dict[str, float] = {b: m.fwhm_arcsec for b, m in MAP_BANDS.items()}
#: HELP band name -> map pixel size (arcsec) of the standard HELP maps.
PIXEL_ARCSEC: dict[str, float] = {b: m.pixel_arcsec for b, m in MAP_BANDS.items()}


def find_column(
    columns: Iterable[str],
    names: Sequence[str],
    what: str,
    given: str | None = None,
    *,
    path=None,
    label: str | None = None,
) -> str:
    """The column of ``columns`` that holds ``what``: ``given`` if set, else the first of ``names``.

    Parameters
    ----------
    columns : iterable of str - the table's columns
    names : sequence of str - lower-case candidates, in order of preference
    what : str - what the column holds, for the error (``"RA"``)
    given : str, optional - a column the caller named (must exist, exact case)
    path : path, optional - the file, for the error
    label : str, optional - the table, for the error (``"masterlist"``)

    Raises
    ------
    InputError
        ``given`` is not a column, or no candidate is.
    """
    columns = list(columns)
    prefix = f"{label}: " if label else ""
    if given is not None:
        if given not in columns:
            raise InputError(f"{prefix}{what} column {given!r} not found", path=path, column=given)
        return given
    low = {c.lower(): c for c in columns}
    for n in names:
        if n in low:
            return low[n]
    raise InputError(f"{prefix}no {what} column (tried {', '.join(names)})", path=path)
