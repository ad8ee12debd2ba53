"""Registry of HELP band names: camera, effective wavelength and wavelength regime.

HELP names a band ``<camera>_<filter>`` (``megacam_u``, ``ukidss_k``, ``irac_i1``). The list was
seeded from HELP's filter table (H-E-L-P/herschelhelp_python ``documentation/filters.csv``) and
extended with a few common cameras (WISE, 2MASS, Gaia, PACS blue); it is the package data file
``catalog/data/cameras.toml``, read at first use. Effective wavelengths are approximate (to ~2
per cent), enough to order bands and to decide a band's regime.

Regimes (used by the HELP ``flag_optnir_*`` flags):

``uv``       lambda < 0.3 um (GALEX)
``optical``  0.3 <= lambda < 1.1 um (u ... z, y)
``nir``      1.1 <= lambda < 2.6 um (J, H, K)
``mir``      2.6 <= lambda < 10 um (IRAC, WISE W1/W2): HELP's "mid-infrared"
``fir``      lambda >= 10 um (WISE W3/W4, MIPS, PACS, SPIRE): not part of the opt/NIR flags
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from skysense._check import did_you_mean
from skysense._resources import read_toml

__all__ = ["Band", "BANDS", "REGIMES", "get_band", "is_known_band", "regime_of"]

REGIMES = ("uv", "optical", "nir", "mir", "fir")


@dataclass(frozen=True)
class Band:
    """One photometric band.

    Attributes
    ----------
    name : str
        HELP name ``<camera>_<filter>``.
    camera : str
        Camera (instrument) name.
    wavelength_um : float
        Approximate effective wavelength, micrometres.
    """

    name: str
    camera: str
    wavelength_um: float

    @property
    def regime(self) -> str:
        """Wavelength regime: one of :data:`REGIMES`."""
        lam = self.wavelength_um
        if lam < 0.3:
            return "uv"
        if lam < 1.1:
            return "optical"
        if lam < 2.6:
            return "nir"
        if lam < 10.0:
            return "mir"
        return "fir"


BANDS: dict[str, Band]
"""Every registered band by HELP name, from the package data file ``catalog/data/cameras.toml``
(read at first use)."""


@functools.cache
def _bands() -> dict[str, Band]:
    # The camera's description is what Band.camera holds.
    cameras = read_toml("skysense.catalog", "cameras.toml")
    return {
        f"{camera}_{flt}": Band(f"{camera}_{flt}", entry["description"], lam)
        for camera, entry in cameras.items()
        for flt, lam in entry["filters"].items()
    }


def __getattr__(name: str):
    # BANDS is read from its data file when first asked for, not at import.
    if name == "BANDS":
        return _bands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_known_band(name: str) -> bool:
    """True when ``name`` is a registered HELP band name."""
    return name in _bands()


def get_band(name: str) -> Band:
    """The registered :class:`Band` called ``name``.

    Raises
    ------
    KeyError
        ``name`` is not registered; the message suggests the closest names.
    """
    try:
        return _bands()[name]
    except KeyError:
        hint = did_you_mean(name, _bands(), n=3, cutoff=0.6)
        raise KeyError(f"unknown band {name!r}{hint}") from None


def regime_of(name: str) -> str:
    """Wavelength regime of band ``name`` (see :data:`REGIMES`)."""
    return get_band(name).regime
