"""The step runner: cache keys from input checksums, step records, resume, one-line errors.

A :class:`Step` declares what it reads (files or folders, hashed by content), its parameters
(the relevant configuration section) and the steps it depends on. Its **key** is the SHA-256 of
all of that plus the upstream steps' keys and the skysense version, so it is known before
anything runs. After a step's function returns, its **record**
(``<work_dir>/records/<step>.json``: key, outputs, timing and a provenance record) is written
atomically, last: a step whose record holds the current key and whose outputs exist is done.
Hence a rerun with nothing changed only checks; a changed input reruns exactly the steps whose
keys change (that step and everything downstream); an interrupted run resumes from the last
completed step. Any exception in a step becomes one :class:`StepError` naming the step and the
input, and the records of completed steps are kept.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from skysense import __version__
from skysense._atomic import atomic_write_text
from skysense.errors import InputError, SkysenseError

__all__ = [
    "Step",
    "StepContext",
    "StepResult",
    "StepError",
    "checksum",
    "step_key",
    "read_record",
    "run_steps",
    "plan_status",
]

log = logging.getLogger("skysense.pipeline")


class StepError(SkysenseError):
    """A pipeline step failed; the message names the step and the input.

    Attributes
    ----------
    step : str
        The step's name (e.g. ``prepare:ukidss``).
    input : str
        The input the failure is attributed to.
    """

    def __init__(self, step: str, where: str, cause: BaseException):
        self.step = step
        self.input = where
        text = " ".join(str(cause).split()) or type(cause).__name__
        super().__init__(f"step {step!r} failed (input {where}): {text}")


@dataclasses.dataclass
class Step:
    """One unit of cached work.

    Parameters
    ----------
    name : str
        Unique name, e.g. ``prepare:cfhtls``, ``merge``.
    func : callable
        ``func(ctx: StepContext) -> dict`` with ``outputs`` (paths relative to the work folder,
        or absolute), optional ``summary`` (JSON-able) and ``message`` (one line for the log).
    deps : tuple of str
        Names of the upstream steps.
    inputs : tuple of Path
        Files or folders whose content enters the key.
    params : dict
        JSON-able parameters (the relevant configuration section).
    primary_input : str
        What an error is attributed to when the exception names no file.
    is_complete : callable, optional
        ``is_complete(record) -> bool``: an extra check that the outputs are still in place
        (e.g. the tables are still in the VO database).
    """

    name: str
    func: Callable[[StepContext], dict]
    deps: tuple[str, ...] = ()
    inputs: tuple[Path, ...] = ()
    params: dict = dataclasses.field(default_factory=dict)
    primary_input: str = ""
    is_complete: Callable[[dict], bool] | None = None


@dataclasses.dataclass
class StepContext:
    """What a step function receives: its key, the work folder and the upstream records."""

    step: Step
    key: str
    work_dir: Path
    records: dict[str, dict]
    scheduler: str | None = None

    def path(self, *parts: str) -> Path:
        """A path inside the work folder."""
        return self.work_dir.joinpath(*parts)

    def output(self, dep: str, name: str) -> Path:
        """The output ``name`` of the upstream step ``dep`` (resolved path)."""
        outputs = self.records[dep]["outputs"]
        return _resolve(self.work_dir, outputs[name])


@dataclasses.dataclass
class StepResult:
    """What happened to one step in a run: ``status`` is ``ran``, ``cached`` or ``planned``."""

    name: str
    status: str
    key: str
    seconds: float = 0.0
    message: str = ""


def _resolve(work_dir: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else work_dir / p


def _sha256_file(path: Path, h=None) -> str:
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, or of a folder's files (relative names and contents).

    Raises
    ------
    InputError
        The path does not exist.
    """
    path = Path(path)
    if path.is_file():
        return _sha256_file(path)
    if not path.is_dir():
        raise InputError("no such file or folder", path=path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue  # temporary files of atomic writers
        h.update(rel.encode() + b"\0")
        h.update(_sha256_file(f).encode())
    return h.hexdigest()


def step_key(step: Step, upstream: dict[str, str], sums: dict[str, str]) -> str:
    """The step's cache key: SHA-256 of its name, parameters, input checksums, upstream keys and
    the skysense version."""
    doc = {
        "step": step.name,
        "params": step.params,
        "inputs": sums,
        "upstream": {d: upstream[d] for d in step.deps},
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _record_path(work_dir: Path, name: str) -> Path:
    return work_dir / "records" / (name.replace(":", "__") + ".json")


def read_record(work_dir: str | os.PathLike, name: str) -> dict | None:
    """The record of step ``name`` in ``work_dir``, or None (absent or unreadable)."""
    path = _record_path(Path(work_dir), name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _versions() -> dict:
    import importlib.metadata as md
    import platform

    out = {"skysense": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "pandas", "astropy", "dask", "jax", "duckdb", "pyarrow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_done(step: Step, key: str, record: dict | None, work_dir: Path) -> bool:
    if record is None or record.get("key") != key:
        return False
    for value in (record.get("outputs") or {}).values():
        if not _resolve(work_dir, value).exists():
            return False
    if step.is_complete is not None:
        try:
            return bool(step.is_complete(record))
        except Exception:  # an unreadable output means: redo
            return False
    return True


def _keys(steps: Sequence[Step], rel: Callable[[Path], str]) -> tuple[dict, dict]:
    keys: dict[str, str] = {}
    sums_of: dict[str, dict] = {}
    for step in steps:
        sums = {}
        for p in step.inputs:
            try:
                sums[rel(p)] = checksum(p)
            except InputError as exc:
                raise StepError(step.name, str(p), exc) from exc
        missing = [d for d in step.deps if d not in keys]
        if missing:
            raise ValueError(f"step {step.name} depends on unknown or later steps {missing}")
        sums_of[step.name] = sums
        keys[step.name] = step_key(step, keys, sums)
    return keys, sums_of


def _downstream(steps: Sequence[Step], roots: Iterable[str]) -> set[str]:
    out = set(roots)
    for step in steps:  # steps are in dependency order
        if any(d in out for d in step.deps):
            out.add(step.name)
    return out


def _match(names: Iterable[str], patterns: Iterable[str]) -> set[str]:
    names = list(names)
    chosen = set()
    for pat in patterns:
        hit = [n for n in names if n == pat or n.split(":")[0] == pat]
        if not hit:
            from skysense._check import did_you_mean
            from skysense.errors import ConfigError

            hint = did_you_mean(pat, names)
            raise ConfigError(f"no step {pat!r}{hint}; steps: {', '.join(names)}", key="--force")
        chosen.update(hit)
    return chosen


def plan_status(
    steps: Sequence[Step], work_dir: Path, *, rel: Callable[[Path], str] = str, force=()
) -> list[StepResult]:
    """Which steps a run would redo (``planned``) and which are done (``cached``)."""
    keys, _ = _keys(steps, rel)
    forced = _downstream(steps, _match([s.name for s in steps], force))
    out, redo = [], set()
    for step in steps:
        rec = read_record(work_dir, step.name)
        stale = (
            step.name in forced
            or any(d in redo for d in step.deps)
            or not _is_done(step, keys[step.name], rec, work_dir)
        )
        if stale:
            redo.add(step.name)
        msg = "" if stale or rec is None else rec.get("message", "")
        out.append(StepResult(step.name, "planned" if stale else "cached", keys[step.name], 0, msg))
    return out


def run_steps(
    steps: Sequence[Step],
    work_dir: str | os.PathLike,
    *,
    rel: Callable[[Path], str] = str,
    force: Iterable[str] = (),
    scheduler: str | None = None,
    echo: Callable[[str], None] | None = None,
    progress: bool = False,
) -> list[StepResult]:
    """Run the steps in order, skipping those already done with the same key.

    Parameters
    ----------
    steps : sequence of Step
        In dependency order.
    work_dir : path
        Folder of the outputs and ``records/``.
    rel : callable
        Names input paths in keys and records (relative names keep a work folder relocatable).
    force : iterable of str
        Steps to redo (a name such as ``xid``, or a kind such as ``prepare`` for all surveys);
        everything downstream of them is redone too.
    scheduler : str, optional
        Dask scheduler address, passed to the steps.
    echo : callable, optional
        Receives one line per step (what it did, how long it took).
    progress : bool
        Draw a progress bar over the steps.

    Returns
    -------
    list of StepResult

    Raises
    ------
    StepError
        The first step that failed (names the step and the input).
    """
    from tqdm.auto import tqdm

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    keys, sums_of = _keys(steps, rel)
    forced = _downstream(steps, _match([s.name for s in steps], force))
    records: dict[str, dict] = {}
    results: list[StepResult] = []
    say = echo or (lambda line: None)
    with tqdm(total=len(steps), desc="pipeline", unit="step", disable=not progress) as bar:
        for step in steps:
            key = keys[step.name]
            bar.set_postfix_str(step.name)
            rec = read_record(work_dir, step.name)
            if step.name not in forced and _is_done(step, key, rec, work_dir):
                records[step.name] = rec
                results.append(StepResult(step.name, "cached", key, 0.0, rec.get("message", "")))
                log.info("%s: up to date (key %s)", step.name, key[:12])
                say(f"{step.name}: up to date")
                bar.update(1)
                continue
            say(f"{step.name}: running")
            started, t0 = _now(), time.perf_counter()
            ctx = StepContext(step, key, work_dir, records, scheduler)
            try:
                out = step.func(ctx) or {}
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                where = getattr(exc, "path", None) or getattr(exc, "filename", None)
                raise StepError(step.name, str(where or step.primary_input), exc) from exc
            seconds = time.perf_counter() - t0
            outputs = {k: str(v) for k, v in (out.get("outputs") or {}).items()}
            record = {
                "step": step.name,
                "key": key,
                "outputs": outputs,
                "summary": out.get("summary") or {},
                "message": out.get("message", ""),
                "timing": {"seconds": round(seconds, 3)},
                "provenance": {
                    "inputs": sums_of[step.name],
                    "parameters": step.params,
                    "upstream": {d: keys[d] for d in step.deps},
                    "versions": _versions(),
                    "started": started,
                    "finished": _now(),
                },
            }
            # Written last: its presence with this key is what marks the step as done.
            atomic_write_text(
                _record_path(work_dir, step.name),
                json.dumps(record, indent=2, sort_keys=True, default=_json_default) + "\n",
            )
            records[step.name] = record
            results.append(StepResult(step.name, "ran", key, seconds, record["message"]))
            log.info("%s: done in %.1f s: %s", step.name, seconds, record["message"])
            say(f"{step.name}: done in {seconds:.1f} s" + (
                f": {record['message']}" if record["message"] else ""
            ))  # fmt: skip
            bar.update(1)
    return results


def _json_default(value: Any):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
