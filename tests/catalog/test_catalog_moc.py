"""Coverage MOCs, HELP optnir flags, and the HELP field MOCs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skysense.catalog.io import read_moc, write_moc
from skysense.catalog.moc import (
    combine_mocs,
    coverage_moc,
    in_moc,
    moc_area_deg2,
    moc_intersection,
    moc_union,
    optnir_det_flag,
    optnir_flags,
    regime_mocs,
)
from skysense.errors import InputError


def _square(ra0, dec0, size, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return ra0 + rng.uniform(0, size, n), dec0 + rng.uniform(0, size, n)


def test_coverage_contains_sources_and_area_is_sensible(tmp_path):
    ra, dec = _square(10.0, 0.0, 0.5)
    moc = coverage_moc(ra, dec, order=10)
    assert in_moc(moc, ra, dec).all()
    assert 0.25 <= moc_area_deg2(moc) < 0.25 * 1.6
    write_moc(moc, tmp_path / "m.fits")
    assert moc_area_deg2(read_moc(tmp_path / "m.fits")) == pytest.approx(moc_area_deg2(moc))
    assert not in_moc(moc, np.array([50.0]), np.array([0.0]))[0]


def test_combine_mocs():
    a = coverage_moc(*_square(10.0, 0.0, 0.5, seed=1))
    b = coverage_moc(*_square(10.3, 0.0, 0.5, seed=2))
    assert combine_mocs([a, b]) == moc_union([a, b])
    assert combine_mocs([a, b], "intersection") == moc_intersection([a, b])
    assert 0 < moc_area_deg2(combine_mocs([a, b], "intersection")) < moc_area_deg2(a)
    with pytest.raises(InputError, match="unknown MOC operation 'xor'"):
        combine_mocs([a, b], "xor")
    with pytest.raises(InputError, match="no MOC"):
        combine_mocs([])


def test_optnir_flags():
    opt_ra, opt_dec = _square(10.0, 0.0, 0.5, seed=1)  # optical: 10.0 - 10.5
    nir_ra, nir_dec = _square(10.3, 0.0, 0.5, seed=2)  # NIR: 10.3 - 10.8
    mocs = regime_mocs(
        {
            "cfhtls": (coverage_moc(opt_ra, opt_dec), ["megacam_u", "megacam_g"]),
            "ukidss": (coverage_moc(nir_ra, nir_dec), ["ukidss_j", "ukidss_k"]),
        }
    )
    assert set(mocs) == {"optical", "nir"}
    table = pd.DataFrame(
        {
            "ra": [10.1, 10.4, 10.7, 12.0],
            "dec": [0.25] * 4,
            "f_megacam_u": [1.0, 2.0, np.nan, np.nan],
            "f_megacam_g": [1.0, np.nan, np.nan, np.nan],
            "f_ukidss_k": [np.nan, 5.0, 5.0, np.nan],
            "f_ap_ukidss_j": [1.0, 1.0, 1.0, 1.0],  # aperture fluxes are not detections
        }
    )
    flags = optnir_flags(table, optical_moc=mocs["optical"], nir_moc=mocs["nir"])
    assert flags["flag_optnir_obs"].tolist() == [1, 3, 2, 0]
    assert flags["flag_optnir_det"].tolist() == [1, 3, 2, 0]
    strict = optnir_det_flag(table, min_bands=2)
    assert strict.tolist() == [1, 0, 0, 0]
    with pytest.raises(InputError, match="unknown band"):
        optnir_det_flag(table, bands=["megacam_q"])


@pytest.mark.acceptance
def test_help_field_mocs_load_and_combine(shared_data):
    folder = shared_data / "crossmatch" / "help_field_mocs"
    files = sorted(folder.glob("*_MOC.fits"))
    assert len(files) == 23
    mocs = {f.name.replace("_MOC.fits", ""): read_moc(f) for f in files}
    areas = {k: moc_area_deg2(m) for k, m in mocs.items()}
    # Field areas as published by HELP (Shirley et al. 2021, table 1), to 2 per cent.
    published = {"ELAIS-N1": 13.5, "XMM-LSS": 21.8, "Herschel-Stripe-82": 363.0}
    published.update({"COSMOS": 5.1, "HDF-N": 0.67, "GAMA-09": 62.0, "SPIRE-NEP": 0.13})
    for name, area in published.items():
        assert areas[name] == pytest.approx(area, rel=0.02), name
    assert all(0.1 < a < 1000.0 for a in areas.values()), areas
    assert max(areas, key=areas.get) == "Herschel-Stripe-82"
    # HELP's fields are disjoint: the union's area is the sum, every intersection is empty.
    union = moc_union(mocs.values())
    assert moc_area_deg2(union) == pytest.approx(sum(areas.values()), rel=1e-9)
    names = sorted(mocs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert moc_area_deg2(moc_intersection([mocs[a], mocs[b]])) == 0.0, (a, b)
    # An overlapping pair: a 0.5 deg cone at the COSMOS centre lies inside COSMOS, so the
    # intersection is the cone and inclusion-exclusion holds.
    import astropy.units as u
    from mocpy import MOC

    cone = MOC.from_cone(lon=150.1 * u.deg, lat=2.2 * u.deg, radius=0.5 * u.deg, max_depth=13)
    cosmos = mocs["COSMOS"]
    inter = moc_intersection([cosmos, cone])
    assert moc_area_deg2(inter) == pytest.approx(moc_area_deg2(cone), rel=1e-9)
    assert moc_area_deg2(cone) == pytest.approx(np.pi * 0.5**2, rel=0.02)
    assert moc_area_deg2(moc_union([cosmos, cone])) == pytest.approx(
        moc_area_deg2(cosmos) + moc_area_deg2(cone) - moc_area_deg2(inter), rel=1e-9
    )
    # COSMOS centre (150.1, 2.2) is inside COSMOS and only there.
    inside = [k for k, m in mocs.items() if in_moc(m, np.array([150.1]), np.array([2.2]))[0]]
    assert inside == ["COSMOS"]


@pytest.mark.acceptance
def test_cli_moc_combines_help_fields(shared_data, tmp_path, capsys):
    import json

    from skysense.cli.__main__ import main

    folder = shared_data / "crossmatch" / "help_field_mocs"
    a, b = folder / "XMM-LSS_MOC.fits", folder / "Herschel-Stripe-82_MOC.fits"
    out = tmp_path / "union.fits"
    assert main(["catalog", "moc", str(a), str(b), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    areas = [x["area_deg2"] for x in summary["inputs"]]
    assert summary["area_deg2"] == pytest.approx(sum(areas), rel=1e-9)  # disjoint fields
    assert moc_area_deg2(read_moc(out)) == pytest.approx(summary["area_deg2"])
    assert main(["catalog", "moc", str(tmp_path / "nope.fits")]) == 2
    assert "MOC file not found" in capsys.readouterr().err
