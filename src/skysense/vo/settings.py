"""Configuration of the Virtual Observatory server.

One immutable :class:`Settings` object is built at the edge (CLI options, tests) and handed to
:func:`skysense.vo.app.create_app`; nothing in the server reads configuration at import time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from skysense.errors import ConfigError

__all__ = ["Settings", "is_postgres_url"]


def is_postgres_url(db: str) -> bool:
    """True when ``db`` names a PostgreSQL server rather than a DuckDB file."""
    return str(db).startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class Settings:
    """Everything the VO server needs to know.

    Parameters
    ----------
    db : str
        DuckDB database file (the default, embedded backend) or a ``postgresql://`` URL.
    workdir : str or Path, optional
        Folder for async job results and uploads. Default: ``<db>.work`` beside a DuckDB file,
        ``./skysense-vo-work`` for PostgreSQL.
    title, description : str
        Shown on the front page and in the VOSI documents.
    query_timeout_s : float
        Wall-clock limit of one synchronous query (seconds).
    async_timeout_s : float
        Default execution duration of an async job (seconds); users may lower it, never raise
        it above ``async_timeout_hard_s``.
    async_timeout_hard_s : float
        Hard limit of the execution duration of an async job (seconds).
    memory_limit_mb : int
        Memory cap of the database engine (DuckDB ``memory_limit``; PostgreSQL ``work_mem``
        per query operation is a quarter of it).
    maxrec_default, maxrec_hard : int
        Rows returned when the client gives no MAXREC, and the ceiling no MAXREC can exceed.
    upload_limit_bytes : int
        Largest accepted upload (each table, inline or by URL).
    upload_allow_private_urls : bool
        Whether UPLOAD by URL may fetch from loopback/private addresses (off by default so the
        server cannot be used to probe its own network).
    job_destruction_s : float
        Lifetime of an async job before it is destroyed (seconds).
    purge_interval_s : float
        How often jobs past their destruction time are destroyed, files included (seconds).
    async_workers : int
        Number of async jobs run at the same time.
    db_threads : int
        Threads of the database engine (DuckDB ``threads``).
    base_url : str, optional
        Public URL of the service root when behind a proxy (e.g. ``https://host/vo``); by
        default it is derived from each request.
    form_limit_bytes : int
        Largest request body of the endpoints that take no uploads (everything but
        ``/tap/sync`` and ``/tap/async``, whose limit is ``upload_limit_bytes`` plus 4 MiB of
        form fields). Enforced while the body streams in: an oversized body, announced or
        chunked, is answered 413 as soon as it crosses the limit.
    header_timeout_s : float
        Time a client has to send a request's headers, from its first byte (or from the
        connection); slower clients are disconnected.
    body_timeout_s : float
        Longest wait for the next piece of a request body; a stalled upload gets 408.
    keepalive_timeout_s : float
        An idle keep-alive connection is closed after this many seconds.
    max_connections : int
        Open connections served at the same time; beyond it requests get 503.
    spool_limit_bytes : int
        Bytes of all request bodies being received at once (held in memory and in spool
        files under ``<workdir>/spool``); requests beyond it get 503.
    spill_limit_mb : int
        Disk space DuckDB may use in ``<workdir>/spill`` for queries larger than memory
        (DuckDB ``max_temp_directory_size``).
    job_storage_limit_bytes : int
        Disk space of one async job: its inline uploads plus its result. A job whose uploads
        exceed it is refused (400); a larger result ends the job in ERROR.
    jobs_storage_limit_bytes : int
        Disk space of all async jobs together; a new job or result that would exceed it is
        refused the same way.
    max_unindexed_pairs : int
        A positional join between two tables that cannot use the sky index (HEALPix cells or
        Q3C) is refused before it runs (400, with how to rewrite it) when the tables' row
        counts multiply to more than this: such a join compares every pair.
    """

    db: str = "skysense.duckdb"
    workdir: str | Path | None = None
    title: str = "skysense Virtual Observatory"
    description: str = (
        "HELP-style survey data: multi-wavelength masterlists, reference catalogues and maps, "
        "served with TAP/ADQL, cone search and SIA."
    )
    query_timeout_s: float = 60.0
    async_timeout_s: float = 600.0
    async_timeout_hard_s: float = 3600.0
    memory_limit_mb: int = 2048
    maxrec_default: int = 100_000
    maxrec_hard: int = 2_000_000
    upload_limit_bytes: int = 50_000_000
    upload_allow_private_urls: bool = False
    job_destruction_s: float = 7 * 86400.0
    purge_interval_s: float = 60.0
    async_workers: int = 2
    db_threads: int = 2
    base_url: str | None = None
    form_limit_bytes: int = 1 << 20
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 5.0
    max_connections: int = 200
    spool_limit_bytes: int = 1_000_000_000
    spill_limit_mb: int = 4096
    job_storage_limit_bytes: int = 500_000_000
    jobs_storage_limit_bytes: int = 5_000_000_000
    max_unindexed_pairs: int = 100_000_000

    def __post_init__(self):
        if not str(self.db):
            raise ConfigError("must name a DuckDB file or a postgresql:// URL", key="db")
        positive = (
            "query_timeout_s",
            "async_timeout_s",
            "async_timeout_hard_s",
            "memory_limit_mb",
            "maxrec_default",
            "maxrec_hard",
            "upload_limit_bytes",
            "job_destruction_s",
            "purge_interval_s",
            "async_workers",
            "db_threads",
            "form_limit_bytes",
            "header_timeout_s",
            "body_timeout_s",
            "keepalive_timeout_s",
            "max_connections",
            "spool_limit_bytes",
            "spill_limit_mb",
            "job_storage_limit_bytes",
            "jobs_storage_limit_bytes",
            "max_unindexed_pairs",
        )
        for key in positive:
            value = getattr(self, key)
            if not value > 0:
                raise ConfigError(f"must be positive, got {value!r}", key=key)
        if self.maxrec_default > self.maxrec_hard:
            raise ConfigError(
                f"{self.maxrec_default} exceeds maxrec_hard={self.maxrec_hard}",
                key="maxrec_default",
            )
        if self.async_timeout_s > self.async_timeout_hard_s:
            raise ConfigError(
                f"{self.async_timeout_s} exceeds async_timeout_hard_s={self.async_timeout_hard_s}",
                key="async_timeout_s",
            )
        if self.job_storage_limit_bytes > self.jobs_storage_limit_bytes:
            raise ConfigError(
                f"{self.job_storage_limit_bytes} exceeds "
                f"jobs_storage_limit_bytes={self.jobs_storage_limit_bytes}",
                key="job_storage_limit_bytes",
            )
        if self.spool_limit_bytes < self.tap_body_limit_bytes:
            raise ConfigError(
                f"{self.spool_limit_bytes} is less than one largest TAP request "
                f"({self.tap_body_limit_bytes} bytes)",
                key="spool_limit_bytes",
            )
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"must be an http(s) URL, got {self.base_url!r}", key="base_url")

    @property
    def is_postgres(self) -> bool:
        """True for a PostgreSQL backend."""
        return is_postgres_url(self.db)

    @property
    def resolved_workdir(self) -> Path:
        """The work folder (created on demand by its users)."""
        if self.workdir is not None:
            return Path(self.workdir)
        if self.is_postgres:
            return Path.cwd() / "skysense-vo-work"
        db = Path(self.db)
        return db.with_name(db.name + ".work")

    @property
    def tap_body_limit_bytes(self) -> int:
        """Largest body of a TAP request: the uploads plus room for the form fields."""
        return self.upload_limit_bytes + 4 * (1 << 20)

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
