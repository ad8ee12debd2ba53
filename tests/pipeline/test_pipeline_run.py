"""``skysense pipeline run``: every output, caching by content, reruns downstream of a change,
resume after a failure, one-line errors naming the step, and did-you-mean configuration errors."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from skysense.cli.__main__ import main
from skysense.errors import ConfigError
from skysense.pipeline import StepError, parse_pipeline_config, run, status
from skysense.pipeline.runner import read_record

STEPS = [
    "prepare:suprime",
    "prepare:cfhtls",
    "prepare:ukidss",
    "prepare:swire",
    "merge",
    "radio",
    "priors",
    "xid",
    "photoz_train",
    "photoz_apply",
    "publish",
    "summary",
]
DOWNSTREAM_OF_MERGE = STEPS[4:]


def _records(work: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((work / "records").glob("*.json"))}


def _query(db: Path, adql: str, capsys) -> pd.DataFrame:
    capsys.readouterr()
    assert main(["vo", "query", adql, "--db", str(db), "--maxrec", "100000"]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_full_run_produces_every_output(completed, capsys):
    root, report = completed
    work = root / "pipeline"
    assert [s.name for s in report.steps] == STEPS
    assert all(s.status == "ran" for s in report.steps)
    for name in STEPS:
        rec = read_record(work, name)
        assert rec is not None and rec["step"] == name and len(rec["key"]) == 64
        for out in rec["outputs"].values():
            assert (work / out).exists(), (name, out)
        prov = rec["provenance"]
        assert prov["started"] <= prov["finished"]
        assert prov["versions"]["skysense"]
        # The recorded checksums are those of the files (recomputed independently).
        for rel, digest in prov["inputs"].items():
            p = root / rel
            if p.is_file():
                assert hashlib.sha256(p.read_bytes()).hexdigest() == digest
    assert read_record(work, "merge")["provenance"]["upstream"].keys() == set(STEPS[:4])
    assert read_record(work, "prepare:ukidss")["provenance"]["inputs"].keys() == {
        "field/catalogues/ukidss.yaml",
        "field/catalogues/ukidss.csv",
        "field/reference/gaia.parquet",
    }

    db = root / "vo.duckdb"
    ml = _query(db, "SELECT help_id, ra, dec, zphot, zphot_err FROM help.masterlist", capsys)
    n_ml = read_record(work, "merge")["summary"]["n_objects"]
    assert len(ml) == n_ml > 1000
    assert ml["zphot"].notna().mean() > 0.99 and (ml["zphot_err"] > 0).all()
    xid = _query(db, "SELECT help_id, f_spire_250, zphot FROM help.xid", capsys)
    assert len(xid) == read_record(work, "priors")["summary"]["n_priors"]
    assert set(xid["help_id"]) <= set(ml["help_id"])
    # The XID+ table carries the masterlist photo-z of the same object.
    joined = xid.merge(ml, on="help_id", suffixes=("", "_ml"))
    assert (joined["zphot"] - joined["zphot_ml"]).abs().max() < 1e-12
    capsys.readouterr()
    assert main(["vo", "tables", "--db", str(db)]) == 0
    assert "help.masterlist" in capsys.readouterr().out
    cols = _query(
        db,
        "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = 'help.xid'",
        capsys,
    ).set_index("column_name")
    assert cols.loc["f_spire_250", "unit"] == "mJy"
    assert cols.loc["zphot", "ucd"] == "src.redshift.phot"
    from skysense.vo.backends import open_backend
    from skysense.vo.maps import list_maps

    backend = open_backend(db, create=False)
    try:
        assert sorted(m.name for m in list_maps(backend)) == [
            "mips_24",
            "pacs_green",
            "pacs_red",
            "spire_250",
            "spire_350",
            "spire_500",
        ]
    finally:
        backend.close()
    summary = json.loads((work / "summary" / "summary.json").read_text())
    assert report.summary == summary
    assert "## Against the simulation's truth" in (work / "summary" / "summary.md").read_text()


def test_rerun_with_nothing_changed_does_no_work(site_copy):
    work = site_copy / "pipeline"
    before = _records(work)
    report = run(site_copy / "field.yaml", progress=False)
    assert report.ran == [] and report.cached == STEPS
    assert _records(work) == before  # no record rewritten
    assert all(s.status == "cached" for s in status(site_copy / "field.yaml"))


def test_changing_one_survey_reruns_it_and_downstream_only(site_copy):
    cfg = site_copy / "field" / "catalogues" / "ukidss.yaml"
    cfg.write_text(cfg.read_text().replace("cuts: []", "cuts: ['kPetroMag < 19.5']"))
    before = _records(site_copy / "pipeline")
    planned = [s.name for s in status(site_copy / "field.yaml") if s.status == "planned"]
    assert planned == ["prepare:ukidss", *DOWNSTREAM_OF_MERGE]
    report = run(site_copy / "field.yaml", progress=False)
    assert report.ran == ["prepare:ukidss", *DOWNSTREAM_OF_MERGE]
    assert report.cached == ["prepare:suprime", "prepare:cfhtls", "prepare:swire"]
    after = _records(site_copy / "pipeline")
    for name in ("prepare__suprime.json", "prepare__cfhtls.json", "prepare__swire.json"):
        assert after[name] == before[name]
    rec = read_record(site_copy / "pipeline", "prepare:ukidss")
    old = json.loads(before["prepare__ukidss.json"])
    assert rec["summary"]["counts"]["final"] < old["summary"]["counts"]["final"]


def test_failure_in_a_late_step_names_it_and_the_run_resumes(site_copy, monkeypatch, capsys):
    from skysense.pipeline import steps

    yaml_path = site_copy / "field.yaml"
    # A new photo-z partition size: photoz_apply and everything after it must run again.
    text = yaml_path.read_text().replace("  seed: 0\n", "  seed: 0\n  partition_rows: 500\n")
    yaml_path.write_text(text)

    def broken(ctx, **kwargs):
        raise RuntimeError("disk full\nwhile writing")

    monkeypatch.setattr(steps, "_publish", broken)
    with pytest.raises(StepError, match=r"step 'publish' failed \(input vo.duckdb\): disk full"):
        run(yaml_path, progress=False)
    work = site_copy / "pipeline"
    applied = read_record(work, "photoz_apply")
    assert applied["provenance"]["parameters"]["partition_rows"] == 500  # completed steps kept
    # The CLI: one line naming the step, exit status 2.
    capsys.readouterr()
    assert main(["pipeline", "run", str(yaml_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "skysense: error: step 'publish' failed (input vo.duckdb): disk full while writing"
    ]
    monkeypatch.undo()
    report = run(yaml_path, progress=False)
    assert report.ran == ["publish", "summary"]
    assert read_record(work, "photoz_apply") == applied


def test_error_in_a_survey_names_the_step_and_its_file(site_copy, capsys):
    cfg = site_copy / "field" / "catalogues" / "swire.yaml"
    cfg.write_text(cfg.read_text().replace("FLUX_KR_IRAC1", "FLUX_KR_IRAC9"))
    capsys.readouterr()
    assert main(["pipeline", "run", str(site_copy / "field.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skysense: error: step 'prepare:swire' failed")
    assert "swire.yaml" in err and "FLUX_KR_IRAC9" in err and err.count("\n") == 1
    # Steps finished before the failure keep their records.
    assert read_record(site_copy / "pipeline", "prepare:suprime") is not None


def test_dry_run_and_force_plan(site_copy, capsys):
    capsys.readouterr()
    assert (
        main(["pipeline", "run", str(site_copy / "field.yaml"), "--dry-run", "--force", "xid"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("dry run: 3 of 12 step(s) would run")
    planned = [line.split()[0] for line in out.splitlines()[1:] if line.split()[1] == "planned"]
    assert planned == ["xid", "publish", "summary"]
    with pytest.raises(ConfigError, match=r"no step 'xdi' \(did you mean 'xid'\?\)"):
        run(site_copy / "field.yaml", force=["xdi"], dry_run=True)
    # --force prepare means every survey, and everything downstream.
    plan = run(site_copy / "field.yaml", force=["prepare"], dry_run=True)
    assert all(s.status == "planned" for s in plan.steps)


def _minimal(tmp_path: Path) -> dict:
    (tmp_path / "s.yaml").write_text("survey: s\n")
    return {"field": {"name": "f"}, "surveys": [{"config": "s.yaml"}]}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(survyes=d.pop("surveys")), r"survyes: unknown key \(did you mean 'surveys'\?\)"),
        (lambda d: d.update(xid={"sampels": 10}), r"xid.sampels: unknown key \(did you mean 'samples'\?\)"),
        (lambda d: d.update(photoz={"training": {"redshift": "z"}}), r"photoz.training.redshift: unknown key"),
        (lambda d: d["surveys"][0].update(radius=1.0), r"surveys\[0\].radius: unknown key \(did you mean 'radius_arcsec'\?\)"),
        (lambda d: d["surveys"][0].update(config="nope.yaml"), r"surveys\[0\].config: no such file"),
        (lambda d: d.update(merge={"same_filter_rule": "priorty"}), r"merge.same_filter_rule: must be one of .*did you mean 'priority'"),
        (lambda d: d.update(xid={"samples": "many"}), r"xid.samples: must be int, got 'many'"),
        (lambda d: d.update(xid={"maps": [{"band": "spire_250", "file": "s.yaml"}]}), r"xid.priors.cut: missing"),
        (lambda d: d.update(xid={"priors": {"cut": "f_x >"}}), r"xid.priors.cut: invalid expression"),
        (lambda d: d["field"].pop("name"), r"field.name: missing"),
        (lambda d: d.update(radio={"config": "nope.yaml"}), r"radio.config: no such file"),
    ],
)  # fmt: skip
def test_bad_configuration_names_file_and_key(tmp_path, edit, message):
    raw = _minimal(tmp_path)
    edit(raw)
    with pytest.raises(ConfigError, match=message) as info:
        parse_pipeline_config(raw, path=tmp_path / "field.yaml")
    assert str(info.value).startswith(str(tmp_path / "field.yaml"))


def test_cli_reports_a_bad_key_in_one_line(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("survey: s\n")
    path = tmp_path / "field.yaml"
    path.write_text("field: {name: f}\nsurveys: [s.yaml]\npublsh: {db: x.duckdb}\n")
    assert main(["pipeline", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"skysense: error: {path}: publsh: unknown key (did you mean 'publish'?)\n"


def test_the_shipped_example_configuration_is_valid(tmp_path):
    """``examples/field.yaml`` parses (its files stood in for by empty ones)."""
    import yaml

    example = Path(__file__).resolve().parents[2] / "examples" / "field.yaml"
    raw = yaml.safe_load(example.read_text())
    names = [s["config"] for s in raw["surveys"]] + [m["file"] for m in raw["xid"]["maps"]]
    names += [raw["reference"], raw["photoz"]["training"]["file"]]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    cfg = parse_pipeline_config(raw, path=tmp_path / "field.yaml")
    assert cfg.name == "ELAIS-N1" and len(cfg.surveys) == 4 and len(cfg.maps) == 4
    assert cfg.surveys[-1].radius_arcsec == 1.5 and cfg.db == str(tmp_path / "vo.duckdb")
    assert cfg.section("xid")["priors"]["cut"] == "f_irac_i1 > 20"


def test_an_interrupted_xid_fit_keeps_its_finished_tiles(site_copy, monkeypatch):
    """Retrying the XID+ step with the same key reuses the tiles already on disk."""
    import importlib

    # the module (skysense.xid re-exports a function of the same name)
    fit_module = importlib.import_module("skysense.xid.fit")
    work = site_copy / "pipeline"
    before = pd.read_parquet(work / "xid" / "catalogue.parquet")
    # As after a crash at the end of the step: tiles written, no catalogue, no record.
    (work / "xid" / "catalogue.parquet").unlink()
    (work / "records" / "xid.json").unlink()

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished tile was fitted again")

    monkeypatch.setattr(fit_module, "fit", no_fit)
    report = run(site_copy / "field.yaml", progress=False)
    assert report.ran[0] == "xid"
    after = pd.read_parquet(work / "xid" / "catalogue.parquet")
    pd.testing.assert_frame_equal(
        before.sort_values("HELP_ID").reset_index(drop=True),
        after.sort_values("HELP_ID").reset_index(drop=True),
    )


@pytest.mark.postgres
def test_publishing_to_postgresql(site_copy, postgres_dsn):
    """The same field published to PostgreSQL: only publish (and summary) run, and the
    database's publish record makes the next run a no-op."""
    import secrets
    import urllib.parse

    import psycopg

    name = f"skysense_test_{secrets.token_hex(5)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(postgres_dsn)._replace(path=f"/{name}"))
    try:
        path = site_copy / "field.yaml"
        path.write_text(path.read_text().replace("  db: vo.duckdb", f"  db: {url}"))
        assert run(path, progress=False).ran == ["publish", "summary"]
        assert run(path, progress=False).ran == []
        from skysense.vo.backends import open_backend

        backend = open_backend(url, create=False)
        try:
            n = backend.query("SELECT COUNT(*) AS n FROM help.xid").column("n")[0].as_py()
            assert n == read_record(site_copy / "pipeline", "priors")["summary"]["n_priors"]
        finally:
            backend.close()
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_photoz_apply_streams_the_hats_masterlist_with_the_in_driver_result(completed):
    """The photo-z step predicts the HATS masterlist partition by partition (#19); its one
    Parquet output equals the whole masterlist predicted in the driver (the earlier step)."""
    from skysense.catalog.hats_io import read_hats_table
    from skysense.photoz.engine import predict_partitions
    from skysense.photoz.io import load_model

    root, _ = completed
    work = root / "pipeline"
    src = work / read_record(work, "merge")["outputs"]["masterlist"]
    assert src.is_dir()  # a HATS catalogue
    model = load_model(work / read_record(work, "photoz_train")["outputs"]["model"])
    expected = predict_partitions(model, [read_hats_table(src)], scheduler="synchronous")
    got = pd.read_parquet(work / read_record(work, "photoz_apply")["outputs"]["masterlist"])
    # equal to rounding: BLAS may sum in another order for another batch shape (0.2 % of
    # zphot_err differed in the last bits on one OpenBLAS build); the input columns exact
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0.0)
    kept = [c for c in expected.columns if not c.startswith("zphot")]
    pd.testing.assert_frame_equal(got[kept], expected[kept], check_exact=True)
    assert not (work / "photoz" / ".masterlist_photoz.hats").exists()  # scratch removed


def test_concatenated_hats_partitions_read_as_the_whole_table(tmp_path):
    """The photo-z step's copy of a HATS catalogue into one Parquet file, batch by batch: the
    same frame (rows in partition order, dtypes) as read_hats_table, over many partitions."""
    import numpy as np

    from skysense.catalog.hats_io import hats_files, read_hats_table, write_hats
    from skysense.pipeline.steps import _concat_hats

    rng = np.random.default_rng(4)
    n = 600
    frame = pd.DataFrame({"help_id": pd.array([f"H{i}" for i in range(n)], dtype="string"),
                          "ra": rng.uniform(0, 40, n), "dec": rng.uniform(-20, 20, n),
                          "flux": np.where(rng.random(n) < 0.2, np.nan, rng.random(n))})  # fmt: skip
    src = write_hats(frame, tmp_path / "ml", partition_rows=90, highest_order=6)
    assert len(hats_files(src)) >= 4
    _concat_hats(src, tmp_path / "one.parquet", 37, metadata_from=src)
    expected = read_hats_table(src)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), expected,
                                  check_exact=True)  # fmt: skip
