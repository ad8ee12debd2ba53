import numpy as np
import pandas as pd
import pytest

from skysense.cli.__main__ import main


class _Result:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def run(capsys, monkeypatch):
    monkeypatch.setenv("SKYSENSE_PROGRESS", "0")

    def _run(*args):
        try:
            code = main(["astrocast", *args])
        except SystemExit as e:  # argparse --help
            code = e.code
        cap = capsys.readouterr()
        return _Result(code, cap.out, cap.err)

    return _run


def _csv(tmp_path, ndvi_bad=False):
    rng = np.random.default_rng(0)
    rows = []
    for r in ("a", "b"):
        d = pd.date_range("2005-01-01", "2012-12-31", freq="10D")
        x = 0.45 + 0.2 * np.sin(2 * np.pi * d.day_of_year / 365.25) + 0.03 * rng.normal(size=d.size)
        rows.append(pd.DataFrame({"date": d, "region": r, "ndvi": x}))
    df = pd.concat(rows)
    if ndvi_bad:
        df.iloc[5, 2] = 7200.0
    p = tmp_path / "s.csv"
    df.to_csv(p, index=False)
    return p


def test_cli_vci_and_hindcast(tmp_path, run):
    p = _csv(tmp_path)
    r = run("vci", str(p), "-o", str(tmp_path / "v.csv"))
    assert r.returncode == 0, r.stderr
    v = pd.read_csv(tmp_path / "v.csv")
    assert {"vci", "vci3m", "drought_class"} <= set(v.columns)
    r = run(
        "hindcast",
        str(p),
        "-o",
        str(tmp_path / "h.parquet"),
        "--models",
        "persistence,linear_ar",
        "--n-leads",
        "3",
        "--start-year",
        "2012",
        "--scores",
        str(tmp_path / "s.csv"),
    )
    assert r.returncode == 0, r.stderr
    s = pd.read_csv(tmp_path / "s.csv")
    assert set(s.model) == {"persistence", "linear_ar"} and set(s.lead) == {1, 2, 3}


def test_cli_bad_ndvi_one_line_error(tmp_path, run):
    r = run("vci", str(_csv(tmp_path, ndvi_bad=True)), "-o", str(tmp_path / "v.csv"))
    assert r.returncode == 2
    assert "outside [-1, 1]" in r.stderr and "row" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_help(run):
    r = run("--help")
    assert r.returncode == 0 and all(v in r.stdout for v in ("forecast", "hindcast", "granger"))


def test_cli_forecast_probabilities(tmp_path, run):
    p = _csv(tmp_path)
    r = run("forecast", str(p), "-o", str(tmp_path / "f.csv"), "--regions", "a", "--n-leads", "4")
    assert r.returncode == 0, r.stderr
    f = pd.read_csv(tmp_path / "f.csv")
    assert list(f.lead) == [1, 2, 3, 4] and (f["std"] > 0).all()
    probs = f[[c for c in f.columns if c.startswith("p_") and c != "p_drought"]]
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-9)


def test_cli_hindcast_reports_progress_without_a_warning_flood(tmp_path):
    """Issue 16: a long hindcast printed nothing and 24 MB of one repeated library warning."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(3)
    rows = []
    for r in ("a", "b", "c", "d"):
        d = pd.date_range("2006-01-01", "2012-12-31", freq="7D")
        x = 0.45 + 0.2 * np.sin(2 * np.pi * d.day_of_year / 365.25) + 0.03 * rng.normal(size=d.size)
        rows.append(pd.DataFrame({"date": d, "region": r, "ndvi": x}))
    p = tmp_path / "weekly.csv"
    pd.concat(rows).to_csv(p, index=False)
    env = dict(os.environ, SKYSENSE_PROGRESS="log", SKYSENSE_PROGRESS_INTERVAL="0")
    env.pop("CI", None)
    r = subprocess.run(
        [sys.executable, "-m", "skysense.cli", "astrocast", "hindcast", str(p),
         "-o", str(tmp_path / "h.parquet"), "--models", "persistence,linear_ar,random_forest",
         "--n-leads", "3", "--start-year", "2012"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = (r.stdout + r.stderr).splitlines()
    progress = [ln for ln in lines if ln.startswith("skysense: progress: astrocast hindcast")]
    assert len(progress) >= 2 and "4/4" in progress[-1]
    warning_lines = [ln for ln in lines if "Warning" in ln or "warnings.warn" in ln]
    assert len(warning_lines) <= 3, warning_lines
    assert "sklearn.utils.parallel.delayed" not in r.stderr


def test_cli_unknown_model_is_one_line_error(tmp_path, run):
    p = _csv(tmp_path)
    r = run("forecast", str(p), "-o", str(tmp_path / "f.csv"), "--model", "nope")
    assert r.returncode == 2 and "unknown model" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("hindcast", str(p), "-o", str(tmp_path / "h.csv"), "--models", "auto,nope")
    assert r.returncode == 2 and "nope" in r.stderr
