"""What a new user meets first (issue 23): every startup failure of ``serve`` is
one line naming what is wrong, exit status 1, no traceback; the configuration
file is found the way admins expect; account commands say which database they
used; ``--version``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from xmpp_trio.cli import main
from xmpp_trio.config import CONFIG_ENV, find_config

REPO = Path(__file__).resolve().parents[2]


def write_config(
    tmp_path: Path, *, port: int = 0, address: str = "127.0.0.1", extra: str = ""
) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(
        'domains = ["localhost"]\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        "scram_iterations = 4096\n"
        f"{extra}"
        "[[listeners]]\n"
        f'kind = "c2s-starttls"\naddress = "{address}"\nport = {port}\n'
    )
    return path


def serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Root can write anywhere, except into an immutable directory."""
    chattr = shutil.which("chattr")
    path.mkdir(parents=True, exist_ok=True)
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=False)


def case_port_in_use(tmp_path: Path) -> tuple[Path, str, Callable[[], object]]:
    holder = port_in_use()
    port = holder.__enter__()
    return (
        write_config(tmp_path, port=port),
        "already in use",
        lambda: holder.__exit__(None, None, None),
    )


def case_bad_address(tmp_path: Path) -> tuple[Path, str, Callable[[], object]]:
    return (
        write_config(tmp_path, address="no-such-host.invalid", port=15999),
        "cannot resolve",
        lambda: None,
    )


def case_foreign_address(tmp_path: Path) -> tuple[Path, str, Callable[[], object]]:
    return (
        write_config(tmp_path, address="192.0.2.1", port=15999),
        "not one of this machine's",
        lambda: None,
    )


def case_unwritable_data_dir(tmp_path: Path) -> tuple[Path, str, Callable[[], object]]:
    holder = immutable(tmp_path / "data")
    holder.__enter__()
    return write_config(tmp_path), "not writable", lambda: holder.__exit__(None, None, None)


def case_bad_certificate(tmp_path: Path) -> tuple[Path, str, Callable[[], object]]:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    extra = f'[tls]\ncert = "{tmp_path / "cert.pem"}"\nkey = "{tmp_path / "key.pem"}"\n'
    return write_config(tmp_path, extra=extra), "cannot use certificate", lambda: None


@pytest.mark.parametrize(
    "case",
    [
        case_port_in_use,
        case_bad_address,
        case_foreign_address,
        case_unwritable_data_dir,
        case_bad_certificate,
    ],
    ids=lambda case: case.__name__.removeprefix("case_"),
)
def test_a_startup_failure_is_one_line_and_exit_status_1(
    tmp_path: Path, case: Callable[[Path], tuple[Path, str, Callable[[], object]]]
) -> None:
    config, expected, cleanup = case(tmp_path)
    try:
        done = serve(config)
    finally:
        cleanup()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("xmpp-trio: error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_the_config_is_found_as_admins_expect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_config(None) is None or find_config(None) == Path("/etc/xmpp-trio/xmpp.toml")
    local = tmp_path / "xmpp.toml"
    local.write_text("")
    assert find_config(None) == Path("xmpp.toml")
    named = tmp_path / "named.toml"
    monkeypatch.setenv(CONFIG_ENV, str(named))
    assert find_config(None) == named  # the variable wins over ./xmpp.toml
    assert find_config(tmp_path / "explicit.toml") == tmp_path / "explicit.toml"


def test_adduser_without_config_uses_the_local_file_and_says_which_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path)
    assert main(["adduser", "juliet@localhost", "--password", "r0m30-r0m30"]) == 0
    out = capsys.readouterr().out
    assert f"database {tmp_path / 'data' / 'xmpp.sqlite3'}" in out
    assert (tmp_path / "data" / "xmpp.sqlite3").is_file()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("xmpp-trio ")


def test_two_servers_cannot_share_a_data_directory(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        for line in first.stderr:  # ends if the process dies
            if "listening for c2s-starttls" in line:
                break
        else:
            raise AssertionError("the first server did not start")
        second = serve(config)
        assert second.returncode == 1
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "is in use by another server" in lines[0], second.stderr
        assert f"pid {first.pid}" in lines[0]
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_serve_says_where_things_are_and_that_there_are_no_accounts(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "listening for c2s-starttls" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = "".join(seen)
    assert f"data directory: {tmp_path / 'data'}" in text
    assert f"self-signed certificate {tmp_path / 'data' / 'tls' / 'cert.pem'}" in text
    assert "has no accounts yet: add one with 'xmpp-trio adduser user@localhost'" in text
