"""One-line errors for every CLI verb that reads files (issue 16, "One-line errors everywhere").

The verbs and their file arguments are enumerated from the argparse tree
(:func:`file_arguments`). Each file argument is replaced, one at a time, by a missing file, a
corrupt file (random bytes, a FITS file cut short, YAML that does not parse) and, where the
file must hold a column or key, a file without it; the other inputs stay valid. Each case runs
``python -m skysense.cli ...`` in a fresh process and must give exit status 2 and exactly one
stderr line, ``skysense: error: ...``, naming the broken file: no traceback, no library warning
before it.

``xid`` verbs are checked the same way, file by file, in ``tests/xid/test_xid_cli_errors.py``;
:data:`ELSEWHERE` names them so that the enumeration still has to account for every argument.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skysense.cli.__main__ import build_parser, main

# Arguments that name files the verb reads. Outputs (-o/--out/--json/--plot...) are not listed.
_INPUT_METAVARS = {
    "INPUT", "CONFIG", "FILE", "FITS", "CAT", "CATALOG", "MODEL", "MODEL.npz", "IMAGE", "LABELS",
    "FIELD.yaml", "FIELD_DIR", "GAIA", "DIR", "SCHEME",
}  # fmt: skip
_INPUT_DESTS = {
    "input", "config", "inputs", "masterlist", "a", "b", "catalog", "model", "raster", "labels",
    "statlog", "test_raster", "test_labels", "test_statlog", "field", "file", "fits", "map",
    "noise", "prior", "blind", "xid", "moc", "prf", "templates", "shapes", "reference",
}  # fmt: skip
_OUTPUT_DESTS = {
    "out", "output", "json", "plot", "plot_map", "scores", "proba", "quicklook", "confusion_png",
    "moc_out", "provenance", "plots", "work_dir", "workdir", "db",
}  # fmt: skip


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def file_arguments() -> dict[tuple[str, str, str], argparse.Action]:
    """``(area, verb, dest) -> action`` for every argument that names a file to read."""
    out = {}
    for area, area_parser in _subparsers(build_parser()).items():
        for verb, verb_parser in _subparsers(area_parser).items():
            for action in verb_parser._actions:
                if action.dest in _OUTPUT_DESTS or action.nargs == 0:  # outputs, flags
                    continue
                if action.dest in _INPUT_DESTS or action.metavar in _INPUT_METAVARS:
                    out[(area, verb, action.dest)] = action
    return out


# --------------------------------------------------------------------------- inputs

BANDS = ["m_g", "m_r", "m_i", "m_z"]


def _catalogue(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.05, 0.6, n)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "ra": 150 + rng.uniform(0, 0.1, n),
            "dec": 2 + rng.uniform(0, 0.1, n),
        }
    )
    for k, b in enumerate(BANDS):
        frame[b] = 20 + k * 0.3 + (3 - k) * 2.0 * z + 0.02 * rng.normal(size=n)
        frame[f"e_{b[2:]}"] = 0.02
    frame["zspec"] = z
    return frame


def _series() -> pd.DataFrame:
    dates = pd.date_range("2015-01-01", periods=52 * 4, freq="7D")
    t = np.arange(len(dates))
    ndvi = 0.5 + 0.2 * np.sin(2 * np.pi * t / 52)
    return pd.DataFrame({"date": dates, "region": "r1", "ndvi": ndvi})


def _statlog(path: Path) -> Path:
    rng = np.random.default_rng(1)
    y = rng.choice([1, 2, 3], 90)
    pix = np.clip(y[:, None] * 60 + rng.normal(0, 10, (90, 36)), 0, 255).astype(int)
    path.write_text("\n".join(" ".join(map(str, [*p, c])) for p, c in zip(pix, y)) + "\n")
    return path


def _raster(path: Path, bands: int = 4) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    img = np.random.default_rng(2).uniform(0, 255, (bands, 32, 32)).astype("float32")
    profile = dict(driver="GTiff", width=32, height=32, count=bands, dtype="float32",
                   crs="EPSG:32633", transform=from_origin(500000, 5000000, 30, 30))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(img)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Good inputs, and the broken variants: ``missing.*``, ``junk.*``, ``cut.fits``, ..."""
    from astropy.io import fits

    d = tmp_path_factory.mktemp("cli_errors")
    f: dict[str, Path] = {"dir": d}
    cat = _catalogue()
    cat.to_csv(d / "cat.csv", index=False)
    f["cat"] = d / "cat.csv"
    cat.sample(frac=1, random_state=1).to_csv(d / "cat2.csv", index=False)
    f["cat2"] = d / "cat2.csv"
    pd.DataFrame({"foo": [1.0, 2.0], "bar": [3.0, 4.0]}).to_csv(d / "nocol.csv", index=False)
    f["nocol"] = d / "nocol.csv"
    _series().to_csv(d / "series.csv", index=False)
    f["series"] = d / "series.csv"
    f["statlog"] = _statlog(d / "s.trn")
    f["raster"] = _raster(d / "img.tif")
    image = np.random.default_rng(3).normal(size=(40, 40)).astype("float32")
    fits.PrimaryHDU(image).writeto(d / "image.fits")
    f["image"] = d / "image.fits"
    data = (d / "image.fits").read_bytes()
    (d / "cut.fits").write_bytes(data[: len(data) // 2])  # header intact, data cut short
    f["cut.fits"] = d / "cut.fits"
    rng = np.random.default_rng(0)
    for suffix in ("fits", "csv", "parquet", "tif", "npz", "trn", "yaml"):
        (d / f"junk.{suffix}").write_bytes(rng.bytes(4000))
        f[f"junk.{suffix}"] = d / f"junk.{suffix}"
        f[f"missing.{suffix}"] = d / f"missing.{suffix}"
    (d / "bad.yaml").write_text("surveys: [unclosed\n  - : :\n\t")
    f["bad.yaml"] = d / "bad.yaml"
    (d / "empty.yaml").write_text("{}\n")
    f["empty.yaml"] = d / "empty.yaml"
    (d / "junkdir").mkdir()
    (d / "junkdir" / "manifest.json").write_bytes(rng.bytes(500))
    f["junkdir"] = d / "junkdir"
    f["missingdir"] = d / "missingdir"
    (d / "model_junk").mkdir()
    (d / "model_junk" / "model.json").write_text("{not json")
    f["model_junk"] = d / "model_junk"
    # trained models, made through the CLI itself
    pz = d / "photoz_model"
    argv = ["photoz", "train", str(f["cat"]), "--target", "zspec", "--bands", *BANDS]
    argv += ["--m", "8", "--covariance", "VD", "--max-iter", "20", "--out", str(pz)]
    assert main(argv) == 0
    f["photoz_model"] = pz
    lu = d / "landuse.npz"
    argv = ["landuse", "train", "--statlog", str(f["statlog"]), "--classifier", "knn"]
    assert main([*argv, "-o", str(lu)]) == 0
    f["landuse_model"] = lu
    f["out"] = d / "out"
    return f


# --------------------------------------------------------------------------- the verbs

Argv = Callable[[dict[str, Path], dict[str, str]], list]


def _astrocast(verb: str) -> Argv:
    return lambda f, g: ["astrocast", verb, g.get("input", f["series"]), "-o", f["out"] / "a.csv"]


def _catalog_pair(verb: str) -> Argv:
    def argv(f, g):
        out = [g.get("a", f["cat"]), g.get("b", f["cat2"])]
        if verb == "crossmatch":
            out += ["--radius", "1", "--out", f["out"] / "x.csv"]
        return ["catalog", verb, *out]

    return argv


# (area, verb) -> (argv builder, {dest: broken variants})
def _radio_id(f, g):
    """``catalog radio-id``: a radio catalogue of 40 sources near objects of ``cat.csv``."""
    cfg = f["dir"] / "radio.yaml"
    if not cfg.exists():
        cat = _catalogue().iloc[:40]
        cat.assign(ra=cat["ra"] + 2e-4, flux=1.0).to_csv(f["dir"] / "radio.csv", index=False)
        raw = {"radio": {"file": "radio.csv", "band": "r_1p4ghz", "flux": "flux",
                         "position_error": {"sigma": 1.0}},
               "optical": {"magnitude": "m_r", "position_error": {"sigma": 0.1}},
               "method": {"background_inner_arcsec": 10, "background_outer_arcsec": 40,
                          "mag_edges": [19, 25, 1.0]}}  # fmt: skip
        cfg.write_text(json.dumps(raw))  # JSON is YAML
    return ["catalog", "radio-id", g.get("config", cfg), g.get("masterlist", f["cat"]),
            "--out", f["out"] / "radio"]  # fmt: skip


TABLE = ("missing.csv", "junk.fits", "cut.fits", "junk.parquet", "nocol")
CONFIG = ("missing.yaml", "bad.yaml", "junk.yaml", "empty.yaml")
MODEL_DIR = ("missingdir", "model_junk", "junk.npz")
CASES: dict[tuple[str, str], tuple[Argv, dict[str, tuple[str, ...]]]] = {
    **{
        ("astrocast", v): (_astrocast(v), {"input": ("missing.csv", "junk.csv", "nocol")})
        for v in ("vci", "forecast", "hindcast", "granger")
    },
    ("catalog", "prepare"): (
        lambda f, g: ["catalog", "prepare", g.get("config", f["empty.yaml"]), "--out", f["out"]],
        {"config": CONFIG},
    ),
    ("catalog", "merge"): (
        lambda f, g: ["catalog", "merge", g.get("config", f["empty.yaml"]), "--out", f["out"]],
        {"config": CONFIG},
    ),
    ("catalog", "moc"): (
        lambda f, g: ["catalog", "moc", g.get("inputs", f["cat"]), "--out", f["out"] / "m.fits"],
        {"inputs": ("missing.fits", "junk.fits", "cut.fits")},
    ),
    ("catalog", "radio-id"): (_radio_id, {"config": CONFIG, "masterlist": TABLE}),
    ("catalog", "check"): (
        lambda f, g: ["catalog", "check", g.get("masterlist", f["cat"]), "--out", f["out"]],
        {"masterlist": ("missing.fits", "junk.fits", "cut.fits", "junk.parquet")},
    ),
    ("catalog", "suggest-radius"): (_catalog_pair("suggest-radius"), {"a": TABLE, "b": TABLE}),
    ("catalog", "crossmatch"): (_catalog_pair("crossmatch"), {"a": TABLE, "b": TABLE}),
    ("landuse", "train"): (
        lambda f, g: [
            "landuse",
            "train",
            "--statlog",
            g.get("statlog", f["statlog"]),
            "--classifier",
            "knn",
            "-o",
            f["out"] / "m.npz",
        ],  # fmt: skip
        {"statlog": ("missing.trn", "junk.trn")},
    ),
    ("landuse", "evaluate"): (
        lambda f, g: [
            "landuse",
            "evaluate",
            "--model",
            g.get("model", f["landuse_model"]),
            "--test-statlog",
            g.get("test_statlog", f["statlog"]),
        ],  # fmt: skip
        {"model": ("missing.npz", "junk.npz"), "test_statlog": ("missing.trn", "junk.trn")},
    ),
    ("landuse", "classify"): (
        lambda f, g: [
            "landuse",
            "classify",
            g.get("model", f["landuse_model"]),
            g.get("raster", f["raster"]),
            "-o",
            f["out"] / "c.tif",
        ],  # fmt: skip
        {"model": ("missing.npz", "junk.npz"), "raster": ("missing.tif", "junk.tif")},
    ),
    ("photoz", "train"): (
        lambda f, g: [
            "photoz",
            "train",
            g.get("catalog", f["cat"]),
            "--target",
            "zspec",
            "--bands",
            *BANDS,
            "--out",
            f["out"] / "pz",
        ],  # fmt: skip
        {"catalog": TABLE},
    ),
    ("photoz", "predict"): (
        lambda f, g: [
            "photoz",
            "predict",
            g.get("model", f["photoz_model"]),
            g.get("catalog", f["cat"]),
            "--out",
            f["out"] / "p.csv",
        ],  # fmt: skip
        {"model": MODEL_DIR, "catalog": TABLE},
    ),
    ("photoz", "evaluate"): (
        lambda f, g: [
            "photoz",
            "evaluate",
            g.get("model", f["photoz_model"]),
            g.get("catalog", f["cat"]),
            "--out",
            f["out"] / "ev",
        ],  # fmt: skip
        {"model": MODEL_DIR, "catalog": TABLE},
    ),
    ("pipeline", "run"): (
        lambda f, g: ["pipeline", "run", g.get("config", f["empty.yaml"]), "--dry-run"],
        {"config": CONFIG},
    ),
    ("pipeline", "status"): (
        lambda f, g: ["pipeline", "status", g.get("config", f["empty.yaml"])],
        {"config": CONFIG},
    ),
    ("pipeline", "sim-config"): (
        lambda f, g: [
            "pipeline",
            "sim-config",
            g.get("field", f["junkdir"]),
            "--out",
            f["out"] / "field.yaml",
        ],  # fmt: skip
        {"field": ("missingdir", "junkdir")},
    ),
    ("sim", "info"): (
        lambda f, g: ["sim", "info", g.get("field", f["junkdir"])],
        {"field": ("missingdir", "junkdir")},
    ),
    ("vo", "publish"): (
        lambda f, g: [
            "vo",
            "publish",
            g.get("file", f["cat"]),
            "--table",
            "help.t",
            "--ra",
            "ra",
            "--dec",
            "dec",
            "--db",
            f["dir"] / "vo.duckdb",
        ],  # fmt: skip
        {"file": TABLE},
    ),
    ("vo", "publish-map"): (
        lambda f, g: [
            "vo",
            "publish-map",
            g.get("fits", f["image"]),
            "--name",
            "m",
            "--db",
            f["dir"] / "vo.duckdb",
        ],  # fmt: skip
        {"fits": ("missing.fits", "junk.fits", "cut.fits", "junk.parquet")},
    ),
}

# File arguments checked elsewhere or deliberately not here, with the reason.
ELSEWHERE = {
    "xid": "every file of every xid verb: tests/xid/test_xid_cli_errors.py",
    "sed": "every file of every sed verb: tests/sed/test_sed_cli_errors.py",
}
NOT_HERE = {
    ("astrocast", "forecast", "shapes"): "read only with --plot-map, after the forecast",
    ("astrocast", "forecast", "model"): "a forecaster name, not a file",
    ("catalog", "merge", "fits"): "an output: also write the masterlist as FITS",
    ("catalog", "prepare", "reference"): "the Gaia file is named by the config as well",
    ("landuse", "train", "raster"): "rasters are checked through classify; labels need both",
    ("landuse", "train", "labels"): "needs a labelled raster pair",
    ("landuse", "train", "classes"): "a scheme name or file; not a data file",
    ("landuse", "evaluate", "raster"): "needs a labelled raster pair",
    ("landuse", "evaluate", "labels"): "needs a labelled raster pair",
    ("landuse", "evaluate", "statlog"): "the training side of evaluate, as train --statlog",
    ("landuse", "evaluate", "test_raster"): "needs a labelled raster pair",
    ("landuse", "evaluate", "test_labels"): "needs a labelled raster pair",
    ("landuse", "evaluate", "classes"): "a scheme name or file; not a data file",
    ("vo", "publish", "meta"): "optional metadata file",
    ("photoz", "train", "inputs"): "a choice of model inputs (auto, colours, mag), not a file",
    ("vo", "publish", "field"): "a field name; the HATS directory is FILE, whose cases are here",
}


def test_every_file_argument_is_accounted_for():
    missing = [
        f"skysense {area} {verb}: {dest}"
        for (area, verb, dest) in file_arguments()
        if area not in ELSEWHERE
        and (area, verb, dest) not in NOT_HERE
        and dest not in CASES.get((area, verb), (None, {}))[1]
    ]
    assert not missing, "file arguments without error cases:\n" + "\n".join(missing)


def _cases():
    for (area, verb), (_, broken) in CASES.items():
        for dest, variants in broken.items():
            for bad in variants:
                yield pytest.param(area, verb, dest, bad, id=f"{area}-{verb}-{dest}-{bad}")


@pytest.mark.slow
@pytest.mark.parametrize("area, verb, dest, bad", list(_cases()))
def test_a_bad_file_gives_one_error_line(files, area, verb, dest, bad):
    build, _ = CASES[(area, verb)]
    argv = [str(a) for a in build(files, {dest: files[bad]})]
    res = subprocess.run(
        [sys.executable, "-m", "skysense.cli", *argv], capture_output=True, text=True, timeout=300
    )
    command = "skysense " + " ".join(argv)
    detail = f"{command}\nexit {res.returncode}\nstderr:\n{res.stderr}"
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    print(command, "->", res.returncode, lines)  # shown by `pytest -rP`: the wording of each
    assert "Traceback" not in res.stderr, detail
    assert res.returncode == 2, detail
    assert len(lines) == 1 and lines[0].startswith("skysense: error: "), detail
    assert files[bad].name in lines[0], f"the error does not name {files[bad].name}\n{detail}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "area, verb",
    [(a, v) for (a, v), (_, broken) in CASES.items() if len(broken) > 1],
)
def test_the_good_inputs_work(files, area, verb, tmp_path):
    """With every input valid the verb succeeds, so each broken case breaks only its file."""
    build, _ = CASES[(area, verb)]
    argv = [str(a) for a in build({**files, "out": tmp_path / "out"}, {})]
    assert main(argv) == 0, "skysense " + " ".join(argv)
