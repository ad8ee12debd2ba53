"""AT20G Bright Source Sample vs SuperCOSMOS (``../shared/data/crossmatch``): the real-data check
of the radio IDs, shared by the acceptance test and ``python -m benchmarks radio``.

The AT20G table (Massardi et al. 2008, VizieR J/MNRAS/384/775 table 2) lists, for identified
sources, an optical magnitude: for most quasars it is SuperCOSMOS's B magnitude to the printed
0.01 mag; for galaxies it often comes from other photometry and differs by a few tenths. The
reference ID of a listed source is the SuperCOSMOS object within 10 arcsec whose ``classMagB``
is closest to the listed magnitude, when within ``tolerance`` (0.6 mag by default; 0.006 mag
gives the strict, quasar-only reference): a match by magnitude, independent of the positional
method being tested. AT20G sources without a listed magnitude are not scored (the table does
not say they have no counterpart); IDs made for them are counted as ``extra``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from skysense.catalog.match import pairs_within

RADIUS_ARCSEC = 5.0


def load(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(AT20G radio table, SuperCOSMOS masterlist-like table) from the shared folder."""
    rows = []
    for line in (data_dir / "at20g_bss_table2.dat").read_text().splitlines():
        f = line.split()
        # Sexagesimal by hand: one row prints 60.0 seconds, which astropy's parser refuses.
        ra = 15.0 * (float(f[1]) + float(f[2]) / 60 + float(f[3]) / 3600)
        sign = -1.0 if f[4].startswith("-") else 1.0
        dec = sign * (abs(float(f[4])) + float(f[5]) / 60 + float(f[6]) / 3600)
        if f[7] == ">":
            s20, e20 = float(f[8]), np.nan
        elif f[7].startswith(">"):
            s20, e20 = float(f[7][1:]), np.nan
        else:
            s20, e20 = float(f[7]), float(f[8])
        mag = line[99:106].strip()
        rows.append((f"AT20G_BSS_{f[0].rstrip('*')}", ra, dec, s20, e20,
                     float(mag) if mag else np.nan))  # fmt: skip
    radio = pd.DataFrame(rows, columns=["name", "ra", "dec", "s20_jy", "s20_err_jy", "opt_mag"])
    scos = pd.read_csv(data_dir / "supercosmos_near_bss.csv")
    mb = scos["classMagB"].where(scos["classMagB"] > 0)
    ml = pd.DataFrame({
        "help_id": [f"SCOS_{i:04d}" for i in range(len(scos))], "ra": scos["RA"],
        "dec": scos["Dec"], "m_b": mb, "sig_ra": scos["sigRA"], "sig_dec": scos["sigDec"],
    })  # fmt: skip
    return radio, ml


def reference_ids(radio: pd.DataFrame, ml: pd.DataFrame, tolerance: float = 0.6) -> np.ndarray:
    """Masterlist row of each AT20G source's listed ID (-1: none listed or not in the data)."""
    i1, i2, _ = pairs_within(radio.ra, radio.dec, ml.ra, ml.dec, 10.0)
    dm = np.abs(ml.m_b.to_numpy()[i2] - radio.opt_mag.to_numpy()[i1])
    ok = dm <= tolerance
    i1, i2, dm = i1[ok], i2[ok], dm[ok]
    o = np.lexsort((dm, i1))  # closest in magnitude first
    ref = np.full(len(radio), -1)
    ref[i1[o][::-1]] = i2[o][::-1]  # the last write (the closest) wins
    return ref


def config_dict(radio_csv: str) -> dict:
    """The radio ID configuration used for AT20G (positions good to ~1 arcsec)."""
    return {
        "radio": {"file": radio_csv, "band": "at20g_20ghz", "id": "name", "ra": "ra",
                  "dec": "dec", "flux": "s20_jy", "flux_err": "s20_err_jy", "flux_unit": "Jy",
                  "position_error": {"sigma": 1.0}},
        "optical": {"magnitude": "m_b",
                    "position_error": {"sigma_ra": "sig_ra", "sigma_dec": "sig_dec",
                                       "unit": "deg"}},
        "method": {"search_radius_arcsec": RADIUS_ARCSEC, "background_inner_arcsec": 10.0,
                   "background_outer_arcsec": 38.0, "mag_edges": [8, 21, 1.0],
                   "systematic_arcsec": 0.3},
    }  # fmt: skip


def score(scored_mask: np.ndarray, ref: np.ndarray, id_query: np.ndarray, id_row: np.ndarray,
          reliability: np.ndarray | None = None) -> dict:  # fmt: skip
    """Recovered fraction of the listed IDs and agreement of the IDs made for listed sources.

    ``scored_mask`` (n_radio,) is True where AT20G lists an optical magnitude; IDs of the other
    sources are counted as ``n_extra`` and not scored. ``reliability`` (of the scored IDs'
    rows in ``id_query`` order) gives ``mean_reliability`` over the scored IDs.
    """
    listed = ref >= 0
    got = np.full(len(ref), -1)
    got[id_query] = id_row
    scored = np.asarray(scored_mask)[id_query]
    agree = got[id_query][scored] == ref[id_query][scored]
    out = {
        "n_listed_in_data": int(listed.sum()),
        "recovered": int(np.sum(listed & (got == ref))),
        "n_ids": int(len(id_query)),
        "n_ids_scored": int(scored.sum()),
        "n_extra": int((~scored).sum()),
        "agreement": float(agree.mean()) if len(agree) else float("nan"),
    }
    out["recovered_fraction"] = out["recovered"] / max(out["n_listed_in_data"], 1)
    if reliability is not None:
        rel = np.asarray(reliability)[scored]
        out["mean_reliability"] = float(np.mean(rel)) if len(rel) else float("nan")
    return out


def nearest_neighbour(radio: pd.DataFrame, ml: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The peer baseline: the nearest object within the same radius (radio row, ml row)."""
    i1, i2, sep = pairs_within(radio.ra, radio.dec, ml.ra, ml.dec, RADIUS_ARCSEC)
    o = np.lexsort((sep, i1))
    first = np.ones(len(o), dtype=bool)
    first[1:] = i1[o][1:] != i1[o][:-1]
    return i1[o][first], i2[o][first]
