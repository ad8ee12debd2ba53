"""The step runner on toy steps: keys follow file contents (not times), records are written
last, failures name the step and the input, --force reaches downstream steps."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from skysense.errors import InputError
from skysense.pipeline.runner import Step, StepError, checksum, plan_status, read_record, run_steps


def _chain(tmp_path: Path, calls: list[str], *, fail: str | None = None) -> list[Step]:
    src = tmp_path / "in.txt"

    def make(name: str):
        def func(ctx):
            calls.append(name)
            if name == fail:
                raise InputError("bad value in line 3", path=src)
            out = ctx.path(f"{name}.txt")
            text = src.read_text() + "".join(
                ctx.output(d, "file").read_text() for d in ctx.step.deps
            )
            out.write_text(text + name)
            return {"outputs": {"file": f"{name}.txt"}, "message": f"wrote {name}"}

        return func

    return [
        Step("a", make("a"), inputs=(src,), params={"x": 1}, primary_input="in.txt"),
        Step("b", make("b"), deps=("a",), params={"y": 2}),
        Step("c", make("c"), deps=("b",)),
        Step("d", make("d"), deps=("a",)),
    ]


def test_keys_follow_content_not_modification_time(tmp_path):
    (tmp_path / "in.txt").write_text("one")
    work = tmp_path / "work"
    calls: list[str] = []
    run_steps(_chain(tmp_path, calls), work)
    assert calls == ["a", "b", "c", "d"]
    assert (work / "c.txt").read_text() == "one" + ("one" + "onea" + "b") + "c"
    os.utime(tmp_path / "in.txt", (1, 1))  # touched, same content: nothing to do
    calls.clear()
    res = run_steps(_chain(tmp_path, calls), work)
    assert calls == [] and [r.status for r in res] == ["cached"] * 4
    (tmp_path / "in.txt").write_text("two")
    res = run_steps(_chain(tmp_path, calls), work)
    assert calls == ["a", "b", "c", "d"]
    rec = read_record(work, "a")
    assert rec["provenance"]["inputs"] == {
        str(tmp_path / "in.txt"): hashlib.sha256(b"two").hexdigest()
    }
    assert rec["message"] == "wrote a" and rec["timing"]["seconds"] >= 0


def test_a_deleted_output_reruns_its_step(tmp_path):
    (tmp_path / "in.txt").write_text("one")
    work = tmp_path / "work"
    calls: list[str] = []
    run_steps(_chain(tmp_path, calls), work)
    (work / "b.txt").unlink()
    calls.clear()
    run_steps(_chain(tmp_path, calls), work)
    # b's key is unchanged, so c (whose key depends on b's key only) stays cached.
    assert calls == ["b"]


def test_failure_names_step_and_input_and_keeps_earlier_records(tmp_path):
    (tmp_path / "in.txt").write_text("one")
    work = tmp_path / "work"
    calls: list[str] = []
    with pytest.raises(StepError) as info:
        run_steps(_chain(tmp_path, calls, fail="b"), work)
    assert str(info.value) == (
        f"step 'b' failed (input {tmp_path / 'in.txt'}): {tmp_path / 'in.txt'}: bad value in line 3"
    )
    assert info.value.step == "b" and isinstance(info.value.__cause__, InputError)
    assert read_record(work, "a") is not None and read_record(work, "b") is None
    calls.clear()
    run_steps(_chain(tmp_path, calls), work)
    assert calls == ["b", "c", "d"]  # resumed after a


def test_force_reaches_downstream_steps_only(tmp_path):
    (tmp_path / "in.txt").write_text("one")
    work = tmp_path / "work"
    calls: list[str] = []
    run_steps(_chain(tmp_path, calls), work)
    plan = plan_status(_chain(tmp_path, []), work, force=["b"])
    assert [r.status for r in plan] == ["cached", "planned", "planned", "cached"]
    calls.clear()
    run_steps(_chain(tmp_path, calls), work, force=["b"])
    assert calls == ["b", "c"]


def test_folder_checksum_covers_names_and_contents_not_temporaries(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x.bin").write_bytes(b"abc")
    first = checksum(d)
    (d / ".tmp.partial").write_bytes(b"half-written")
    assert checksum(d) == first
    (d / "sub" / "x.bin").rename(d / "sub" / "y.bin")
    assert checksum(d) != first
    with pytest.raises(InputError, match="no such file or folder"):
        checksum(tmp_path / "missing")
