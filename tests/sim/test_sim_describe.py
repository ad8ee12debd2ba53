"""skysense.sim.describe_manifest on a hand-written manifest."""

from skysense.sim import describe_manifest


def test_describe_manifest_lines():
    manifest = {
        "seed": 3, "area_deg2": 0.25, "center_ra": 150.1, "center_dec": 2.2,
        "field": {"n_galaxies": 10, "n_stars": 2, "n_reference": 1},
        "surveys": {"suprime": {"n_rows": 7, "file": "suprime.fits", "bands": ["g", "r"]}},
        "maps": {"spire_250": {"shape": [30, 40], "pixel_arcsec": 6.0, "file": "m.fits",
                               "confusion_mjy_beam": 5.8}},
        "timings_s": {"total": 1.25},
    }  # fmt: skip
    lines = describe_manifest(manifest, "T").splitlines()
    assert lines[0] == "T: seed 3, 0.25 deg^2 at (150.1000, 2.2000)"
    assert lines[1] == "  truth: 10 galaxies, 2 stars; reference: 1 Gaia-like stars"
    assert lines[2].split() == [
        "catalogue",
        "suprime",
        "7",
        "rows",
        "suprime.fits",
        "bands",
        "g,",
        "r",
    ]
    assert lines[3].split() == ["map", "spire_250", "30x40", "px", "of", '6.0"', "m.fits,",
                                "confusion", "5.8", "mJy/beam"]  # fmt: skip
    assert lines[4] == "  done in 1.2 s" and len(lines) == 5
    # a manifest without field counts, maps or timings gives just the title line and catalogues
    bare = {k: manifest[k] for k in ("seed", "area_deg2", "center_ra", "center_dec", "surveys")}
    assert len(describe_manifest({**bare, "maps": {}}, "T").splitlines()) == 2
