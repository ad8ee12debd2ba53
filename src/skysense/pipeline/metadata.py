"""Column metadata (unit, UCD, description) of the tables the pipeline publishes.

Derived from HELP's column-name conventions: ``m_<band>``/``merr_<band>`` (AB mag),
``f_<band>``/``ferr_<band>`` (uJy; ``_ap_`` for aperture values), ``flag_<band>``,
``<survey>_id``, the photo-z columns of :mod:`skysense.photoz.model`, and XID+'s
``F_<BAND>``/``FErr_<BAND>_u|_l`` (mJy) family.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from skysense._resources import read_ecsv
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


@functools.cache
def _fixed() -> dict[str, tuple[str, str, str]]:
    """Column name -> (unit, UCD, description) of the masterlist columns with fixed names, from
    the package data file ``pipeline/data/masterlist_columns.ecsv`` (read at first use)."""
    rows, _ = read_ecsv("skysense.pipeline", "masterlist_columns.ecsv")
    fixed = {r["name"]: (r["unit"], r["ucd"], r["description"]) for r in rows}
    # Morphology (DMU 3): sizes and shapes from the priority survey (skysense.catalog.morphology).
    fixed.update(
        {
            name: (SHAPE_UNITS[name], SHAPE_UCDS[name], SHAPE_DESCRIPTIONS[name])
            for name in SHAPE_UCDS
        }
    )
    return fixed


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
    if low in _fixed():
        return ColumnMeta(*_fixed()[low])
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
