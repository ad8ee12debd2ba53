"""Registry of HELP band names: camera, effective wavelength and wavelength regime.

HELP names a band ``<camera>_<filter>`` (``megacam_u``, ``ukidss_k``, ``irac_i1``). The list was
seeded from HELP's filter table (H-E-L-P/herschelhelp_python ``documentation/filters.csv``) and
extended with a few common cameras (WISE, 2MASS, Gaia, PACS blue); it is data in this module, not
read at run time. Effective wavelengths are approximate (to ~2 per cent), enough to order bands
and to decide a band's regime.

Regimes (used by the HELP ``flag_optnir_*`` flags):

``uv``       lambda < 0.3 um (GALEX)
``optical``  0.3 <= lambda < 1.1 um (u ... z, y)
``nir``      1.1 <= lambda < 2.6 um (J, H, K)
``mir``      2.6 <= lambda < 10 um (IRAC, WISE W1/W2): HELP's "mid-infrared"
``fir``      lambda >= 10 um (WISE W3/W4, MIPS, PACS, SPIRE): not part of the opt/NIR flags
"""

from __future__ import annotations

from dataclasses import dataclass

from skysense._check import did_you_mean

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


# camera description -> {filter: effective wavelength (um)}
_CAMERAS: dict[str, tuple[str, dict[str, float]]] = {
    "90prime": ("Bok 90-inch prime focus camera", {"g": 0.48, "r": 0.625, "z": 0.92}),
    "acs": (
        "HST Advanced Camera for Surveys",
        {"f435w": 0.432, "f606w": 0.592, "f775w": 0.769, "f814w": 0.806, "f850lp": 0.903},
    ),
    "bessell": (
        "Standard Bessell response",
        {"u": 0.36, "b": 0.44, "v": 0.55, "r": 0.64, "i": 0.80},
    ),
    "cfht12k": ("CFH12K prime focus camera", {"b": 0.44, "r": 0.66, "i": 0.81}),
    "decam": (
        "Dark Energy Camera (DECam)",
        {"g": 0.48, "r": 0.64, "i": 0.78, "z": 0.92, "y": 0.99},
    ),
    "galex": ("GALEX", {"fuv": 0.154, "nuv": 0.231}),
    "gpc1": (
        "Pan-STARRS Gigapixel Camera",
        {"g": 0.49, "r": 0.62, "i": 0.75, "z": 0.87, "y": 0.96},
    ),
    "hawki": ("VLT HAWK-I", {"k": 2.15}),
    "irac": ("Spitzer IRAC", {"i1": 3.56, "i2": 4.50, "i3": 5.74, "i4": 7.92}),
    "isaac": ("VLT ISAAC", {"k": 2.16}),
    "megacam": (
        "CFHT MegaPrime/MegaCam",
        {"u": 0.375, "g": 0.48, "r": 0.63, "i": 0.77, "z": 0.89, "y": 1.02},
    ),
    "mips": ("Spitzer MIPS", {"24": 23.7, "70": 71.4, "160": 156.0}),
    "mmt": ("MMT MegaCam", {"u": 0.36, "g": 0.48, "r": 0.62, "i": 0.76, "z": 0.90}),
    "moircs": ("Subaru MOIRCS", {"k": 2.20, "ks": 2.15}),
    "mosaic": (
        "Mosaic wide-field imager",
        {"u": 0.36, "b": 0.44, "r": 0.65, "i": 0.80, "z": 0.91},
    ),
    "newfirm": (
        "NOAO Extremely Wide-Field Infrared Imager (NEWFIRM)",
        {
            "j1": 1.05,
            "j2": 1.19,
            "j3": 1.28,
            "j": 1.25,
            "h1": 1.56,
            "h2": 1.71,
            "h": 1.64,
            "k": 2.17,
        },
    ),
    "nicmos": ("HST NICMOS", {"f110w": 1.12, "f160w": 1.60}),
    "omega2000": ("Calar Alto OMEGA2000", {"j": 1.22, "ks": 2.15}),
    "omegacam": (
        "VST OmegaCAM",
        {"u": 0.36, "g": 0.48, "r": 0.63, "i": 0.77, "z": 0.89},
    ),
    "pacs": ("Herschel PACS", {"blue": 70.0, "green": 100.0, "red": 160.0}),
    "quirc": ("UH QUIRC", {"hk": 1.9}),
    "sdss": ("SDSS camera", {"u": 0.355, "g": 0.477, "r": 0.623, "i": 0.762, "z": 0.913}),
    "spire": ("Herschel SPIRE", {"250": 250.0, "350": 350.0, "500": 500.0}),
    "suprime": (
        "Subaru Suprime-Cam / Hyper Suprime-Cam",
        {
            "b": 0.44,
            "g": 0.48,
            "v": 0.55,
            "r": 0.62,
            "rc": 0.65,
            "rp": 0.63,
            "i": 0.77,
            "ip": 0.77,
            "z": 0.89,
            "zp": 0.90,
            "zpp": 0.91,
            "y": 0.98,
            "ia484": 0.485,
            "ia527": 0.526,
            "ia624": 0.623,
            "ia679": 0.678,
            "ia738": 0.736,
            "ia767": 0.768,
            "ib427": 0.426,
            "ib464": 0.463,
            "ib505": 0.506,
            "ib574": 0.576,
            "ib709": 0.707,
            "ib827": 0.824,
            "n816": 0.816,
            "n921": 0.921,
            "nb711": 0.712,
            "nb816": 0.815,
        },
    ),
    "tifkam": ("TIFKAM", {"ks": 2.15}),
    "ukidss": (
        "UKIRT Wide Field Camera (WFCAM)",
        {"y": 1.03, "j": 1.25, "h": 1.63, "k": 2.20},
    ),
    "vista": (
        "VISTA InfraRed Camera (VIRCAM)",
        {"z": 0.88, "y": 1.02, "j": 1.25, "h": 1.65, "ks": 2.15},
    ),
    "wfc3": (
        "HST Wide Field Camera 3",
        {"f098m": 0.98, "f105w": 1.05, "f125w": 1.25, "f140w": 1.39, "f160w": 1.54},
    ),
    "wfc": ("INT Wide Field Camera", {"u": 0.36, "g": 0.48, "r": 0.62, "i": 0.77, "z": 0.91}),
    "wfi": (
        "ESO/MPG Wide Field Imager",
        {
            "u": 0.35,
            "b": 0.45,
            "b123": 0.45,
            "v": 0.54,
            "r": 0.65,
            "i": 0.86,
            "416nm": 0.416,
            "461nm": 0.461,
            "485nm": 0.485,
            "518nm": 0.518,
            "571nm": 0.571,
            "604nm": 0.604,
            "646nm": 0.646,
            "696nm": 0.696,
            "753nm": 0.753,
            "815nm": 0.815,
            "856nm": 0.856,
            "914nm": 0.914,
        },
    ),
    "wircam": ("CFHT WIRCam", {"y": 1.02, "j": 1.25, "h": 1.63, "ks": 2.15}),
    "wircs": ("Palomar WIRC", {"j": 1.25, "k": 2.15}),
    # Beyond HELP's table: common all-sky references.
    "wise": ("WISE", {"w1": 3.4, "w2": 4.6, "w3": 12.0, "w4": 22.0}),
    "twomass": ("2MASS", {"j": 1.24, "h": 1.66, "ks": 2.16}),
    "gaia": ("Gaia", {"bp": 0.51, "g": 0.64, "rp": 0.78}),
}

BANDS: dict[str, Band] = {
    f"{camera}_{flt}": Band(f"{camera}_{flt}", desc, lam)
    for camera, (desc, filters) in _CAMERAS.items()
    for flt, lam in filters.items()
}


def is_known_band(name: str) -> bool:
    """True when ``name`` is a registered HELP band name."""
    return name in BANDS


def get_band(name: str) -> Band:
    """The registered :class:`Band` called ``name``.

    Raises
    ------
    KeyError
        ``name`` is not registered; the message suggests the closest names.
    """
    try:
        return BANDS[name]
    except KeyError:
        hint = did_you_mean(name, BANDS, n=3, cutoff=0.6)
        raise KeyError(f"unknown band {name!r}{hint}") from None


def regime_of(name: str) -> str:
    """Wavelength regime of band ``name`` (see :data:`REGIMES`)."""
    return get_band(name).regime
