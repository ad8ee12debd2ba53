"""The package skeleton: CLI discovery, one-line errors, atomic writes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from skysense._atomic import atomic_dir, atomic_path, atomic_write_text
from skysense.cli.__main__ import main
from skysense.errors import ConfigError, InputError, QueryError


def test_cli_help_lists_areas(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: skysense" in out


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "skysense" in capsys.readouterr().out


def test_console_script_runs():
    res = subprocess.run(
        [sys.executable, "-m", "skysense.cli", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "AREA" in res.stdout


def test_input_error_names_file_column_row():
    err = InputError("not a number: 'abc'", path="cat.csv", column="ra", row=7)
    assert str(err) == "cat.csv, column 'ra', row 7: not a number: 'abc'"
    assert isinstance(err, ValueError)


def test_config_and_query_errors_locate_problem():
    assert "bands.0.name" in str(ConfigError("missing", path="s.yaml", key="bands.0.name"))
    assert str(QueryError("unexpected FROM", line=1, column=8)).endswith("(line 1, column 8)")


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_replaces(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_atomic_dir_swaps_whole_directory(tmp_path):
    target = tmp_path / "cat"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]


def test_cli_closed_pipe_exits_quietly(tmp_path):
    # `skysense sim field ... | head -1`: the reader is gone before the command writes;
    # that must end quietly, not with a traceback.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skysense.cli",
            "sim",
            "field",
            "--out",
            str(tmp_path / "f"),
            "--area",
            "0.002",
            "--no-maps",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait()
    assert "Traceback" not in err, err
    assert proc.returncode == 141
