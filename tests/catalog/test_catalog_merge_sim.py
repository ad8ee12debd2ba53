"""Acceptance on a small simulated field: prepare every survey, merge, compare with the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from skysense import sim
from skysense.catalog import prepare_io as prepare
from skysense.catalog.merge_config import load_merge_config
from skysense.catalog.merge_io import run_merge


def _pairs(df, key):
    out = set()
    for _, g in df.groupby(key):
        ids = list(zip(g["survey"], g["source_id"]))
        out |= {
            tuple(sorted((a, b))) for i, a in enumerate(ids) for b in ids[i + 1 :] if a[0] != b[0]
        }
    return out


@pytest.mark.acceptance
def test_simulated_field_masterlist_recovers_truth(tmp_path):
    field = tmp_path / "field"
    sim.write_field(field, seed=3, area_deg2=0.02, maps=())
    manifest = sim.read_manifest(field)
    prepared = []
    for name, info in manifest["surveys"].items():
        result = prepare.prepare_survey(
            field / info["config"], reference=field / manifest["reference"]
        )
        out = tmp_path / "prepared" / f"{name}.parquet"
        prepare.write_prepared(result, out)
        prepared.append(out)
    config = tmp_path / "prepared" / "merge.yaml"
    config.write_text(
        yaml.safe_dump({"catalogues": [p.name for p in prepared], "radius_arcsec": "auto"})
    )
    summary = run_merge(load_merge_config(config), tmp_path / "out")
    assert all(0.3 < r < 2.0 for r in summary["radii_arcsec"])

    assoc = pd.read_parquet(tmp_path / "out" / "associations")
    truth = pd.read_parquet(field / "truth" / "catalogue_rows.parquet").astype({"source_id": str})
    joined = assoc.merge(truth, on=["survey", "source_id"], how="left")
    assert joined["object_id"].notna().all()  # every masterlist row is a simulated row
    # Duplicate detections the preparation kept cannot join their object (one-to-one within a
    # survey); they are left out of the scoring, as HELP's flag_cleaned leaves them to users.
    scored = joined[~joined["is_duplicate"]]
    found = _pairs(scored, "object_key")
    true = _pairs(scored, "object_id")
    completeness = len(found & true) / len(true)
    purity = len(found & true) / len(found)
    assert completeness >= 0.99, completeness
    assert purity >= 0.99, purity

    # Flags agree with the truth: objects flagged as Gaia stars (flag_gaia = 3) are true stars.
    ml = pd.read_parquet(tmp_path / "out" / "masterlist" / "dataset")
    objects = pd.read_parquet(field / "truth" / "objects.parquet")[["object_id", "kind"]]
    pos_rows = joined[joined["is_position"]][["object_key", "object_id"]]
    flagged = (
        ml[ml["flag_gaia"] == 3][["object_key"]]
        .merge(pos_rows, on="object_key")
        .merge(objects, on="object_id")
    )
    if len(flagged):
        assert (flagged["kind"] == "star").mean() >= 0.95
    # flag_merged marks exactly the objects with an ambiguous association.
    ambiguous = set(assoc.loc[assoc["ambiguity"] > 0, "object_key"])
    assert ambiguous <= set(ml.loc[ml["flag_merged"], "object_key"])
    assert np.all(ml["flag_optnir_obs"] >= 1)
