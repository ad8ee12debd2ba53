"""The user guide cannot go stale: it builds strictly, its CLI reference matches the parser, and
every tutorial runs as written.

Tutorials are executed the way a reader would type them: each ```bash block as a script, each
``$ command`` of a ```console block (``>`` or trailing ``\\`` continue a command; the lines after
it are its shown output), each ```python block with ``python`` (``>>>`` blocks with doctest).
A block whose first line is ``# NAME.ext`` is a file the reader saves (``merge.yaml``,
``make_scene.py``); it is written, not run. All of a tutorial's steps run in one bash process, so
``cd`` and ``export`` carry over. ``SKYSENSE_TUTORIAL_DIR`` points the tutorials at a fresh
temporary directory (they default to ``/tmp/skysense-tutorial``); the chained tutorials
(catalog -> vo -> xid -> photoz) share one, the others get their own.

HTML comments in the Markdown, invisible on the page, steer a block (they apply to the next
fenced block): ``<!-- docs-test: skip: REASON -->`` does not run it (a server in the
foreground), ``<!-- docs-test: background -->`` starts its one command in the background and
waits for its ``--port`` (or the port after ``background:``), ``<!-- docs-test: expect: TEXT -->`` requires TEXT in the output of its commands and
``<!-- docs-test: check -->`` requires every shown output line (except ``...``) in its output
(both compared with runs of white space made one space, and numbers shown to 10 or more
significant digits compared to a relative 1e-9, since BLAS builds differ in the last digits).
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# as in conftest.py: the reference data beside the checkout, or $SKYSENSE_SHARED_DATA
SHARED_DATA = Path(os.environ.get("SKYSENSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
DOCS = ROOT / "docs"
TUTORIALS = DOCS / "tutorials"
# Order matters: each of these uses the files of the ones before it.
CHAIN = ["catalog", "vo", "xid", "photoz"]
AREAS = ["catalog", "vo", "xid", "photoz", "landuse", "astrocast", "sim", "pipeline", "sed"]
TUTORIAL_TIMEOUT_S = 1200

_FENCE = re.compile(r"^```([\w-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*([\w-]+)\s*(?::\s*(.*?))?\s*-->\s*$")
_FILE_HEADER = re.compile(r"^#\s+([\w./-]+\.\w+)\s*$")
_PORT = re.compile(r"--port[ =](\d+)")


# --------------------------------------------------------------------------------------------
# Parsing tutorials


@dataclass
class Block:
    """One fenced code block of a Markdown page."""

    lang: str
    text: str
    number: int  # 1-based among the page's fenced blocks
    line: int  # 1-based line of the opening fence
    directives: list[tuple[str, str]] = field(default_factory=list)

    def directive(self, name: str) -> list[str]:
        return [arg for key, arg in self.directives if key == name]


@dataclass
class Step:
    """One thing to run: a command (or script) and what its output must contain."""

    block: Block
    command: str  # shown in failure messages
    script: str  # bash text that runs it
    shown: list[str] = field(default_factory=list)  # output lines printed on the page
    background: bool = False


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the ``docs-test`` directives before each."""
    blocks: list[Block] = []
    pending: list[tuple[str, str]] = []
    lines = text.splitlines()
    i, number = 0, 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].strip())
        if m:
            pending.append((m.group(1), m.group(2) or ""))
            i += 1
            continue
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        number += 1
        blocks.append(Block(m.group(1), "\n".join(body), number, start + 1, pending))
        pending = []
        i += 1
    return blocks


def _console_commands(text: str) -> list[tuple[str, list[str]]]:
    """``$ cmd`` lines (with continuations) of a console block, each with its shown output."""
    out: list[tuple[list[str], list[str]]] = []
    continuing = False
    for line in text.splitlines():
        if line.startswith("$ "):
            out.append(([line[2:]], []))
            continuing = line.rstrip().endswith("\\")
        elif out and (continuing or line.startswith("> ") or line == ">"):
            out[-1][0].append(line[2:] if line.startswith(">") else line)
            continuing = line.rstrip().endswith("\\")
        elif out:
            out[-1][1].append(line)
            continuing = False
    return [("\n".join(cmd), shown) for cmd, shown in out]


def _heredoc(path: str, body: str) -> str:
    tag = "SKYSENSE_DOCS_EOF"
    assert tag not in body
    return f"cat > {path} <<'{tag}'\n{body}\n{tag}"


def tutorial_steps(path: Path) -> list[Step]:
    """What to run for one tutorial page, in order."""
    steps: list[Step] = []
    for block in parse_blocks(path.read_text()):
        if block.directive("skip"):
            continue
        first = block.text.splitlines()[0] if block.text else ""
        saved = _FILE_HEADER.match(first)
        if saved and block.lang not in ("bash", "console", "sh"):
            steps.append(
                Step(block, f"save {saved.group(1)}", _heredoc(saved.group(1), block.text))
            )
        elif block.lang in ("bash", "sh"):
            steps.append(Step(block, block.text, block.text))
        elif block.lang == "console":
            for command, shown in _console_commands(block.text):
                steps.append(Step(block, command, command, shown))
        elif block.lang in ("python", "pycon") and ">>>" in block.text:
            name = f'"$RUN/block_{block.number}.txt"'  # kept out of the reader's directory
            script = _heredoc(name, block.text) + f"\npython -m doctest -o ELLIPSIS {name}"
            steps.append(Step(block, f"doctest of block {block.number}", script))
        elif block.lang == "python":
            name = f'"$RUN/block_{block.number}.py"'
            script = _heredoc(name, block.text) + f"\npython {name}"
            steps.append(Step(block, f"python block {block.number}", script))
        else:
            continue
        if block.directive("background"):
            steps[-1].background = True
    return steps


# --------------------------------------------------------------------------------------------
# Running tutorials

# Wait until the background command listens on its port (bash's /dev/tcp: no extra process),
# or fail at once if it exits first.
_WAIT_FOR_PORT = """\
bg_pid=$!
for _ in $(seq 1200); do
  (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break
  if ! kill -0 $bg_pid 2>/dev/null; then
    printf "%s" "background command exited before listening on port {port}" > "$RUN/failed"
    exit 1
  fi
  sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null || {{
  printf "%s" "background command did not listen on port {port} within 120 s" > "$RUN/failed"
  exit 1
}}"""


def _script(steps: list[Step], run: Path) -> str:
    # One bash process for the whole tutorial, so cd/export carry over; each step's output goes
    # to its own file, and the first failing command is recorded for the message.
    parts = [
        "set -e",
        f"RUN={run}",
        """trap 'printf "%s" "$BASH_COMMAND" > "$RUN/failed"' ERR""",
        """trap 'for p in $(cat "$RUN/bg" 2>/dev/null); do kill $p 2>/dev/null || true; done' EXIT""",
    ]
    for i, step in enumerate(steps):
        parts.append(f'echo {i} > "$RUN/step"')
        if step.background:
            found = _PORT.search(step.script)
            port = step.block.directive("background")[0] or (found and found.group(1))
            assert port, f"background block {step.block.number} names no --port"
            command = step.script.strip().removesuffix("&").strip()  # the page may show `&`
            parts.append(f'{command} > "$RUN/out_{i}" 2>&1 &')
            parts.append('echo $! >> "$RUN/bg"')
            parts.append(_WAIT_FOR_PORT.format(port=port))
        else:
            parts.append(f'{{\n{step.script}\n}} > "$RUN/out_{i}" 2>&1')
    parts.append('echo done > "$RUN/step"')
    return "\n".join(parts) + "\n"


def _env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("SKYSENSE_VO_DB", "VIRTUAL_ENV_PROMPT"):
        env.pop(var, None)
    env.update(
        SKYSENSE_TUTORIAL_DIR=str(workdir),
        SKYSENSE_SHARED_DATA=str(SHARED_DATA),
        SKYSENSE_PROGRESS="0",
        MPLBACKEND="Agg",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_tutorial(name: str, workdir: Path, run: Path) -> None:
    """Run every step of ``docs/tutorials/NAME.md`` (see :func:`run_page`)."""
    run_page(TUTORIALS / f"{name}.md", workdir, run)


def run_page(path: Path, workdir: Path, run: Path) -> None:
    """Run every step of the Markdown page ``path`` in one shell, starting in the checkout.

    Raises
    ------
    AssertionError
        Naming the tutorial, the block number and line, and the command, when a command exits
        non-zero or its output lacks what the page says it prints.
    """
    # named as in docs/, e.g. tutorials/vo.md (a test's fake page: relative to its folder)
    inside = path.is_relative_to(DOCS)
    name = path.relative_to(DOCS if inside else path.parent.parent).as_posix()
    steps = tutorial_steps(path)
    run.mkdir(parents=True, exist_ok=True)
    script = run / "tutorial.sh"
    script.write_text(_script(steps, run))
    proc = subprocess.Popen(
        ["bash", str(script)], cwd=ROOT, env=_env(workdir), start_new_session=True
    )
    try:
        rc = proc.wait(timeout=TUTORIAL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        # Whatever the outcome, nothing the tutorial started (a server) may outlive it.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
    where = (run / "step").read_text().strip() if (run / "step").exists() else "0"
    if rc != 0 or where != "done":
        i = int(where) if where.isdigit() else 0
        step = steps[i]
        failed = (run / "failed").read_text() if (run / "failed").exists() else step.command
        out = (run / f"out_{i}").read_text() if (run / f"out_{i}").exists() else ""
        tail = "\n".join(out.splitlines()[-30:])
        status = "timed out" if rc is None else f"exit status {rc}"
        pytest.fail(
            f"docs/{name} block {step.block.number} (line {step.block.line}): "
            f"{status} from command: {failed.strip()}\n--- its output ---\n{tail}",
            pytrace=False,
        )
    # `check`: each command prints the lines shown under it; `expect`: the block's commands
    # together print TEXT. White space is compared loosely: `ls` prints columns on a terminal.
    outputs: dict[int, str] = {}
    for i, step in enumerate(steps):
        out = (run / f"out_{i}").read_text()
        outputs[step.block.number] = outputs.get(step.block.number, "") + out
        if step.block.directive("check"):
            shown = [s for s in step.shown if s.strip() and s.strip() != "..."]
            _require(name, step, shown, out)
    for step in steps:
        _require(name, step, step.block.directive("expect"), outputs[step.block.number])


# A number printed at full precision (10 or more significant digits) differs in its last digits
# between BLAS builds and CPUs; such a number on the page matches any printed within _FULL_RTOL.
_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_FULL = re.compile(r"(?<![\w.])" + _NUMBER + r"(?![\w.])")
_FULL_RTOL = 1e-9


def _significant_digits(number: str) -> int:
    mantissa = re.split("[eE]", number)[0].lstrip("+-").replace(".", "").lstrip("0")
    return len(mantissa)


def _shows(text: str, flat: str) -> bool:
    """Whether ``flat`` contains ``text``, full-precision numbers compared to ``_FULL_RTOL``."""
    if text in flat:
        return True
    parts, numbers, last = [], [], 0
    for m in _FULL.finditer(text):
        if "." in m.group() and _significant_digits(m.group()) >= 10:
            parts.append(re.escape(text[last : m.start()]))
            parts.append(f"({_NUMBER})")
            numbers.append(float(m.group()))
            last = m.end()
    if not numbers:
        return False
    pattern = re.compile("".join(parts) + re.escape(text[last:]))
    m = pattern.search(flat)
    while m:  # every match, overlapping ones included, until one is within tolerance
        got = (float(g) for g in m.groups())
        if all(abs(g - w) <= _FULL_RTOL * abs(w) for g, w in zip(got, numbers, strict=True)):
            return True
        m = pattern.search(flat, m.start() + 1)
    return False


def _require(name: str, step: Step, wanted: list[str], out: str) -> None:
    flat = " ".join(out.split())
    for text in wanted:
        if not _shows(" ".join(text.split()), flat):
            pytest.fail(
                f"docs/{name} block {step.block.number} (line {step.block.line}):"
                f" the output of `{step.command.splitlines()[0]}` lacks {text!r} shown on"
                f" the page; it printed:\n{out[-3000:]}",
                pytrace=False,
            )


def _tutorials() -> list[str]:
    names = sorted(p.stem for p in TUTORIALS.glob("*.md"))
    return [n for n in CHAIN if n in names] + [n for n in names if n not in CHAIN]


@pytest.fixture(scope="module")
def chain_state(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shared working directory of the chained tutorials and which of them ran."""
    return {"dir": tmp_path_factory.mktemp("tutorial-chain"), "done": {}}


def _needs_shared_data(name: str) -> bool:
    return "SKYSENSE_SHARED_DATA" in (TUTORIALS / f"{name}.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", _tutorials())
def test_tutorial_runs_as_written(name: str, chain_state: dict, tmp_path: Path) -> None:
    """Every command of the tutorial exits 0 and prints what the page says it prints."""
    if _needs_shared_data(name) and not SHARED_DATA.is_dir():
        pytest.skip(f"tutorial {name} uses the reference data; {SHARED_DATA} is absent")
    if name not in CHAIN:
        workdir = tmp_path / "work"
        workdir.mkdir()
        run_tutorial(name, workdir, tmp_path / "run")
        return
    _run_chain_before(CHAIN.index(name), name, chain_state, tmp_path)
    done = chain_state["done"]
    try:
        run_tutorial(name, chain_state["dir"], tmp_path / "run")
        done[name] = True
    except BaseException:
        done[name] = False
        raise


def _run_chain_before(stop: int, name: str, chain_state: dict, tmp_path: Path) -> None:
    # Run alone (-k), a chained page first runs the tutorials whose files it uses.
    done = chain_state["done"]
    for earlier in CHAIN[:stop]:
        if earlier not in done:
            try:
                run_tutorial(earlier, chain_state["dir"], tmp_path / f"run-{earlier}")
                done[earlier] = True
            except BaseException:
                done[earlier] = False
                raise
        if not done[earlier]:
            pytest.fail(f"{name} needs the files of tutorial {earlier}, which failed")


@pytest.mark.slow
def test_dask_howto_runs_as_written(chain_state: dict, tmp_path: Path) -> None:
    """docs/dask.md starts a scheduler and a worker, runs two verbs on them, same results."""
    _run_chain_before(CHAIN.index("xid") + 1, "dask.md", chain_state, tmp_path)
    run_page(DOCS / "dask.md", chain_state["dir"], tmp_path / "run")


# The URL scripts/start-postgres prints, which docs/postgres.md uses.
_PAGE_PG = "postgresql://postgres@127.0.0.1:55432/skysense"


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_howto_runs_as_written(
    postgres_dsn: str, chain_state: dict, tmp_path: Path
) -> None:
    """docs/postgres.md publishes the catalog tutorial's masterlist to PostgreSQL and serves it."""
    if postgres_dsn != _PAGE_PG:
        pytest.skip(
            f"docs/postgres.md uses {_PAGE_PG} (scripts/start-postgres), not {postgres_dsn}"
        )
    _run_chain_before(1, "postgres.md", chain_state, tmp_path)
    run_page(DOCS / "postgres.md", chain_state["dir"], tmp_path / "run")


# --------------------------------------------------------------------------------------------
# The runner itself, on a small page (so its failures are known to be reported)


_PAGE = """\
Intro.

```bash
export GREETING=hello
cd "$SKYSENSE_TUTORIAL_DIR" && mkdir -p sub && cd sub
```

<!-- docs-test: check -->
```console
$ echo $GREETING \\
>   world
hello world
$ for x in a b; do
>   echo $x
> done
a
...
b
$ pwd | sed 's#.*/##'
sub
```

```yaml
# conf.yaml
key: 1
```

```python
import pathlib
print(pathlib.Path("conf.yaml").read_text().strip())
```

```python
>>> 1 + 1
2
```

<!-- docs-test: skip: would block -->
```bash
sleep 1000
```
"""


def _fake_tutorial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str) -> str:
    tutorials = tmp_path / "tutorials"
    tutorials.mkdir(exist_ok=True)
    (tutorials / "fake.md").write_text(page)
    monkeypatch.setattr(sys.modules[__name__], "TUTORIALS", tutorials)
    (tmp_path / "work").mkdir(exist_ok=True)
    return "fake"


def test_parser_splits_console_commands_and_output() -> None:
    blocks = parse_blocks(_PAGE)
    assert [b.lang for b in blocks] == ["bash", "console", "yaml", "python", "python", "bash"]
    assert blocks[1].directive("check") == [""]
    assert blocks[5].directive("skip") == ["would block"]
    cmds = _console_commands(blocks[1].text)
    assert [c for c, _ in cmds] == [
        "echo $GREETING \\\n  world",
        "for x in a b; do\n  echo $x\ndone",
        "pwd | sed 's#.*/##'",
    ]
    assert cmds[1][1] == ["a", "...", "b"]


def test_runner_runs_a_page_in_one_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _fake_tutorial(tmp_path, monkeypatch, _PAGE)
    # cd carried over from block 1, so conf.yaml was saved in work/sub and the python block
    # (run there) read it back.
    run_tutorial(name, tmp_path / "work", tmp_path / "run")
    assert (tmp_path / "work" / "sub" / "conf.yaml").read_text() == "# conf.yaml\nkey: 1\n"
    outs = sorted((tmp_path / "run").glob("out_*"), key=lambda p: int(p.name[4:]))
    assert [o.read_text() for o in outs[-2:]] == ["# conf.yaml\nkey: 1\n", ""]


def test_runner_names_block_and_command_of_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "```bash\ntrue\n```\n\ntext\n\n```console\n$ echo ok\nok\n$ ls /no/such/dir\n```\n"
    name = _fake_tutorial(tmp_path, monkeypatch, page)
    with pytest.raises(pytest.fail.Exception) as err:
        run_tutorial(name, tmp_path / "work", tmp_path / "run")
    msg = str(err.value)
    assert "docs/tutorials/fake.md block 2 (line 7)" in msg
    assert "ls /no/such/dir" in msg
    assert "No such file" in msg


def test_runner_checks_shown_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = "<!-- docs-test: check -->\n```console\n$ echo 41\n42\n```\n"
    name = _fake_tutorial(tmp_path, monkeypatch, page)
    with pytest.raises(pytest.fail.Exception, match="lacks '42'"):
        run_tutorial(name, tmp_path / "work", tmp_path / "run")


def test_shown_numbers_at_full_precision_match_to_a_relative_tolerance() -> None:
    line = "Baringo,Turkana,2,2.7709498768052425,0.0633013054640109,0.93,False"
    # the last digits of full-precision numbers may differ
    assert _shows(line, "x Baringo,Turkana,2,2.7709498768051186,0.06330130546401866,0.93,False")
    # but not beyond 1e-9, and short numbers, words and integers are compared exactly
    assert not _shows(line, "Baringo,Turkana,2,2.7709498,0.0633013054640109,0.93,False")
    assert not _shows(line, "Baringo,Turkana,2,2.7709498768052425,0.0633013054640109,0.94,False")
    assert not _shows(line, "Baringo,Turkana,3,2.7709498768052425,0.0633013054640109,0.93,False")
    assert not _shows(line, "Baringo,Turkana,2,2.7709498768052425,0.0633013054640109,0.93,True")
    assert _shows("flux 1.23456789012e-05 mJy", "the flux 1.234567890119e-05 mJy")
    assert not _shows("flux 1.23456789012e-05 mJy", "the flux 1.23456789012e-04 mJy")


def test_runner_stops_background_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = (
        '```bash\ncd "$SKYSENSE_TUTORIAL_DIR"\n```\n\n'
        f"<!-- docs-test: background: {port} -->\n```bash\n"
        f"python -m http.server --bind 127.0.0.1 {port}\n```\n\n"
        "<!-- docs-test: expect: status 200 -->\n```python\nimport urllib.request\n"
        f"print('status', urllib.request.urlopen('http://127.0.0.1:{port}/').status)\n```\n"
    )
    name = _fake_tutorial(tmp_path, monkeypatch, page)
    run_tutorial(name, tmp_path / "work", tmp_path / "run")
    assert (tmp_path / "run" / "out_2").read_text() == "status 200\n"
    assert list((tmp_path / "work").iterdir()) == []  # the python block was kept out of it
    with pytest.raises(OSError):  # the server was stopped with the tutorial
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    # and a page whose expectation is not met fails, naming it
    (tmp_path / "tutorials" / "fake.md").write_text(page.replace("status 200", "status 404"))
    with pytest.raises(pytest.fail.Exception, match="lacks 'status 404'"):
        run_tutorial(name, tmp_path / "work", tmp_path / "run2")


# --------------------------------------------------------------------------------------------
# The build and the generated references


def _load_gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    """docs/cli.md is exactly what docs/gen_cli.py writes for the current parsers."""
    expected = _load_gen_cli().render()
    current = (DOCS / "cli.md").read_text()
    assert current == expected, "docs/cli.md is out of date: run `python docs/gen_cli.py`"
    # and it covers every verb the CLI has (so render() itself did not miss any)
    assert "### skysense xid fit\n" in current and "### skysense vo query\n" in current


_EXTERNAL = re.compile(
    r"""<(?:link|script|img|iframe|source)\b[^>]*\b(?:href|src)=["']((?:https?:)?//[^"']+)""", re.I
)
_CSS_EXTERNAL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')]+)""", re.I)


@pytest.mark.slow
def test_docs_build_strictly_and_fetch_nothing(tmp_path: Path) -> None:
    """``mkdocs build --strict`` passes, the API pages have content, no asset is remote."""
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stderr[-4000:]}"
    for area in AREAS:
        page = (site / "api" / f"{area}.html").read_text()
        # mkdocstrings rendered a section for every public module of the area (listed here
        # independently of the docs' hook)
        modules = [
            m.name
            for m in pkgutil.iter_modules([str(ROOT / "src" / "skysense" / area)])
            if not m.name.startswith("_")
        ]
        assert modules, area
        missing = [m for m in modules if f'id="skysense.{area}.{m}"' not in page]
        assert missing == [], f"api/{area}.html has no section for {missing}"
        assert ":func:<code>" not in page, f"api/{area}.html shows raw Sphinx roles"
    gpz = (site / "api" / "photoz.html").read_text()
    assert 'id="skysense.photoz.gpz.GPzRegressor"' in gpz
    remote = []
    for path in site.rglob("*"):
        if path.suffix in (".html", ".css"):
            text = path.read_text(errors="replace")
            pattern = _EXTERNAL if path.suffix == ".html" else _CSS_EXTERNAL
            remote += [f"{path.relative_to(site)}: {u}" for u in pattern.findall(text)]
    assert remote == [], "the built docs load remote assets:\n" + "\n".join(remote[:20])


def test_every_page_is_in_the_nav() -> None:
    """Each Markdown page of docs/ (not README.md) is listed in mkdocs.yml's nav."""
    config = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if p.name != "README.md"}
    missing = [p for p in sorted(pages) if f": {p}\n" not in config]
    assert missing == [], f"pages not in the nav of mkdocs.yml: {missing}"


def test_module_docstring_describes_directives() -> None:
    # the directives the runner understands are the ones documented for writers in docs/README.md
    readme = (DOCS / "README.md").read_text()
    for directive in ("skip", "background", "expect", "check"):
        assert f"docs-test: {directive}" in readme, directive
