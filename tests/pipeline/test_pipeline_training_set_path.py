"""training_set_path names the file write_sim_config writes beside the configuration."""

from __future__ import annotations

import pandas as pd

from skysense.cli.__main__ import main
from skysense.pipeline import training_set_path
from skysense.sim import write_field


def test_sim_config_writes_the_training_set_where_the_path_says(tmp_path, capsys):
    write_field(tmp_path / "field", seed=5, area_deg2=0.002, maps=(), progress=False)
    out = tmp_path / "cfg" / "field.yaml"
    assert main(["pipeline", "sim-config", str(tmp_path / "field"), "--out", str(out)]) == 0
    path = training_set_path(out)
    assert path == tmp_path / "cfg" / "specz.parquet"
    assert len(pd.read_parquet(path)) > 0
    assert capsys.readouterr().out.strip() == (
        f"field configuration written to {out} (training set {path})"
    )
