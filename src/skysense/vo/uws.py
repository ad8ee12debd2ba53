"""UWS 1.1 asynchronous TAP jobs (``/tap/async``).

A :class:`Job` is a plain record; the :class:`JobStore` keeps every job in memory *and* in the
database (``_uws_jobs``), so jobs survive a server restart (jobs that were queued or running
are queued again). Jobs run on a small bounded thread pool (this is the server's executor, not
the Dask batch engine); results and inline uploads are files under
``<workdir>/uws/<job id>/``. Job ids are ``secrets.token_urlsafe`` strings (unguessable).

The HTTP handlers implement the UWS 1.1 REST binding: job list (with ``PHASE``, ``AFTER``,
``LAST`` filters), job document (with ``WAIT`` blocking), ``phase`` (``RUN``/``ABORT``),
``parameters``, ``results``/``result``, ``error``, ``executionduration``, ``destruction``,
``quote``, ``owner``, ``DELETE`` and ``ACTION=DELETE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import math
import secrets
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from skysense._atomic import atomic_write_bytes
from skysense.errors import InputError, SkysenseError
from skysense.vo.backends import QueryHandle, QueryTimeout
from skysense.vo.limits import Deadline
from skysense.vo.tap import (
    TapParams,
    query_request,
    read_params,
    resolve_uploads,
    run_adql_serialised,
)
from skysense.vo.votable import error_votable

__all__ = [
    "Job",
    "JobStore",
    "JobNotFound",
    "UWSError",
    "PHASES",
    "FINAL_PHASES",
    "routes",
    "job_xml",
    "jobs_xml",
]

log = logging.getLogger(__name__)

PHASES = (
    "PENDING",
    "QUEUED",
    "EXECUTING",
    "COMPLETED",
    "ERROR",
    "ABORTED",
    "UNKNOWN",
    "HELD",
    "SUSPENDED",
    "ARCHIVED",
)
FINAL_PHASES = ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")
_ACTIVE = ("PENDING", "QUEUED", "EXECUTING")
_UWS_NS = (
    'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
# Parameters that are job properties, not query parameters.
_CONTROL = {"phase", "action", "executionduration", "destruction", "runid", "wait"}


class JobNotFound(SkysenseError, LookupError):
    """No job with this id (HTTP 404)."""


class UWSError(InputError):
    """A UWS request that is not allowed in the job's state (HTTP 400)."""


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def _iso(t: _dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str, what: str) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UWSError(f"{what} must be an ISO 8601 time, got {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t


@dataclass
class Job:
    """One async job (times are timezone-aware UTC)."""

    job_id: str
    phase: str
    creation_time: _dt.datetime
    destruction_time: _dt.datetime
    execution_duration_s: int
    parameters: dict[str, str] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)  # UPLOAD values
    files: list[str] = field(default_factory=list)  # inline parts kept in the job folder
    run_id: str | None = None
    owner: str | None = None
    start_time: _dt.datetime | None = None
    end_time: _dt.datetime | None = None
    error: str | None = None
    result_mime: str | None = None
    result_file: str | None = None
    result_rows: int | None = None
    result_size: int | None = None
    overflow: bool = False

    def to_doc(self) -> dict:
        doc = asdict(self)
        for key in ("creation_time", "destruction_time", "start_time", "end_time"):
            doc[key] = _iso(doc[key])
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> Job:
        doc = dict(doc)
        for key in ("creation_time", "destruction_time", "start_time", "end_time"):
            if doc.get(key):
                doc[key] = _parse_time(doc[key], key)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})


class JobStore:
    """All async jobs: in memory, mirrored to the database, run on a thread pool.

    Parameters
    ----------
    state : object
        ``backend`` and ``settings`` (the Starlette app state).
    """

    def __init__(self, state):
        self.state = state
        self.settings = state.settings
        self.backend = state.backend
        self.root = Path(self.settings.resolved_workdir) / "uws"
        self._jobs: dict[str, Job] = {}
        self._handles: dict[str, QueryHandle] = {}
        # Bytes each job keeps on disk (inline uploads plus result), for the storage caps.
        self._sizes: dict[str, int] = {}
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.async_workers, thread_name_prefix="skysense-uws"
        )
        self._closed = False

    # ---- lifecycle
    def start(self) -> None:
        """Load stored jobs; queue again the ones a restart interrupted; purge expired ones."""
        for doc in self.backend.jobs_load():
            try:
                job = Job.from_doc(doc)
            except (TypeError, ValueError, UWSError) as exc:
                log.warning("ignoring unreadable stored job %s: %s", doc.get("job_id"), exc)
                continue
            self._jobs[job.job_id] = job
            self._sizes[job.job_id] = _folder_bytes(self.folder(job.job_id))
        self._remove_orphan_folders()
        self.purge_expired()
        for job in list(self._jobs.values()):
            if job.phase in ("QUEUED", "EXECUTING"):
                job.phase, job.start_time = "QUEUED", None
                self._save(job)
                self._pool.submit(self._execute, job.job_id)

    def interrupt(self) -> None:
        """Stop running jobs without waiting (a stop signal): they stay queued for the next
        start instead of ending in ERROR, and no queued job starts."""
        self._closed = True
        with self._lock:
            handles = list(self._handles.values())
        for h in handles:
            h.cancel()

    def close(self) -> None:
        """Stop running jobs (they are re-queued on the next start)."""
        self.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _remove_orphan_folders(self) -> None:
        """Delete job folders no stored job owns (a crash between writing and saving)."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.is_dir() and path.name not in self._jobs:
                shutil.rmtree(path, ignore_errors=True)

    def storage_bytes(self) -> int:
        """Bytes all jobs keep on disk (uploads and results)."""
        with self._lock:
            return sum(self._sizes.values())

    def _reserve(self, job_id: str, nbytes: int, what: str) -> None:
        """Count ``nbytes`` more for ``job_id`` or refuse them (before anything is written).

        Raises
        ------
        UWSError
            When the job's or all jobs' storage limit would be exceeded.
        """
        settings = self.settings
        with self._lock:
            mine = self._sizes.get(job_id, 0) + nbytes
            if mine > settings.job_storage_limit_bytes:
                raise UWSError(
                    f"{what} of {nbytes} bytes exceeds the storage limit of one job "
                    f"({settings.job_storage_limit_bytes} bytes)"
                )
            total = sum(self._sizes.values()) + nbytes
            if total > settings.jobs_storage_limit_bytes:
                raise UWSError(
                    f"{what} of {nbytes} bytes does not fit in the async job storage "
                    f"({settings.jobs_storage_limit_bytes} bytes, "
                    f"{total - nbytes} in use); delete finished jobs or retry later"
                )
            self._sizes[job_id] = mine

    def _release(self, job_id: str, nbytes: int | None = None) -> None:
        with self._lock:
            if nbytes is None:
                self._sizes.pop(job_id, None)
            elif job_id in self._sizes:
                self._sizes[job_id] = max(0, self._sizes[job_id] - nbytes)

    def purge_expired(self) -> int:
        """Destroy jobs past their destruction time (and their files); returns how many."""
        now = _now()
        expired = [j.job_id for j in list(self._jobs.values()) if j.destruction_time <= now]
        for job_id in expired:
            with contextlib.suppress(JobNotFound):
                self.delete(job_id)
        return len(expired)

    # ---- access
    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (j.creation_time, j.job_id))

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def _save(self, job: Job) -> None:
        self.backend.jobs_save(job.to_doc())

    # ---- changes (blocking: DB and file writes; call from worker threads)
    def create(self, params: TapParams, *, owner: str | None = None) -> Job:
        """A new PENDING job from the creation request (validated like a sync query)."""
        if len(self._jobs) >= 10_000:
            raise UWSError("too many jobs; delete some first")
        values = {k: v for k, v in params.values.items() if k not in _CONTROL and k != "upload"}
        job_id = secrets.token_urlsafe(16)
        now = _now()
        job = Job(
            job_id=job_id,
            phase="PENDING",
            creation_time=now,
            destruction_time=now + _dt.timedelta(seconds=self.settings.job_destruction_s),
            execution_duration_s=int(self.settings.async_timeout_s),
            parameters=values,
            uploads=list(params.uploads),
            run_id=params.get("runid"),
            owner=owner,
        )
        self._apply_controls(job, params)
        if params.files:
            size = sum(len(data) for data in params.files.values())
            self._reserve(job_id, size, "the inline uploads")
            try:
                folder = self.folder(job_id) / "uploads"
                folder.mkdir(parents=True, exist_ok=True)
                for name, data in params.files.items():
                    safe = _safe_part(name)
                    atomic_write_bytes(folder / safe, data)
                    job.files.append(name)
            except BaseException:
                self._release(job_id)
                shutil.rmtree(self.folder(job_id), ignore_errors=True)
                raise
        with self._lock:
            self._jobs[job_id] = job
        self._save(job)
        return job

    def _apply_controls(self, job: Job, params: TapParams) -> None:
        if params.get("executionduration") is not None:
            self.set_execution_duration(job, params.get("executionduration"), save=False)
        if params.get("destruction") is not None:
            self.set_destruction(job, params.get("destruction"), save=False)

    def update_parameters(self, job_id: str, params: TapParams) -> Job:
        """Change query parameters (PENDING jobs only)."""
        job = self.get(job_id)
        values = {k: v for k, v in params.values.items() if k not in _CONTROL and k != "upload"}
        if values or params.uploads or params.files:
            if job.phase != "PENDING":
                raise UWSError(f"parameters can only change while PENDING (job is {job.phase})")
            job.parameters.update(values)
            if params.uploads:
                job.uploads.extend(params.uploads)
            if params.files:
                folder = self.folder(job_id) / "uploads"
                replaced = sum(
                    (folder / _safe_part(name)).stat().st_size
                    for name in params.files
                    if (folder / _safe_part(name)).is_file()
                )
                added = sum(len(data) for data in params.files.values())
                self._reserve(job_id, added - replaced, "the inline uploads")
                folder.mkdir(parents=True, exist_ok=True)
                for name, data in params.files.items():
                    atomic_write_bytes(folder / _safe_part(name), data)
                    if name not in job.files:
                        job.files.append(name)
        if params.get("runid") is not None:
            job.run_id = params.get("runid")
        self._apply_controls(job, params)
        self._save(job)
        return job

    def set_execution_duration(self, job: Job, value: str, *, save: bool = True) -> Job:
        try:
            number = float(value)
        except ValueError:
            raise UWSError(f"EXECUTIONDURATION must be seconds, got {value!r}") from None
        if not math.isfinite(number):
            raise UWSError(f"EXECUTIONDURATION must be a finite number of seconds, got {value!r}")
        seconds = int(number)
        if job.phase not in ("PENDING",):
            raise UWSError(f"execution duration can only change while PENDING ({job.phase})")
        hard = int(self.settings.async_timeout_hard_s)
        job.execution_duration_s = hard if seconds <= 0 else min(seconds, hard)
        if save:
            self._save(job)
        return job

    def set_destruction(self, job: Job, value: str, *, save: bool = True) -> Job:
        wanted = _parse_time(value, "DESTRUCTION")
        latest = _now() + _dt.timedelta(seconds=self.settings.job_destruction_s)
        job.destruction_time = min(wanted, latest).replace(microsecond=0)
        if save:
            self._save(job)
        return job

    def run(self, job_id: str) -> Job:
        """PHASE=RUN: queue a PENDING job (no-op in other phases)."""
        with self._lock:
            job = self.get(job_id)
            if job.phase != "PENDING":
                return job
            job.phase = "QUEUED"
        self._save(job)
        self._pool.submit(self._execute, job_id)
        return job

    def abort(self, job_id: str) -> Job:
        """PHASE=ABORT: stop a queued or running job (no-op in final phases)."""
        with self._lock:
            job = self.get(job_id)
            if job.phase in FINAL_PHASES:
                return job
            job.phase = "ABORTED"
            job.end_time = _now()
            handle = self._handles.get(job_id)
        if handle is not None:
            handle.cancel()
        self._save(job)
        return job

    def delete(self, job_id: str) -> None:
        """Abort if needed, then forget the job and its files."""
        with self._lock:
            job = self.get(job_id)
            handle = self._handles.get(job_id)
            del self._jobs[job_id]
        if handle is not None:
            handle.cancel()
        job.phase = "ABORTED"
        self.backend.jobs_delete(job_id)
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        self._release(job_id)

    # ---- execution (worker thread)
    def _execute(self, job_id: str) -> None:
        handle = QueryHandle()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.phase != "QUEUED" or self._closed:
                return
            job.phase = "EXECUTING"
            job.start_time = _now()
            self._handles[job_id] = handle
        self._save(job)
        try:
            params = TapParams(values=dict(job.parameters), uploads=list(job.uploads))
            query, fmt, maxrec = query_request(params, self.settings)
            files = {
                name: (self.folder(job_id) / "uploads" / _safe_part(name)).read_bytes()
                for name in job.files
            }
            # One clock for reading the uploads and running the query.
            deadline = Deadline(
                float(job.execution_duration_s),
                error=QueryTimeout,
                aborted=lambda: handle.cancelled,
            )
            uploads = resolve_uploads(
                params,
                limit_bytes=self.settings.upload_limit_bytes,
                allow_private=self.settings.upload_allow_private_urls,
                loader=files,
                deadline=deadline,
            )
            body, result = run_adql_serialised(
                self.state,
                query,
                fmt,
                maxrec=maxrec,
                uploads=uploads,
                handle=handle,
                deadline=deadline,
            )
            path = self.folder(job_id) / f"result.{fmt.extension}"
            # Counted before writing: a result over the limits leaves nothing on disk.
            self._reserve(job_id, len(body), "the result")
            try:
                atomic_write_bytes(path, body)
            except BaseException:
                self._release(job_id, len(body))
                raise
            with self._lock:
                if job.phase != "EXECUTING":  # aborted or deleted meanwhile: drop the result
                    path.unlink(missing_ok=True)
                    self._release(job_id, len(body))
                    if job_id not in self._jobs:
                        shutil.rmtree(self.folder(job_id), ignore_errors=True)
                        self._release(job_id)
                    return
                job.result_file = path.name
                job.result_mime = fmt.mime
                job.result_rows = result.table.num_rows
                job.result_size = len(body)
                job.overflow = result.overflow
                job.phase = "COMPLETED"
                job.end_time = _now()
        except Exception as exc:  # every failure ends the job in ERROR with its message
            with self._lock:
                if job.phase != "EXECUTING":
                    return
                if self._closed:
                    return  # stopped by a shutdown: stays EXECUTING, re-queued at next start
                job.phase = "ERROR"
                job.end_time = _now()
                if isinstance(exc, SkysenseError):
                    job.error = str(exc)
                else:
                    log.exception("async job %s failed", job_id)
                    job.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._handles.pop(job_id, None)
        if job_id in self._jobs:
            self._save(job)


def _folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _safe_part(name: str) -> str:
    """File name of an inline upload part (never a path)."""
    import hashlib

    return "part-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:24] + ".vot"


# -------------------------------------------------------------------------------------------
# XML


def _el(name: str, value: str | None, indent: str = "  ") -> str:
    if value is None:
        return f'{indent}<uws:{name} xsi:nil="true"/>\n'
    return f"{indent}<uws:{name}>{escape(value)}</uws:{name}>\n"


def job_xml(job: Job, base: str) -> str:
    """The UWS 1.1 job document (element order as in the UWS schema)."""
    url = f"{base}/tap/async/{job.job_id}"
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:job {_UWS_NS} version="1.1">\n']
    out.append(_el("jobId", job.job_id))
    if job.run_id is not None:
        out.append(_el("runId", job.run_id))
    out.append(_el("ownerId", job.owner))
    out.append(_el("phase", job.phase))
    out.append(_el("quote", None))
    out.append(_el("creationTime", _iso(job.creation_time)))
    out.append(_el("startTime", _iso(job.start_time)))
    out.append(_el("endTime", _iso(job.end_time)))
    out.append(_el("executionDuration", str(job.execution_duration_s)))
    out.append(_el("destruction", _iso(job.destruction_time)))
    out.append("  <uws:parameters>\n")
    params = dict(job.parameters)
    if job.uploads:
        params["upload"] = ";".join(job.uploads)
    for name, value in params.items():
        out.append(f"    <uws:parameter id={quoteattr(name)}>{escape(value)}</uws:parameter>\n")
    out.append("  </uws:parameters>\n")
    out.append("  <uws:results>\n")
    if job.phase == "COMPLETED" and job.result_file:
        out.append(
            f'    <uws:result id="result" xlink:type="simple" '
            f"xlink:href={quoteattr(url + '/results/result')} "
            f'size="{job.result_size or 0}" mime-type={quoteattr(job.result_mime or "")}/>\n'
        )
    out.append("  </uws:results>\n")
    if job.phase == "ERROR":
        out.append('  <uws:errorSummary type="fatal" hasDetail="true">\n')
        out.append(f"    <uws:message>{escape(job.error or 'error')}</uws:message>\n")
        out.append("  </uws:errorSummary>\n")
    out.append("</uws:job>\n")
    return "".join(out)


def jobs_xml(jobs: list[Job], base: str) -> str:
    """The UWS 1.1 job list."""
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:jobs {_UWS_NS} version="1.1">\n']
    for job in jobs:
        href = quoteattr(f"{base}/tap/async/{job.job_id}")
        out.append(
            f'  <uws:jobref id={quoteattr(job.job_id)} xlink:type="simple" xlink:href={href}>\n'
        )
        out.append(_el("phase", job.phase, "    "))
        if job.run_id is not None:
            out.append(_el("runId", job.run_id, "    "))
        out.append(_el("ownerId", job.owner, "    "))
        out.append(_el("creationTime", _iso(job.creation_time), "    "))
        out.append("  </uws:jobref>\n")
    out.append("</uws:jobs>\n")
    return "".join(out)


# -------------------------------------------------------------------------------------------
# HTTP handlers


def _base(request: Request) -> str:
    override = request.app.state.settings.base_url
    return (override or str(request.base_url)).rstrip("/")


def _store(request: Request) -> JobStore:
    return request.app.state.jobs


def _xml(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="text/xml")


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _job_url(request: Request, job_id: str) -> str:
    return f"{_base(request)}/tap/async/{job_id}"


async def _params(request: Request) -> TapParams:
    settings = request.app.state.settings
    return await read_params(request, upload_limit_bytes=settings.upload_limit_bytes)


async def jobs_endpoint(request: Request) -> Response:
    """GET: job list (PHASE, AFTER, LAST filters); POST: create a job (303 to it)."""
    store = _store(request)
    if request.method == "POST":
        params = await _params(request)
        job = await anyio.to_thread.run_sync(store.create, params)
        if (params.get("phase") or "").upper() == "RUN":
            await anyio.to_thread.run_sync(store.run, job.job_id)
        return _see_other(_job_url(request, job.job_id))
    phases = [p.upper() for k, p in request.query_params.multi_items() if k.lower() == "phase"]
    for p in phases:
        if p not in PHASES:
            raise UWSError(f"unknown PHASE {p!r}")
    after = last = None
    for key, value in request.query_params.multi_items():
        if key.lower() == "after":
            after = _parse_time(value, "AFTER")
        elif key.lower() == "last":
            try:
                last = int(value)
            except ValueError:
                raise UWSError(f"LAST must be a positive integer, got {value!r}") from None
            if last <= 0:
                raise UWSError(f"LAST must be a positive integer, got {value!r}")
    jobs = store.list()
    if phases:
        jobs = [j for j in jobs if j.phase in phases]
    else:
        jobs = [j for j in jobs if j.phase != "ARCHIVED"]
    if after is not None:
        jobs = [j for j in jobs if j.creation_time > after]
    if last is not None:
        jobs = sorted(jobs, key=lambda j: j.creation_time, reverse=True)[:last]
    return _xml(jobs_xml(jobs, _base(request)))


async def job_endpoint(request: Request) -> Response:
    """GET: job document (WAIT blocking); POST: PHASE/ACTION/parameters; DELETE."""
    store = _store(request)
    job_id = request.path_params["job_id"]
    job = store.get(job_id)
    if request.method == "DELETE":
        await anyio.to_thread.run_sync(store.delete, job_id)
        return _see_other(f"{_base(request)}/tap/async")
    if request.method == "POST":
        params = await _params(request)
        action = (params.get("action") or "").upper()
        if action:
            if action != "DELETE":
                raise UWSError(f"ACTION={action!r} is not supported (use DELETE)")
            await anyio.to_thread.run_sync(store.delete, job_id)
            return _see_other(f"{_base(request)}/tap/async")
        await anyio.to_thread.run_sync(store.update_parameters, job_id, params)
        await _phase_change(store, job_id, params.get("phase"))
        return _see_other(_job_url(request, job_id))
    wait = _query_value(request, "wait")
    if wait is not None:
        job = await _wait(store, job, wait, _query_value(request, "phase"))
    return _xml(job_xml(job, _base(request)))


def _query_value(request: Request, name: str) -> str | None:
    for key, value in request.query_params.multi_items():
        if key.lower() == name:
            return value
    return None


async def _wait(store: JobStore, job: Job, wait: str, phase: str | None) -> Job:
    """UWS 1.1 blocking: return when the phase changes, the job ends, or after WAIT s."""
    try:
        seconds = float(wait)
    except ValueError:
        raise UWSError(f"WAIT must be a number of seconds, got {wait!r}") from None
    cap = 60.0
    seconds = cap if seconds < 0 else min(seconds, cap)
    start_phase = job.phase
    if phase is not None and phase.upper() != job.phase:
        return job
    if job.phase not in _ACTIVE:
        return job
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        try:
            current = store.get(job.job_id)
        except JobNotFound:
            return job
        if current.phase != start_phase:
            return current
    return job


async def _phase_change(store: JobStore, job_id: str, phase: str | None) -> None:
    if phase is None:
        return
    phase = phase.strip().upper()
    if phase == "RUN":
        await anyio.to_thread.run_sync(store.run, job_id)
    elif phase == "ABORT":
        await anyio.to_thread.run_sync(store.abort, job_id)
    else:
        raise UWSError(f"PHASE={phase!r}: only RUN and ABORT can be requested")


def _setting_endpoint(param: str, set_value, show, missing: str | None = None):
    """The endpoint of one job setting: GET shows it (``show(job)``); POST sets it from the
    parameter ``param`` with ``await set_value(store, job, value)`` and redirects to the job
    (``missing``: the error when the parameter is absent)."""

    async def endpoint(request: Request) -> Response:
        store = _store(request)
        job_id = request.path_params["job_id"]
        job = store.get(job_id)
        if request.method == "POST":
            params = await _params(request)
            value = params.get(param)
            if value is None:
                raise UWSError(missing or f"POST needs {param.upper()}")
            await set_value(store, job, value)
            return _see_other(_job_url(request, job_id))
        return PlainTextResponse(show(job))

    return endpoint


phase_endpoint = _setting_endpoint(
    "phase",
    lambda store, job, value: _phase_change(store, job.job_id, value),
    lambda job: job.phase,
    missing="POST to phase needs PHASE=RUN or PHASE=ABORT",
)
execution_duration_endpoint = _setting_endpoint(
    "executionduration",
    lambda store, job, value: anyio.to_thread.run_sync(store.set_execution_duration, job, value),
    lambda job: str(job.execution_duration_s),
)
destruction_endpoint = _setting_endpoint(
    "destruction",
    lambda store, job, value: anyio.to_thread.run_sync(store.set_destruction, job, value),
    lambda job: _iso(job.destruction_time),
)


async def quote_endpoint(request: Request) -> Response:
    _store(request).get(request.path_params["job_id"])
    return PlainTextResponse("")


async def owner_endpoint(request: Request) -> Response:
    job = _store(request).get(request.path_params["job_id"])
    return PlainTextResponse(job.owner or "")


async def parameters_endpoint(request: Request) -> Response:
    store = _store(request)
    job_id = request.path_params["job_id"]
    if request.method == "POST":
        params = await _params(request)
        await anyio.to_thread.run_sync(store.update_parameters, job_id, params)
        return _see_other(_job_url(request, job_id))
    job = store.get(job_id)
    params = dict(job.parameters)
    if job.uploads:
        params["upload"] = ";".join(job.uploads)
    body = "".join(
        f"  <uws:parameter id={quoteattr(k)}>{escape(v)}</uws:parameter>\n"
        for k, v in params.items()
    )
    return _xml(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:parameters {_UWS_NS}>\n{body}'
        "</uws:parameters>\n"
    )


async def results_endpoint(request: Request) -> Response:
    job = _store(request).get(request.path_params["job_id"])
    url = _job_url(request, job.job_id)
    inner = ""
    if job.phase == "COMPLETED" and job.result_file:
        inner = (
            f'  <uws:result id="result" xlink:type="simple" '
            f'xlink:href={quoteattr(url + "/results/result")} size="{job.result_size or 0}" '
            f"mime-type={quoteattr(job.result_mime or '')}/>\n"
        )
    return _xml(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:results {_UWS_NS}>\n{inner}</uws:results>\n'
    )


async def result_endpoint(request: Request) -> Response:
    store = _store(request)
    job = store.get(request.path_params["job_id"])
    if request.path_params.get("result_id", "result") != "result":
        raise JobNotFound(f"job {job.job_id} has no result {request.path_params['result_id']!r}")
    if job.phase != "COMPLETED" or not job.result_file:
        raise JobNotFound(f"job {job.job_id} has no result (phase {job.phase})")
    path = store.folder(job.job_id) / job.result_file
    return FileResponse(path, media_type=job.result_mime or "application/octet-stream")


async def error_endpoint(request: Request) -> Response:
    job = _store(request).get(request.path_params["job_id"])
    if job.phase != "ERROR":
        raise JobNotFound(f"job {job.job_id} has no error (phase {job.phase})")
    return Response(error_votable(job.error or "error"), media_type="application/x-votable+xml")


def routes() -> list:
    """Starlette routes of ``/tap/async``."""
    from starlette.routing import Route

    j = "/tap/async/{job_id}"
    return [
        Route("/tap/async", jobs_endpoint, methods=["GET", "POST"]),
        Route(j, job_endpoint, methods=["GET", "POST", "DELETE"]),
        Route(j + "/phase", phase_endpoint, methods=["GET", "POST"]),
        Route(j + "/executionduration", execution_duration_endpoint, methods=["GET", "POST"]),
        Route(j + "/destruction", destruction_endpoint, methods=["GET", "POST"]),
        Route(j + "/quote", quote_endpoint, methods=["GET"]),
        Route(j + "/owner", owner_endpoint, methods=["GET"]),
        Route(j + "/parameters", parameters_endpoint, methods=["GET", "POST"]),
        Route(j + "/results", results_endpoint, methods=["GET"]),
        Route(j + "/results/{result_id}", result_endpoint, methods=["GET"]),
        Route(j + "/error", error_endpoint, methods=["GET"]),
    ]
