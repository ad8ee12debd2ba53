"""Every ``skysense xid`` verb that reads files answers a bad file with one error line.

Each file a verb reads is replaced, one at a time, by a missing file, a corrupt file (junk
bytes, or a FITS file cut short) and, where the file must hold a column or HDU, a file
without it. Each case must give exit status 2 and exactly one ``skysense: error:`` line on
stderr naming the file: no traceback, and no library warning before the line.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from skysense.cli.__main__ import main
from skysense.xid.io import write_map
from skysense.xid.simulate import simulate_field

BAND = "spire_250"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Good inputs, and the broken variants of each (missing, corrupt, lacking a column)."""
    d = tmp_path_factory.mktemp("xid_cli_errors")
    field = simulate_field(6, size_pix=30, random_state=0)
    good_map = write_map(field.sky, d / "map.fits")
    prior = field.sources[["id", "ra", "dec"]].assign(z=1.0)
    prior.to_csv(d / "prior.csv", index=False)
    pd.DataFrame({"template": ["a", "a"], "z": [0.5, 3.0], BAND: [10.0, 1.0]}).to_csv(
        d / "templates.csv", index=False
    )
    blind = pd.DataFrame(
        {
            "ra": prior["ra"],
            "dec": prior["dec"],
            "ra_err": 1.0,
            "dec_err": 1.0,
            "flux_mjy": 10.0,
            "flux_err_mjy": 1.0,
            "snr": 10.0,
        }
    )
    blind.to_parquet(d / "blind.parquet", index=False)
    out = {"map": good_map, "prior": d / "prior.csv", "templates": d / "templates.csv"}
    out["blind"] = d / "blind.parquet"
    # broken variants
    out["missing.fits"] = d / "missing.fits"
    out["missing.csv"] = d / "missing.csv"
    (d / "junk.fits").write_bytes(np.random.default_rng(0).bytes(5000))
    out["junk.fits"] = d / "junk.fits"
    data = good_map.read_bytes()
    (d / "cut.fits").write_bytes(data[: len(data) - 4000])  # header intact, data cut short
    out["cut.fits"] = d / "cut.fits"
    (d / "junk.parquet").write_bytes(b"PAR1" + np.random.default_rng(1).bytes(300))
    out["junk.parquet"] = d / "junk.parquet"
    with fits.open(good_map) as hdul:  # a map with no noise (no ERROR HDU)
        fits.HDUList([fits.PrimaryHDU(), hdul["IMAGE"].copy()]).writeto(d / "no_error.fits")
    out["no_error.fits"] = d / "no_error.fits"
    prior.drop(columns=["ra"]).to_csv(d / "prior_no_ra.csv", index=False)
    out["prior_no_ra.csv"] = d / "prior_no_ra.csv"
    pd.read_csv(d / "templates.csv").drop(columns=["z"]).to_csv(d / "tpl_no_z.csv", index=False)
    out["tpl_no_z.csv"] = d / "tpl_no_z.csv"
    blind.drop(columns=["dec"]).to_parquet(d / "blind_no_dec.parquet", index=False)
    out["blind_no_dec.parquet"] = d / "blind_no_dec.parquet"
    prior.drop(columns=["id"]).to_csv(d / "xid_no_id.csv", index=False)
    out["xid_no_id.csv"] = d / "xid_no_id.csv"
    out["out"] = d / "out"
    return out


def _fit_args(verb: str, f: dict, **given) -> list[str]:
    paths = {"map": f["map"], "prior": f["prior"], **given}
    argv = ["xid", verb, "--map", paths["map"], "--band", BAND, "--prior", paths["prior"]]
    argv += ["--out", f["out"]]
    for opt in ("noise", "moc", "prf"):
        if opt in paths:
            argv += [f"--{opt}", paths[opt]]
    if verb == "fit-sed":
        argv += ["--templates", paths.get("templates", f["templates"])]
    return argv


def _blind_args(f: dict, **given) -> list[str]:
    argv = ["xid", "blind", given.get("map", f["map"]), "--band", BAND, "-o", f["out"] / "b"]
    if "noise" in given:
        argv += ["--noise", given["noise"]]
    return argv


def _match_args(f: dict, **given) -> list[str]:
    argv = ["xid", "blind-match", given.get("blind", f["blind"])]
    argv += ["--xid", given.get("xid", f["prior"]), "--radius", "5"]
    if "masterlist" in given:
        argv += ["--masterlist", given["masterlist"]]
    return argv + ["-o", f["out"] / "m"]


_FIT_VERBS = ("fit", "fit-tiles", "fit-sed", "hidden")
# (verb, the input replaced, broken file)
CASES = [
    *(
        (verb, what, bad)
        for verb in _FIT_VERBS
        for what, bads in (
            ("map", ("missing.fits", "junk.fits", "cut.fits", "no_error.fits")),
            ("prior", ("missing.csv", "junk.fits", "junk.parquet", "prior_no_ra.csv")),
        )
        for bad in bads
    ),
    ("fit", "noise", "missing.fits"),
    ("fit", "noise", "junk.fits"),
    ("fit", "noise", "cut.fits"),
    ("fit", "moc", "missing.fits"),
    ("fit", "moc", "junk.fits"),
    ("fit", "prf", "missing.fits"),
    ("fit", "prf", "junk.fits"),
    ("fit-sed", "templates", "missing.csv"),
    ("fit-sed", "templates", "junk.parquet"),
    ("fit-sed", "templates", "tpl_no_z.csv"),
    ("blind", "map", "missing.fits"),
    ("blind", "map", "junk.fits"),
    ("blind", "map", "cut.fits"),
    ("blind", "map", "no_error.fits"),
    ("blind", "noise", "missing.fits"),
    ("blind", "noise", "junk.fits"),
    ("blind-match", "blind", "missing.fits"),
    ("blind-match", "blind", "junk.fits"),
    ("blind-match", "blind", "junk.parquet"),
    ("blind-match", "blind", "blind_no_dec.parquet"),
    ("blind-match", "xid", "missing.csv"),
    ("blind-match", "xid", "junk.fits"),
    ("blind-match", "xid", "xid_no_id.csv"),
    ("blind-match", "masterlist", "junk.parquet"),
    ("blind-match", "masterlist", "prior_no_ra.csv"),
]


def _argv(verb: str, what: str, bad: Path, f: dict) -> list[str]:
    if verb == "blind":
        argv = _blind_args(f, **{what: bad})
    elif verb == "blind-match":
        argv = _match_args(f, **{what: bad})
    else:
        argv = _fit_args(verb, f, **{what: bad})
    return [str(a) for a in argv]


@pytest.mark.parametrize(("verb", "what", "bad"), CASES, ids=lambda v: str(v))
def test_a_bad_input_file_gives_one_error_line(verb, what, bad, files, capsys):
    path = files[bad]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = main(_argv(verb, what, path, files))
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skysense: error: ") and str(path) in lines[0], err
    assert [str(w.message) for w in caught] == []


def test_a_cut_short_map_gives_one_line_in_a_real_process(files):
    """The same through the console entry point: nothing but the line reaches stderr."""
    argv = _argv("fit", "map", files["cut.fits"], files)
    run = subprocess.run(
        [sys.executable, "-m", "skysense.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"skysense: error: {files['cut.fits']}: cannot read map file: ")
