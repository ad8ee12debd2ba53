"""``vo serve`` and ``vo demo`` hand their options to serve_settings (no server started)."""

from __future__ import annotations

from skysense.cli.__main__ import main


def _served(monkeypatch) -> list:
    import skysense.vo.serve as serve

    seen = []
    monkeypatch.setattr(serve, "serve_database", lambda s, host, port: seen.append((s, host, port)))
    return seen


def test_serve_passes_the_limits(tmp_path, monkeypatch):
    seen = _served(monkeypatch)
    db = tmp_path / "v.duckdb"
    db.write_bytes(b"")
    argv = [
        "vo",
        "serve",
        "--db",
        str(db),
        "--port",
        "8123",
        "--timeout",
        "7",
        "--maxrec",
        "9",
        "--upload-limit-mb",
        "3",
        "--title",
        "T",
    ]
    assert main(argv) == 0
    ((s, host, port),) = seen
    assert (host, port, s.db, s.title) == ("127.0.0.1", 8123, str(db), "T")
    assert (s.query_timeout_s, s.maxrec_default, s.upload_limit_bytes) == (7.0, 9, 3_000_000)


def test_demo_serves_with_its_title_unless_one_is_given(tmp_path, monkeypatch):
    import skysense.pipeline.demo as demo

    seen = _served(monkeypatch)
    monkeypatch.setattr(demo, "is_demo_built", lambda workdir: True)
    monkeypatch.setattr(demo, "build_demo", lambda workdir, **kw: (tmp_path / "d.duckdb", False))
    assert main(["vo", "demo", "--workdir", str(tmp_path), "--maxrec", "5"]) == 0
    assert main(["vo", "demo", "--workdir", str(tmp_path), "--title", "Mine"]) == 0
    (first, _, _), (second, _, _) = seen
    base = demo.demo_settings(tmp_path)
    assert first.title == base.title and first.description == base.description
    assert first.maxrec_default == 5 and first.db == base.db
    assert second.title == "Mine"
