"""Shared runner for the side-by-side benchmarks: timing, peak memory, table and JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "Row",
    "timed",
    "peak_rss_during",
    "report",
    "with_previous",
    "SHARED_DATA",
    "RESULTS",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = Path(os.environ.get("SKYSENSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@dataclasses.dataclass
class Row:
    """One comparison: a task measured for skysense and for its peer.

    ``skysense`` and ``peer`` are in ``unit``; ``ratio`` is peer/skysense when lower is better
    (times) and skysense/peer when higher is better (rates, accuracies), so >1 favours skysense.
    """

    task: str
    skysense: float
    peer: float | None
    peer_name: str = ""
    unit: str = "s"
    higher_is_better: bool = False
    notes: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.peer is None or self.skysense in (0, None) or self.peer == 0:
            return None
        return self.skysense / self.peer if self.higher_is_better else self.peer / self.skysense


def timed(func: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time (s) of ``repeat`` calls of ``func`` and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_during(func: Callable[[], Any], interval_s: float = 0.01) -> tuple[float, int, Any]:
    """Run ``func``; return (wall seconds, peak resident memory increase in bytes, result).

    Samples this process's resident set size from a thread, so memory held by worker threads
    (Dask's local scheduler, numba) counts; child processes do not.
    """
    base = _rss_bytes()
    peak = base
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        result = func()
    finally:
        elapsed = time.perf_counter() - t0
        done.set()
        thread.join()
    return elapsed, max(peak, _rss_bytes()) - base, result


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3e}"


def write_json(path: str | os.PathLike, obj: Any, indent: int = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (NumPy scalars as floats)."""
    from skysense._atomic import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=indent, default=float), encoding="utf-8")


def report(area: str, rows: list[Row], meta: dict[str, Any] | None = None) -> Path:
    """Print the table (task, skysense, peer, ratio) and write ``results/<area>.json``."""
    header = ("task", "skysense", "peer", "peer name", "unit", "ratio", "notes")
    lines = [
        (
            r.task,
            _fmt(r.skysense),
            _fmt(r.peer),
            r.peer_name,
            r.unit,
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.notes,
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)))
    payload = {
        "area": area,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "meta": meta or {},
        "rows": [dict(dataclasses.asdict(r), ratio=r.ratio) for r in rows],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{area}.json"
    write_json(out, payload, indent=2)
    print(f"\nwritten {out.relative_to(ROOT)}")
    return out


def with_previous(
    old: dict,
    rows: list[Row],
    meta: dict[str, Any],
    *,
    generated: frozenset[str] | set[str] = frozenset(),
    derived: Callable[[list[Row]], dict[str, Any]] | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """``rows`` plus the previous results' rows of tasks not rerun, for a partial rerun.

    Parameters
    ----------
    old : dict
        The previous ``results/<area>.json``.
    rows : list of Row
        This run's rows; a previous row of the same task is replaced.
    meta : dict
        This run's metadata. Keys in ``generated`` are this run's own and go under
        ``last_run_meta``; the others (hand-written sections) update the previous ones. With
        ``meta["partial"]`` (a report written mid-run) all of ``meta`` is this run's.
    generated : set of str
        Metadata keys a run writes itself.
    derived : callable, optional
        ``derived(all_rows)``: metadata computed from the kept and new rows together (not
        for a partial report).

    Returns
    -------
    (rows, meta)
        The kept rows (noted ``(from the run of <when>)``) followed by ``rows``; the metadata
        with ``previous_rows_from``, ``previous_meta`` and, when not partial, ``runs`` (this
        run appended, with its command line).
    """
    done = {r.task for r in rows}
    kept = []
    for r in old.get("rows", []):
        if r["task"] in done:
            continue
        note = r.get("notes", "")
        if "(from the run of" not in note:
            note += f" (from the run of {old.get('when', '?')})"
        kept.append(Row(r["task"], r["skysense"], r.get("peer"), peer_name=r.get("peer_name", ""),
                        unit=r.get("unit", "s"), higher_is_better=r.get("higher_is_better", False),
                        notes=note, extra=r.get("extra", {})))  # fmt: skip
    prev = old.get("meta", {})
    kept_meta = {k: v for k, v in prev.items() if k not in generated}
    if meta.get("partial"):
        own = meta
    else:
        own = {k: v for k, v in meta.items() if k in generated}
        kept_meta.update({k: v for k, v in meta.items() if k not in generated})
    out = {**kept_meta, "last_run_meta": own, "previous_rows_from": old.get("when"),
           "previous_meta": prev.get("previous_meta", prev)}  # fmt: skip
    if not own.get("partial"):
        if derived is not None:
            out.update(derived(kept + rows))
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out["runs"] = [*out.get("runs", []), {"when": when, "what": " ".join(sys.argv[1:])}]
    return kept + rows, out
