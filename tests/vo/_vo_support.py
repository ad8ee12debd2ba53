"""Helpers of the VO server tests: a seeded sky table, fresh databases, a live uvicorn server."""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse

import numpy as np
import pyarrow as pa

from skysense.vo.backends import open_backend
from skysense.vo.publish import publish_arrow
from skysense.vo.settings import Settings

N_SKY = 3000


def sky_table(n: int = N_SKY, seed: int = 7) -> pa.Table:
    """Sources in three groups: across RA=0/360, near the north pole, and a plain field."""
    rng = np.random.default_rng(seed)
    k = n // 3
    ra = np.concatenate(
        [
            np.mod(rng.uniform(-3, 3, k), 360.0),
            rng.uniform(0, 360, k),
            rng.uniform(148, 152, n - 2 * k),
        ]
    )
    dec = np.concatenate(
        [
            rng.uniform(-3, 3, k),
            np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(86.0)), 1.0, k))),
            rng.uniform(0, 4, n - 2 * k),
        ]
    )
    mag = rng.normal(22, 1.5, n)
    mag[rng.random(n) < 0.05] = np.nan
    kind = np.where(rng.random(n) < 0.2, "star", "galaxy")
    return pa.table(
        {
            "object_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "ra": ra,
            "dec": dec,
            "mag_r": mag,
            "kind": kind.astype(object),
            "flag": rng.random(n) < 0.5,
        }
    )


SKY_META = {
    "columns": {
        "ra": {"unit": "deg", "ucd": "pos.eq.ra;meta.main", "description": "Right ascension"},
        "dec": {"unit": "deg", "ucd": "pos.eq.dec;meta.main", "description": "Declination"},
        "mag_r": {"unit": "mag", "ucd": "phot.mag;em.opt.R", "description": "r magnitude"},
        "object_id": {"ucd": "meta.id;meta.main", "description": "object identifier"},
    }
}


@contextlib.contextmanager
def fresh_postgres(dsn: str):
    """A new, empty PostgreSQL database on the server of ``dsn`` (dropped afterwards)."""
    import psycopg

    name = f"skysense_test_{secrets.token_hex(5)}"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(dsn)
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def publish_sky(db: str, table: pa.Table) -> None:
    backend = open_backend(db)
    try:
        publish_arrow(backend, table, "demo.sky", description="seeded test sky", meta=SKY_META)
        small = pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"], "value": [0.5, 1.5, None]})
        publish_arrow(backend, small, "demo.small", description="three rows, no positions")
    finally:
        backend.close()


class ServerThread:
    """uvicorn serving an app on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


def server_settings(db: str, tmp_path, **changes) -> Settings:
    base = Settings(
        db=db,
        workdir=str(tmp_path / "work"),
        maxrec_default=1000,
        maxrec_hard=5000,
        query_timeout_s=20.0,
        upload_limit_bytes=2_000_000,
        upload_allow_private_urls=True,
        memory_limit_mb=512,
        db_threads=1,
    )
    return base.replace(**changes)


def run_taplint(stilts: str, url: str) -> str:
    proc = subprocess.run(
        [stilts, "-Djava.awt.headless=true", "taplint", f"tapurl={url}/tap", "report=EWF"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.stdout + proc.stderr


def taplint_totals(report: str) -> tuple[int, int, int]:
    match = re.search(
        r"Totals:\s*Errors:\s*(\d+);?\s*Warnings:\s*(\d+);?\s*Failures:\s*(\d+)", report
    )
    assert match, report[-3000:]
    return tuple(int(g) for g in match.groups())


def write_square_map(path, n: int, *, seed: int = 3) -> None:
    """An ``n`` x ``n`` float32 noise map with a TAN WCS at (150, 2) deg, 1 arcsec pixels."""
    from astropy.io import fits
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    w.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]
    data = np.random.default_rng(seed).normal(size=(n, n)).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, w.to_header(), name="IMAGE")]).writeto(
        path
    )
