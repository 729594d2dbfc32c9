"""The layering rules hold: xmpp_sansio does no I/O (checked by import-linter)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IO = {"socket", "ssl", "trio", "asyncio", "threading", "sqlite3", "selectors", "xmpp_trio"}
#: entropy, clock, environment and logging are the caller's (issue 11): rng
#: and now come in as arguments, the I/O layer logs from the events
CALLERS = {"secrets", "random", "time", "os", "logging"}
FORBIDDEN = IO | CALLERS


def test_import_linter_contract_is_kept() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_no_module_of_xmpp_sansio_imports_io_or_entropy_even_lazily() -> None:
    """import-linter sees module-level and function-level imports; this catches
    anything it might be configured to miss, such as ``__import__`` strings."""
    offenders = []
    for path in (ROOT / "xmpp_sansio").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "__import__"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names = [str(node.args[0].value)]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_no_service_refers_to_the_router() -> None:
    """Issue 11: services are pure handlers. They see the server as a
    read-only ServerView and act through the outcomes they return; no module
    under xmpp_sansio/server/ but the router, the session manager (the layer
    above it, issue 12) and the package's __init__ imports it or holds it."""
    offenders = []
    for path in sorted((ROOT / "xmpp_sansio" / "server").glob("*.py")):
        if path.name in ("router.py", "sessions.py", "__init__.py"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("router"):
                offenders.append(f"{path.name}:{node.lineno}: imports the router")
            elif isinstance(node, ast.Attribute) and node.attr == "router":
                offenders.append(f"{path.name}:{node.lineno}: .router")
            elif isinstance(node, ast.Name) and node.id == "Router":
                offenders.append(f"{path.name}:{node.lineno}: Router")
    assert offenders == []


def test_no_service_reads_a_clock_or_draws_entropy() -> None:
    """Issue 11: ``now`` and entropy are inputs (the stage ``Context``). No
    module under xmpp_sansio/server/ but the router, which holds the injected
    clock and rng, imports ``time``, ``secrets``, ``random`` or ``os``, or asks
    ``datetime`` for the current time."""
    offenders = []
    for path in sorted((ROOT / "xmpp_sansio" / "server").glob("*.py")):
        if path.name == "router.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in ("time", "secrets", "random", "os")
            ]
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("now", "utcnow", "today")
                and isinstance(node.value, ast.Name)
                and node.value.id in ("datetime", "date")
            ):
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert offenders == []


def test_the_trio_server_holds_no_session_policy() -> None:
    """Issue 12: stream management (XEP-0198), client state indication
    (XEP-0352) and idle pings (XEP-0199) are decided in xmpp_sansio (the
    session manager); xmpp_trio/server.py only carries out effects."""
    source = (ROOT / "xmpp_trio" / "server.py").read_text()
    for namespace in ("urn:xmpp:sm:", "urn:xmpp:csi:", "urn:xmpp:ping"):
        assert namespace not in source
    assert ".sm." not in source and "conn.sm" not in source
    assert source.count("\n") < 600  # accept loops, timers, the effect interpreter
