"""One-line errors naming the broken file for every file argument of ``skysense sed`` (issue 16
rules, as tests/test_cli_errors.py does for the other areas)."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skysense.cli.__main__ import main

CONFIG = """
bands: [megacam_g, megacam_r, megacam_i, ukidss_k]
redshifts: [0.5]
tau_main_gyr: [1.0]
age_gyr: [1.0, 2.0]
av_ism: [0.2]
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sederr")
    (d / "grid.yaml").write_text(CONFIG)
    assert main(["sed", "grid", str(d / "grid.yaml"), "--out", str(d / "grid")]) == 0
    frame = pd.DataFrame({"help_id": ["a", "b"], "redshift": [0.5, 0.5]})
    for b in ("megacam_g", "megacam_r", "megacam_i", "ukidss_k"):
        frame[f"f_{b}"], frame[f"ferr_{b}"] = [10.0, 20.0], [1.0, 2.0]
    frame.to_parquet(d / "cat.parquet")
    assert (
        main(["sed", "fit", str(d / "grid"), str(d / "cat.parquet"), "--out", str(d / "fit")]) == 0
    )
    (d / "bad.yaml").write_text("bands: [megacam_g\n  : :")
    (d / "unknown.yaml").write_text(CONFIG.replace("megacam_i", "megacam_q"))
    (d / "junk.parquet").write_bytes(np.random.default_rng(0).bytes(300))
    frame.drop(columns="redshift").to_parquet(d / "nocol.parquet")
    (d / "emptydir").mkdir()
    return d


def _run(argv):
    res = subprocess.run([sys.executable, "-m", "skysense.cli", *map(str, argv)], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    return res.returncode, lines, res.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "verb, bad, expect",
    [
        ("grid", "missing.yaml", "missing.yaml"),
        ("grid", "bad.yaml", "bad.yaml"),
        ("grid", "unknown.yaml", "megacam_q"),
        ("fit-catalog", "missing.parquet", "missing.parquet"),
        ("fit-catalog", "junk.parquet", "junk.parquet"),
        ("fit-catalog", "nocol.parquet", "redshift"),
        ("fit-grid", "emptydir", "emptydir"),
        ("plot-fit", "emptydir", "emptydir"),
        ("plot-catalog", "missing.parquet", "missing.parquet"),
    ],
)
def test_one_error_line(files, verb, bad, expect):
    d = files
    argv = {
        "grid": ["sed", "grid", d / bad, "--out", d / "g2"],
        "fit-catalog": ["sed", "fit", d / "grid", d / bad, "--out", d / "f2"],
        "fit-grid": ["sed", "fit", d / bad, d / "cat.parquet", "--out", d / "f3"],
        "plot-fit": ["sed", "plot", d / "grid", d / "cat.parquet", d / bad, "--id", "a", "--out", d / "p.png"],
        "plot-catalog": ["sed", "plot", d / "grid", d / bad, d / "fit", "--id", "a", "--out", d / "p.png"],
    }[verb]  # fmt: skip
    status, lines, stderr = _run(argv)
    assert "Traceback" not in stderr and status == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("skysense: error: "), stderr
    assert expect in lines[0], lines[0]
