"""What a new user meets first (issue 23): every startup failure of ``serve`` is
one line naming what is wrong, exit status 1, no traceback; the configuration
file is found the way admins expect; account commands say which database they
used; ``--version``."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer

from xmpp_trio import preflight
from xmpp_trio.cli import main
from xmpp_trio.client import AuthenticationError, CertificateError, ConnectionFailed, open_client
from xmpp_trio.config import (
    ALL_ADDRESSES,
    CONFIG_ENV,
    DEFAULT_LISTENERS,
    ListenerConfig,
    ServerConfig,
    find_config,
)
from xmpp_trio.server import BoundListener, run_server

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


# --- connection failures (clients and bots) ----------------------------------------------
#
# The failures a client or a bot meets first: each comes out as one clear
# exception (or, for a bot, one log line and exit status 1), never a traceback
# or an exception group. The server side of an untrusted certificate is a
# failed handshake, logged at info with the peer's address.

WAIT = 30.0


def client_case_untrusted_certificate(
    server: RunningServer, tmp_path: Path
) -> tuple[dict[str, Any], type[Exception], str]:
    other = trustme.CA()  # not the CA of the server's certificate
    other_ca = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(other_ca))
    return (
        {"port": server.starttls_port, "ca_file": other_ca},
        CertificateError,
        "certificate verify failed: unable to get local issuer certificate; trust the server's",
    )


def client_case_server_down(
    server: RunningServer, tmp_path: Path
) -> tuple[dict[str, Any], type[Exception], str]:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    return (
        {"port": port, "ca_file": server.ca_file},
        ConnectionFailed,
        "could not connect to localhost: 127.0.0.1:",
    )


def client_case_wrong_password(
    server: RunningServer, tmp_path: Path
) -> tuple[dict[str, Any], type[Exception], str]:
    return (
        {"port": server.starttls_port, "ca_file": server.ca_file, "password": "wrong"},
        AuthenticationError,
        "not-authorized",
    )


CLIENT_CASES = {
    "untrusted_certificate": client_case_untrusted_certificate,
    "server_down": client_case_server_down,
    "wrong_password": client_case_wrong_password,
}


@pytest.mark.parametrize("case", CLIENT_CASES.values(), ids=CLIENT_CASES.keys())
async def test_a_connection_failure_is_one_clear_exception(
    server: RunningServer,
    tmp_path: Path,
    case: Callable[[RunningServer, Path], tuple[dict[str, Any], type[Exception], str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="xmpp_trio")
    options, expected_type, expected = case(server, tmp_path)
    ctx = ssl.create_default_context(cafile=str(options["ca_file"]))
    with pytest.raises(expected_type) as raised:
        async with open_client(
            "juliet@localhost",
            options.get("password", PASSWORDS["juliet"]),
            host="127.0.0.1",
            port=options["port"],
            ssl_context=ctx,
            timeout=WAIT,
        ):
            pass
    assert type(raised.value) is expected_type  # not an exception group
    assert expected in str(raised.value) and "\n" not in str(raised.value)
    if expected_type is ConnectionFailed:
        assert str(raised.value).endswith(": Connection refused")
    if expected_type is CertificateError:
        # The server saw a failed handshake and says from where.
        with trio.fail_after(WAIT):
            while not any("TLS handshake with 127.0.0.1" in r.getMessage() for r in caplog.records):
                await trio.sleep(0.01)
        [record] = [r for r in caplog.records if "TLS handshake with" in r.getMessage()]
        assert record.levelno == logging.INFO and "failed" in record.getMessage()


async def run_bot(server: RunningServer, tmp_path: Path, case: str) -> tuple[int, str, str]:
    """Run ``xmpp-trio bot`` for a client failure: (exit status, stderr, expected)."""
    options, expected_type, expected = CLIENT_CASES[case](server, tmp_path)
    bots_file = tmp_path / "bots.toml"
    bots_file.write_text(
        "[[bots]]\n"
        'jid = "juliet@localhost"\n'
        f'password = "{options.get("password", PASSWORDS["juliet"])}"\n'
        'host = "127.0.0.1"\n'
        f"port = {options['port']}\n"
        f'ca_file = "{options["ca_file"]}"\n'
        'handlers = ["ping"]\n'
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "xmpp_trio", "bot", str(bots_file)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    output = bytearray()
    try:
        assert process.stderr is not None
        with trio.fail_after(WAIT):
            if expected_type is ConnectionFailed:  # retried: wait for the first retry
                while b"reconnecting in" not in output:
                    chunk = await process.stderr.receive_some(65536)
                    assert chunk, output.decode()
                    output += chunk
                process.send_signal(signal.SIGTERM)
            async for chunk in process.stderr:
                output += chunk
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return status, output.decode(), expected


STARTUP_CASES = {
    "port_in_use": case_port_in_use,
    "bad_address": case_bad_address,
    "unwritable_data_dir": case_unwritable_data_dir,
    "bad_certificate": case_bad_certificate,
}


@pytest.mark.parametrize(
    "failure",
    [
        "port_in_use",
        "bad_address",
        "unwritable_data_dir",
        "bad_certificate",
        "untrusted_certificate",
        "server_down",
        "wrong_password",
    ],
)
async def test_no_startup_or_connection_failure_shows_a_traceback(
    server: RunningServer, tmp_path: Path, failure: str
) -> None:
    """Issue 23's named list, each through the command an admin runs: ``serve``
    stops with one line and status 1; a bot whose certificate is not trusted
    or whose password is wrong stops with one line and status 1; a bot whose
    server is down retries, one warning line per attempt."""
    if failure in STARTUP_CASES:
        config, expected, cleanup = STARTUP_CASES[failure](tmp_path)
        try:
            done = await trio.to_thread.run_sync(serve, config)
        finally:
            cleanup()
        status, text = done.returncode, done.stderr
        lines = [line for line in text.splitlines() if line.strip()]
        assert status == 1 and len(lines) == 1, text
        assert lines[0].startswith("xmpp-trio: error: ") and expected in lines[0], text
    else:
        status, text, expected = await run_bot(server, tmp_path, failure)
        if failure == "server_down":
            assert status == 0, text  # stopped by the signal
            assert "cannot connect" in text and "Connection refused" in text, text
        else:
            assert status == 1, text
            [line] = [line for line in text.splitlines() if "stopped:" in line]
            assert "juliet@localhost" in line and expected in line, text
    assert "Traceback" not in text and "ExceptionGroup" not in text, text


async def test_an_exception_in_the_body_of_open_client_comes_out_unwrapped(
    server: RunningServer,
) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=server.starttls_port,
            ssl_context=server.client_context(),
        ):
            raise KeyError("mine")


# --- IPv6 ----------------------------------------------------------------------------------


def free_dual_stack_port() -> int:
    """A port free on both 0.0.0.0 and :: (one dual-stack socket holds both)."""
    with socket.socket(socket.AF_INET6) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
        port: int = sock.getsockname()[1]
    return port


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def login_over(address: str, port: int, ca_file: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    async with open_client(
        "juliet@localhost", PASSWORDS["juliet"], host=address, port=port, ssl_context=ctx
    ) as client:
        return str(client.jid.bare)


@pytest.mark.skipif(
    not ipv6_available() and not os.environ.get("CI"), reason="no IPv6 loopback here"
)
async def test_the_default_address_listens_on_ipv4_and_ipv6(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    port = free_dual_stack_port()
    config = dataclasses.replace(
        server_config, listeners=(ListenerConfig("c2s-starttls", ALL_ADDRESSES, port),)
    )
    assert DEFAULT_LISTENERS[0].address == ALL_ADDRESSES
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    bound: list[BoundListener] = await nursery.start(run_server, config)
    assert {ipaddress.ip_address(b.address).version for b in bound} == {4, 6}
    assert {b.port for b in bound} == {port}
    assert await login_over("::1", port, ca_file) == "juliet@localhost"
    assert await login_over("127.0.0.1", port, ca_file) == "juliet@localhost"


async def test_without_ipv6_the_default_address_still_starts_on_ipv4(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine without IPv6 (EAFNOSUPPORT for AF_INET6 sockets): the
    checks pass and the server listens on IPv4 alone."""
    real_trio_socket, real_socket = trio.socket.socket, socket.socket

    def no_ipv6(factory: Callable[..., Any]) -> Callable[..., Any]:
        def make(family: int = socket.AF_INET, *args: Any, **kwargs: Any) -> Any:
            if family == socket.AF_INET6:
                raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
            return factory(family, *args, **kwargs)

        return make

    port = free_dual_stack_port()
    config = dataclasses.replace(
        server_config, listeners=(ListenerConfig("c2s-starttls", ALL_ADDRESSES, port),)
    )
    monkeypatch.setattr(trio.socket, "socket", no_ipv6(real_trio_socket))
    # The checks' own view of the socket module, where AF_INET6 is missing.
    monkeypatch.setattr(preflight, "socket", _Without(socket, socket=no_ipv6(real_socket)))
    assert preflight.problems(config, bind=True) == []
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    bound: list[BoundListener] = await nursery.start(run_server, config)
    assert [b.address for b in bound] == ["0.0.0.0"]
    monkeypatch.undo()
    assert await login_over("127.0.0.1", port, ca_file) == "juliet@localhost"


class _Without:
    """A module with some attributes replaced."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)
