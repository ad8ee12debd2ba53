"""UWS 1.1 async jobs: lifecycle, WAIT, errors, abort, delete, list filters, limits, and
persistence across a server restart (DuckDB and PostgreSQL)."""

from __future__ import annotations

import io
import time
import warnings
import xml.etree.ElementTree as ET

import pytest
from _vo_support import publish_sky, server_settings
from astropy.io.votable import parse
from starlette.testclient import TestClient

from skysense.vo.app import create_app
from skysense.vo.backends import open_backend

NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


@pytest.fixture
def setup(db_url, tmp_path, sky):
    publish_sky(db_url, sky)
    return server_settings(db_url, tmp_path)


def _job(client, url):
    resp = client.get(url)
    assert resp.status_code == 200, resp.text
    return ET.fromstring(resp.content)


def _create(client, query, **params):
    resp = client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": query, **params},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    return resp.headers["location"]


def _phase(doc):
    return doc.find("uws:phase", NS).text


def _wait_final(client, url, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = _job(client, url + "?WAIT=5")
        if _phase(doc) in ("COMPLETED", "ERROR", "ABORTED"):
            return doc
    raise AssertionError("job did not finish")


def test_job_lifecycle(setup):
    with TestClient(create_app(setup)) as client:
        url = _create(
            client, "SELECT TOP 7 object_id FROM demo.sky ORDER BY object_id", RUNID="run-1"
        )
        job_id = url.rsplit("/", 1)[1]
        assert len(job_id) >= 20  # secrets.token_urlsafe(16)
        doc = _job(client, url)
        assert _phase(doc) == "PENDING"
        assert doc.find("uws:jobId", NS).text == job_id
        assert doc.find("uws:runId", NS).text == "run-1"
        assert doc.find("uws:startTime", NS).get(XSI_NIL) == "true"
        params = {p.get("id"): p.text for p in doc.findall("uws:parameters/uws:parameter", NS)}
        assert params["query"].startswith("SELECT TOP 7")
        assert client.get(url + "/phase").text == "PENDING"
        assert int(client.get(url + "/executionduration").text) == int(setup.async_timeout_s)
        assert client.get(url + "/destruction").text.endswith("Z")
        assert client.get(url + "/quote").status_code == 200
        assert client.get(url + "/owner").status_code == 200

        # parameters can change while PENDING
        resp = client.post(url + "/parameters", data={"MAXREC": "3"}, follow_redirects=False)
        assert resp.status_code == 303
        resp = client.post(
            url + "/executionduration", data={"EXECUTIONDURATION": "30"}, follow_redirects=False
        )
        assert resp.status_code == 303 and client.get(url + "/executionduration").text == "30"
        resp = client.post(
            url + "/destruction",
            data={"DESTRUCTION": "2030-01-01T00:00:00Z"},
            follow_redirects=False,
        )
        assert resp.status_code == 303

        resp = client.post(url + "/phase", data={"PHASE": "RUN"}, follow_redirects=False)
        assert resp.status_code == 303
        doc = _wait_final(client, url)
        assert _phase(doc) == "COMPLETED"
        assert doc.find("uws:endTime", NS).text.endswith("Z")
        result = doc.find("uws:results/uws:result", NS)
        href = result.get("{http://www.w3.org/1999/xlink}href")
        assert href.endswith(f"/tap/async/{job_id}/results/result")
        resp = client.get(url + "/results/result")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vot = parse(io.BytesIO(resp.content))
        assert vot.resources[0].tables[0].array["object_id"].tolist() == [1, 2, 3]
        assert [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"][-1] == (
            "OVERFLOW"
        )
        # A running or finished job's parameters are frozen.
        resp = client.post(url + "/parameters", data={"MAXREC": "5"})
        assert resp.status_code == 400
        # WAIT on a finished job returns at once
        t0 = time.monotonic()
        _job(client, url + "?WAIT=20")
        assert time.monotonic() - t0 < 10
        assert client.get(url + "/results").status_code == 200
        assert client.get(url + "/error").status_code == 404


def test_error_abort_delete_and_list(setup):
    with TestClient(create_app(setup)) as client:
        bad = _create(client, "SELECT nope FROM demo.sky", PHASE="RUN")
        doc = _wait_final(client, bad)
        assert _phase(doc) == "ERROR"
        assert "nope" in doc.find("uws:errorSummary/uws:message", NS).text
        err = client.get(bad + "/error")
        assert err.status_code == 200 and b'value="ERROR"' in err.content

        pending = _create(client, "SELECT TOP 1 * FROM demo.small")
        client.post(pending + "/phase", data={"PHASE": "ABORT"})
        assert _phase(_job(client, pending)) == "ABORTED"

        done = _create(client, "SELECT TOP 1 * FROM demo.small", PHASE="RUN")
        _wait_final(client, done)

        listing = ET.fromstring(client.get("/tap/async").content)
        refs = {r.get("id"): r.find("uws:phase", NS).text for r in listing}
        assert {u.rsplit("/", 1)[1] for u in (bad, pending, done)} <= set(refs)
        only = ET.fromstring(client.get("/tap/async", params={"PHASE": "ABORTED"}).content)
        assert [r.find("uws:phase", NS).text for r in only] == ["ABORTED"]
        last = ET.fromstring(client.get("/tap/async", params={"LAST": "1"}).content)
        assert len(last) == 1
        future = ET.fromstring(
            client.get("/tap/async", params={"AFTER": "2100-01-01T00:00:00Z"}).content
        )
        assert len(future) == 0
        assert client.get("/tap/async", params={"PHASE": "BOGUS"}).status_code == 400

        resp = client.delete(done, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].endswith("/tap/async")
        assert client.get(done).status_code == 404
        resp = client.post(pending, data={"ACTION": "DELETE"}, follow_redirects=False)
        assert resp.status_code == 303
        assert client.get(pending).status_code == 404
        assert client.get("/tap/async/not-a-job").status_code == 404
        bad_phase = client.post(bad + "/phase", data={"PHASE": "SUSPEND"})
        assert bad_phase.status_code == 400


def test_jobs_survive_a_restart(setup):
    app = create_app(setup)
    with TestClient(app) as client:
        done = _create(
            client, "SELECT TOP 2 object_id FROM demo.sky ORDER BY object_id", PHASE="RUN"
        )
        _wait_final(client, done)
        pending = _create(client, "SELECT TOP 4 object_id FROM demo.sky ORDER BY object_id")
    # A job that was queued when the server stopped runs after the restart.
    backend = open_backend(setup.db)
    try:
        docs = {d["job_id"]: d for d in backend.jobs_load()}
        queued = dict(docs[pending.rsplit("/", 1)[1]], phase="QUEUED")
        backend.jobs_save(queued)
    finally:
        backend.close()
    with TestClient(create_app(setup)) as client:
        doc = _job(client, done)
        assert _phase(doc) == "COMPLETED"
        assert b"<TD>2</TD>" in client.get(done + "/results/result").content
        doc = _wait_final(client, pending)
        assert _phase(doc) == "COMPLETED"


def test_expired_jobs_are_destroyed(setup):
    with TestClient(create_app(setup.replace(job_destruction_s=1.0))) as client:
        url = _create(client, "SELECT TOP 1 * FROM demo.small")
        time.sleep(1.2)
        n = client.app.state.jobs.purge_expired()
        assert n == 1 and client.get(url).status_code == 404


def test_running_job_is_requeued_after_a_shutdown(setup):
    # Four-way: DuckDB counts a three-way cross join of this table in about the 3 s limit.
    slow = "SELECT COUNT(*) AS n FROM demo.sky AS a, demo.sky AS b, demo.sky AS c, demo.sky AS d"
    with TestClient(create_app(setup)) as client:
        url = _create(client, slow, EXECUTIONDURATION="3", PHASE="RUN")
        deadline = time.monotonic() + 20
        while _phase(_job(client, url)) != "EXECUTING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _phase(_job(client, url)) == "EXECUTING"
    # The shutdown interrupted it without marking it failed ...
    backend = open_backend(setup.db)
    try:
        phase = {d["job_id"]: d["phase"] for d in backend.jobs_load()}[url.rsplit("/", 1)[1]]
    finally:
        backend.close()
    assert phase == "EXECUTING"
    # ... so the restarted server runs it again (here it then hits its 3 s limit).
    with TestClient(create_app(setup)) as client:
        doc = _wait_final(client, url)
        assert _phase(doc) == "ERROR"
        assert "time limit of 3 s" in doc.find("uws:errorSummary/uws:message", NS).text


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_non_finite_execution_duration_is_a_400(setup, value):
    with TestClient(create_app(setup)) as client:
        resp = client.post(
            "/tap/async",
            data={
                "LANG": "ADQL",
                "QUERY": "SELECT TOP 1 ra FROM demo.sky",
                "EXECUTIONDURATION": value,
            },
            follow_redirects=False,
        )
        assert resp.status_code == 400
        assert b"finite" in resp.content
        url = _create(client, "SELECT TOP 1 ra FROM demo.sky")
        resp = client.post(
            url + "/executionduration", data={"EXECUTIONDURATION": value}, follow_redirects=False
        )
        assert resp.status_code == 400
        assert client.get(url + "/executionduration").text == str(int(setup.async_timeout_s))
