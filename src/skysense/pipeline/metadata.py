"""Column metadata (unit, UCD, description) of the tables the pipeline publishes.

Derived from HELP's column-name conventions: ``m_<band>``/``merr_<band>`` (AB mag),
``f_<band>``/``ferr_<band>`` (uJy; ``_ap_`` for aperture values), ``flag_<band>``,
``<survey>_id``, the photo-z columns of :mod:`skysense.photoz.model`, and XID+'s
``F_<BAND>``/``FErr_<BAND>_u|_l`` (mJy) family.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from skysense.catalog.morphology import SHAPE_DESCRIPTIONS, SHAPE_UCDS, SHAPE_UNITS
from skysense.tables import ColumnMeta, publish_meta

__all__ = ["masterlist_meta", "xid_meta"]

_EM = {
    "megacam_u": "em.opt.U",
    "megacam_g": "em.opt.B",
    "megacam_r": "em.opt.R",
    "suprime_i": "em.opt.I",
    "ukidss_j": "em.IR.J",
    "ukidss_k": "em.IR.K",
    "irac_i1": "em.IR.3-4um",
    "mips_24": "em.IR.15-30um",
    "pacs_green": "em.IR.60-100um",
    "pacs_red": "em.IR.100-200um",
    "spire_250": "em.IR.FIR",
    "spire_350": "em.IR.FIR",
    "spire_500": "em.IR.FIR",
}

_FIXED = {
    "help_id": ("", "meta.id;meta.main", "HELP identifier (from the position)"),
    "object_key": ("", "meta.id", "Internal object key of the merge"),
    "ra": ("deg", "pos.eq.ra;meta.main", "Right ascension (ICRS)"),
    "dec": ("deg", "pos.eq.dec;meta.main", "Declination (ICRS)"),
    "stellarity": ("", "src.class.starGalaxy", "Stellarity (0 galaxy .. 1 star)"),
    "flag_gaia": ("", "meta.code", "Gaia star flag (0 none, 1 possible, 2 probable, 3 star)"),
    "flag_starmask": ("", "meta.code", "Inside the mask of a bright star"),
    "flag_cleaned": ("", "meta.code", "Position cleaned of a duplicate"),
    "flag_merged": ("", "meta.code", "Several sources of one survey merged into this object"),
    "flag_optnir_obs": ("", "meta.code", "Observed in optical (1), near-IR (2) or both (3)"),
    "flag_optnir_det": ("", "meta.code", "Detected in optical (1), near-IR (2) or both (3)"),
    "zphot": ("", "src.redshift.phot", "GPz photometric redshift (predictive mean)"),
    "zphot_err": ("", "stat.error;src.redshift.phot", "Total 1-sigma error of zphot"),
    "zphot_err_model": ("", "stat.error;src.redshift.phot", "Model-uncertainty part of zphot_err"),
    "zphot_err_noise": ("", "stat.error;src.redshift.phot", "Intrinsic-noise part of zphot_err"),
    "zphot_err_input": ("", "stat.error;src.redshift.phot", "Input-error part of zphot_err"),
    "zphot_flag": ("", "meta.code.qual", "0 predicted; 1 no usable band (zphot NaN)"),
    # Radio cross-identification (skysense.catalog.radio)
    "radio_id": ("", "meta.id.cross;em.radio", "Identifier of the radio source identified"),
    "lr": ("", "stat.likelihood;meta.id.cross", "Likelihood ratio of the radio ID"),
    "reliability": ("", "stat.probability;meta.id.cross", "Reliability of the radio ID"),
    "flag_radio_multi": ("", "meta.code.multip", "Several radio sources or candidates (radio ID)"),
}


# Morphology (DMU 3): sizes and shapes from the priority survey (skysense.catalog.morphology).
_FIXED.update(
    {name: (SHAPE_UNITS[name], SHAPE_UCDS[name], SHAPE_DESCRIPTIONS[name]) for name in SHAPE_UCDS}
)


def _em(band: str) -> str:
    low = band.lower()
    if low not in _EM and re.search(r"[0-9p]+(ghz|mhz)$", low):
        return _radio_em(low)
    return _EM.get(low, "")


def _radio_em(band: str) -> str:
    """The IVOA em.radio range of a band named by its frequency (``vla_1p4ghz``)."""
    m = re.search(r"([0-9]+(?:p[0-9]+)?)(ghz|mhz)$", band)
    if not m:
        return "em.radio"
    ghz = float(m[1].replace("p", ".")) * (1.0 if m[2] == "ghz" else 1e-3)
    for hi, name in ((0.15, "em.radio.20-100MHz"), (0.75, "em.radio.100-200MHz"),
                     (1.5, "em.radio.750-1500MHz"), (3.0, "em.radio.1500-3000MHz"),
                     (6.0, "em.radio.3-6GHz"), (12.0, "em.radio.6-12GHz"),
                     (30.0, "em.radio.12-30GHz")):  # fmt: skip
        if ghz <= hi:
            return name
    return "em.mm"


def _join(*ucds: str) -> str:
    return ";".join(u for u in ucds if u)


def _one(name: str, surveys: Iterable[str]) -> ColumnMeta | None:
    low = name.lower()
    if low in _FIXED:
        return ColumnMeta(*_FIXED[low])
    m = re.fullmatch(r"(m|merr|f|ferr)(_ap)?_([a-z0-9]+_[a-z0-9]+)", low)
    if m:
        kind, ap, band = m.groups()
        is_mag = kind.startswith("m")
        what = ("aperture " if ap else "total ") + ("magnitude (AB)" if is_mag else "flux")
        base = "phot.mag" if is_mag else "phot.flux.density"
        err = kind.endswith("err")
        return ColumnMeta(
            "mag" if is_mag else "uJy",
            _join("stat.error" if err else "", base, _em(band)),
            f"Error of the {what} in {band}" if err else f"{what} in {band}",
        )
    m = re.fullmatch(r"flag_([a-z0-9]+_[a-z0-9]+)", low)
    if m:
        return ColumnMeta("", "meta.code.qual", f"Photometry flag of {m[1]}")
    for s in surveys:
        if low == f"{s}_id":
            return ColumnMeta("", "meta.id.cross", f"Identifier in {s}")
    return None


def masterlist_meta(columns: Iterable[str], surveys: Iterable[str]) -> dict:
    """Publish metadata ``{"columns": {name: {unit, ucd, description}}}`` of a masterlist."""
    surveys = list(surveys)
    return publish_meta(columns, lambda c: _one(c, surveys))


def xid_meta(columns: Iterable[str]) -> dict:
    """Publish metadata of an XID+ catalogue joined with photo-z columns."""
    return publish_meta(columns, _xid_one)


#: XID+ output kind -> (unit, UCD, description); the band's em UCD is added to the first two
_XID_KINDS = {
    "F": ("mJy", "phot.flux.density", "posterior median flux"),
    "Bkg": ("mJy/beam", "instr.background", "fitted background"),
    "Sig_conf": ("mJy/beam", "stat.stdev;instr.skyLevel", "confusion noise"),
    "Rhat": ("", "stat.fit.goodness", "Gelman-Rubin convergence statistic"),
    "n_eff": ("", "stat.value", "effective number of posterior samples"),
    "Pval_res": ("", "stat.probability", "Bayesian p-value of the residuals"),
    "flag_xid": ("", "meta.code.qual", "flagged (Rhat, n_eff or p-value)"),
}


def _xid_one(c: str) -> ColumnMeta | None:
    if c == "HELP_ID":
        return ColumnMeta("", "meta.id;meta.main", "HELP identifier")
    if c in ("RA", "Dec"):
        is_ra = c == "RA"
        return ColumnMeta(
            "deg",
            "pos.eq.ra;meta.main" if is_ra else "pos.eq.dec;meta.main",
            "Prior position: " + ("right ascension" if is_ra else "declination"),
        )
    if c == "xid_tile":
        return ColumnMeta("", "meta.id", "XID+ tile the source was fit in")
    m = re.fullmatch(
        r"(F|FErr|Bkg|Sig_conf|Rhat|n_eff|Pval_res|flag_xid)_([A-Z]+_[0-9A-Z]+)(_u|_l)?", c
    )
    if m:
        kind, band, side = m.groups()
        em = _em(band)
        if kind == "FErr":
            pct = "84th" if side == "_u" else "16th"
            return ColumnMeta(
                "mJy",
                _join("stat.error", "phot.flux.density", em),
                f"{pct} percentile of the posterior flux in {band}",
            )
        unit, ucd, text = _XID_KINDS[kind]
        return ColumnMeta(unit, _join(ucd, em) if kind in ("F", "Bkg") else ucd, f"{band}: {text}")
    return _one(c, ())
