"""Units, UCDs and descriptions of the SED tables (``help.sed``, ``help.sed_spectra``); pure."""

from __future__ import annotations

from collections.abc import Iterable

from skysense.tables import ColumnMeta, publish_meta

__all__ = ["QUANTITIES", "sed_meta", "spectra_meta"]

#: quantity -> (unit, UCD, description); log10 for the extensive ones
QUANTITIES: dict[str, tuple[str, str, str]] = {
    "mstar": ("log(solMass)", "phys.mass;stat.log", "stellar mass (log10 M_sun)"),
    "sfr": ("log(solMass/yr)", "phys.SFR;stat.log", "instantaneous star-formation rate (log10)"),
    "sfr10": ("log(solMass/yr)", "phys.SFR;stat.log", "SFR averaged over 10 Myr (log10)"),
    "sfr100": ("log(solMass/yr)", "phys.SFR;stat.log", "SFR averaged over 100 Myr (log10)"),
    "l_dust": ("log(solLum)", "phys.luminosity;stat.log", "dust luminosity (log10 L_sun)"),
    "a_v": ("mag", "phys.absorption;em.opt.V", "V-band attenuation"),
    "a_fuv": ("mag", "phys.absorption;em.UV", "FUV (1500 A) attenuation"),
    "tau_main_gyr": ("Gyr", "time.period", "e-folding time of the delayed SFH"),
    "age_gyr": ("Gyr", "time.age", "age of the main stellar population"),
    "f_burst": ("", "phys.mass;arith.ratio", "mass fraction of the late burst"),
    "av_ism": ("mag", "phys.absorption;em.opt.V", "ISM V-band attenuation"),
    "mu": ("", "arith.ratio", "A_V(ISM) / A_V(ISM + birth clouds)"),
    "umin": ("", "phys.dust", "minimum radiation field U_min (Draine & Li 2007)"),
    "qpah": ("%", "phys.dust;phys.composition", "PAH mass fraction q_PAH"),
    "gamma": ("", "phys.dust;arith.ratio", "fraction of dust heated by U > U_min"),
    "alpha": ("", "phys.dust", "power-law slope of the U distribution (Draine & Li 2014)"),
    "frac_agn": ("", "arith.ratio", "AGN fraction of the infrared luminosity"),
}

_FIXED = {
    "help_id": ("", "meta.id;meta.main", "HELP identifier"),
    "redshift": ("", "src.redshift", "redshift used (zspec where known, else zphot)"),
    "z_grid": ("", "src.redshift", "redshift node of the model grid the object was fitted at"),
    "best_model": ("", "meta.id", "index of the best model in the grid"),
    "best_scale": ("solMass", "phys.mass", "normalisation of the best model (mass formed)"),
    "chi2": ("", "stat.fit.chi2", "chi^2 of the best model"),
    "reduced_chi2": ("", "stat.fit.chi2", "chi^2 / (n_bands - 1) of the best model"),
    "chi2_opt": ("", "stat.fit.chi2;em.opt", "reduced chi^2 of the best model over UV-8 um bands"),
    "chi2_ir": ("", "stat.fit.chi2;em.IR", "reduced chi^2 of the best model over >= 10 um bands"),
    "delta_chi2_eb": (
        "",
        "stat.fit.chi2",
        "chi^2 cost of one energy budget vs halves fitted apart",
    ),
    "n_bands": ("", "meta.number", "usable bands"),
    "flag_energy_balance": ("", "meta.code.qual", "optical and IR halves disagree (Malek+2018)"),
}


def _one(name: str) -> ColumnMeta | None:
    low = name.lower()
    if low in _FIXED:
        return ColumnMeta(*_FIXED[low])
    for prefix, what in (("bayes_", "Bayesian (likelihood-weighted) mean of the "),
                         ("best_", "best-model value of the ")):  # fmt: skip
        if low.startswith(prefix):
            q = low[len(prefix) :]
            err = q.endswith("_err")
            q = q[:-4] if err else q
            if q in QUANTITIES:
                unit, ucd, text = QUANTITIES[q]
                if err:
                    return ColumnMeta(unit.replace("log(", "dex(") if unit.startswith("log(") else unit,
                                      "stat.stdev;" + ucd,
                                      f"likelihood-weighted standard deviation of the {text}")  # fmt: skip
                return ColumnMeta(unit, ucd + (";stat.mean" if prefix == "bayes_" else ""),
                                  what + text)  # fmt: skip
    return None


def sed_meta(columns: Iterable[str]) -> dict:
    """Publish metadata ``{"columns": {name: {unit, ucd, description}}}`` of a fit table."""
    return publish_meta(columns, _one)


def spectra_meta() -> dict:
    """Publish metadata of the long best-fit-spectra table."""
    return {"columns": {
        "help_id": {"unit": "", "ucd": "meta.id;meta.main", "description": "HELP identifier"},
        "wavelength_um": {"unit": "um", "ucd": "em.wl", "description": "observed wavelength"},
        "fnu_mjy": {"unit": "mJy", "ucd": "phot.flux.density;em.wl;meta.modelled",
                    "description": "best-fit model flux density"},
    }}  # fmt: skip
