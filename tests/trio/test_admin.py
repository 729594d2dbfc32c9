"""The admin socket and the commands that use it (``status``, ``sessions``,
``users``, ``kick``, ``announce``, ``stop``; ``deluser``/``passwd`` on a
running server), against the real server on loopback with real clients."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, SubElement

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.server.roster import StoredItem
from xmpp_trio.admin import request, socket_path
from xmpp_trio.cli import main
from xmpp_trio.client import Client, StreamError, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.stores.roster import SqliteRosterStorage

WAIT = 15.0


def write_config(config: ServerConfig, tmp_path: Path, extra: str = "") -> Path:
    """A configuration file for the command line naming the server's data dir."""
    path = tmp_path / "xmpp.toml"
    path.write_text(f'domains = ["localhost"]\ndata_dir = "{config.data_dir}"\n{extra}')
    return path


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in a thread (it blocks on the admin socket)."""
    capsys.readouterr()
    status = await trio.to_thread.run_sync(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def options(server: RunningServer) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.starttls_port,
        "ssl_context": server.client_context(),
    }


async def wait_closed(client: Client) -> StreamError:
    with trio.fail_after(WAIT):
        await client.closed.wait()
    assert isinstance(client.error, StreamError)
    return client.error


async def test_the_admin_socket_is_private_to_the_servers_user(server: RunningServer) -> None:
    path = socket_path(server.config)
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


async def test_status_users_and_sessions_describe_the_running_server(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(server.config, tmp_path)
    async with open_client("juliet@localhost/balcony", PASSWORDS["juliet"], **options(server)):
        status, out, _ = await cli(capsys, "status", "--json", "--config", str(config))
        assert status == 0
        st = json.loads(out)
        assert st["running"] is True
        assert st["sessions"] == 1
        assert st["domains"] == ["localhost"]
        assert {"kind": "c2s-starttls", "address": "127.0.0.1", "port": server.starttls_port} in (
            st["listeners"]
        )
        status, out, _ = await cli(capsys, "sessions", "--json", "--config", str(config))
        assert status == 0
        [session] = json.loads(out)
        assert session["jid"] == "juliet@localhost/balcony"
        assert session["resource"] == "balcony"
        assert session["address"].startswith("127.0.0.1")
        assert session["tls"] in ("TLSv1.2", "TLSv1.3")
        assert session["sm"] == "resumable"  # our client enables XEP-0198 with resumption
        status, out, _ = await cli(capsys, "sessions", "--config", str(config))
        assert "juliet@localhost/balcony" in out and "1 sessions" in out
        status, out, _ = await cli(capsys, "users", "--json", "--config", str(config))
        assert json.loads(out) == {"count": 2, "users": ["juliet@localhost", "romeo@localhost"]}


async def test_kick_ends_every_session_of_the_account_with_the_reason(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(server.config, tmp_path)
    opts = options(server)
    async with (
        open_client("juliet@localhost/one", PASSWORDS["juliet"], **opts) as one,
        open_client("juliet@localhost/two", PASSWORDS["juliet"], **opts) as two,
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **opts) as romeo,
    ):
        status, out, _ = await cli(
            capsys, "kick", "juliet@localhost", "--reason", "spamming", "--config", str(config)
        )
        assert status == 0
        assert "ended 2 sessions of juliet@localhost" in out
        for client in (one, two):
            error = await wait_closed(client)
            assert error.condition is StreamErrorCondition.POLICY_VIOLATION
            assert error.text == "spamming"
        assert not romeo.closed.is_set()
        # The kicked sessions are gone, not detached for resumption.
        assert [str(j) for j, _ in server.router.resources(romeo.jid.bare)] == [str(romeo.jid)]
        assert server.router.resources(one.jid.bare) == []


async def test_announce_reaches_every_online_session_as_a_headline(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(server.config, tmp_path)
    opts = options(server)
    async with (
        open_client("juliet@localhost/one", PASSWORDS["juliet"], **opts) as juliet,
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **opts) as romeo,
    ):
        status, out, _ = await cli(
            capsys, "announce", "Maintenance at noon", "--config", str(config)
        )
        assert status == 0 and "sent to 2 sessions" in out
        for client in (juliet, romeo):
            with trio.fail_after(WAIT):
                message = await client.receive()
            assert message.tag == "{jabber:client}message"
            assert message.get("type") == "headline"
            assert message.get("from") == "localhost"
            assert message.get("to") == str(client.jid)
            assert message.findtext("{jabber:client}body") == "Maintenance at noon"


async def test_deluser_on_a_running_server_ends_the_accounts_sessions(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(server.config, tmp_path)
    async with open_client("juliet@localhost/one", PASSWORDS["juliet"], **options(server)) as one:
        status, out, _ = await cli(capsys, "deluser", "juliet@localhost", "--config", str(config))
        assert status == 0
        assert "ended 1 running sessions of juliet@localhost" in out
        error = await wait_closed(one)
        assert error.condition is StreamErrorCondition.NOT_AUTHORIZED


async def test_deluser_on_a_running_server_pushes_the_cancelled_subscription_to_contacts(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The running server removes the account itself (RFC 6121 §2.5.2), so a
    contact's interested session gets the roster push (done offline, the
    contact would only see it at its next roster request)."""
    db = sqlite3.connect(server_config.database_path, isolation_level=None)
    roster = SqliteRosterStorage(db)
    juliet, romeo = JID.parse("juliet@localhost"), JID.parse("romeo@localhost")
    roster.put(juliet, StoredItem(RosterItem(romeo, subscription=Subscription.BOTH)))
    roster.put(romeo, StoredItem(RosterItem(juliet, subscription=Subscription.BOTH)))
    db.close()
    running = await start_running(server_config, ca, tmp_path, nursery)
    config = write_config(server_config, tmp_path)
    async with open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **options(running)) as r:
        iq = Element("{jabber:client}iq", {"type": "get"})
        SubElement(iq, "{jabber:iq:roster}query")
        answer = await r.request(iq, timeout=WAIT)
        assert answer.find("{jabber:iq:roster}query/{jabber:iq:roster}item") is not None
        status, out, _ = await cli(capsys, "deluser", "juliet@localhost", "--config", str(config))
        assert status == 0 and "ended 0 running sessions" in out
        with trio.fail_after(WAIT):
            push = await r.receive()
        item = push.find("{jabber:iq:roster}query/{jabber:iq:roster}item")
        assert push.get("type") == "set" and item is not None
        assert item.get("jid") == "juliet@localhost"
        assert item.get("subscription") in ("none", "remove")


async def test_passwd_on_a_running_server_resets_the_accounts_sessions(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(server.config, tmp_path, "scram_iterations = 4096\n")
    async with open_client("juliet@localhost/one", PASSWORDS["juliet"], **options(server)) as one:
        status, out, _ = await cli(
            capsys, "passwd", "juliet@localhost", "--password", "n3w-p4ss", "--config", str(config)
        )
        assert status == 0 and "ended 1 running sessions" in out
        error = await wait_closed(one)
        assert error.condition is StreamErrorCondition.RESET
    async with open_client("juliet@localhost/two", "n3w-p4ss", **options(server)) as two:
        assert str(two.jid) == "juliet@localhost/two"


async def test_stop_shuts_the_server_down_and_removes_the_socket(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(server_config, tmp_path)
    async with trio.open_nursery() as nursery:
        running = await start_running(server_config, ca, tmp_path, nursery)
        async with open_client(
            "juliet@localhost/one", PASSWORDS["juliet"], **options(running)
        ) as c:
            status, out, _ = await cli(capsys, "stop", "--config", str(config))
            assert status == 0 and "stopping" in out
            error = await wait_closed(c)
            assert error.condition is StreamErrorCondition.SYSTEM_SHUTDOWN
        # run_server returns by itself: the nursery ends without a cancel.
    assert not socket_path(server_config).exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["sessions"],
        ["kick", "juliet@localhost"],
        ["announce", "hello"],
        ["stop"],
        ["reload"],
    ],
)
def test_admin_commands_say_in_one_line_that_the_server_is_not_running(
    server_config: ServerConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    config = write_config(server_config, tmp_path)
    assert main([*argv, "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("xmpp-trio: error: the server is not running (no admin socket at ")
    assert "Traceback" not in err


def test_users_reads_the_database_when_the_server_is_not_running(
    server_config: ServerConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(server_config, tmp_path)
    assert main(["users", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "juliet@localhost\nromeo@localhost\n2 accounts\n"


async def test_the_socket_answers_bad_requests_with_an_error_line_and_goes_on(
    server: RunningServer,
) -> None:
    def talk() -> list[dict[str, Any]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(WAIT)
            sock.connect(str(socket_path(server.config)))
            sock.sendall(
                b"not json\n"
                b'{"op": "explode"}\n'
                b'{"op": "kick", "jid": "juliet@localhost/res"}\n'
                b'{"op": "announce", "text": ""}\n'
                b'{"op": "status"}\n'
            )
            data = b""
            while data.count(b"\n") < 5:
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
        return [json.loads(line) for line in data.splitlines()]

    answers = await trio.to_thread.run_sync(talk)
    assert [a["ok"] for a in answers] == [False, False, False, False, True]
    assert "not a JSON line" in answers[0]["error"]
    assert "unknown op 'explode'" in answers[1]["error"]
    assert "bare JID" in answers[2]["error"]
    assert answers[4]["result"]["running"] is True


async def test_a_server_stopping_leaves_a_newer_servers_socket_alone(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    """A stale socket is replaced at start; at exit a server removes its own
    socket only (not one a newer server put in its place)."""
    path = socket_path(server_config)
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as first_nursery:
            await start_running(server_config, ca, tmp_path, first_nursery)
            second = await start_running(server_config, ca, tmp_path, outer)
            first_nursery.cancel_scope.cancel()
        assert path.exists()
        status = await trio.to_thread.run_sync(request, path, "status")
        ports = {listener["port"] for listener in status["listeners"]}
        assert second.starttls_port in ports
        outer.cancel_scope.cancel()
    assert not path.exists()


async def test_sessions_name_the_client_software_its_capabilities_tell(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """XEP-0115: once the server has verified a session's caps (it asks the
    client's disco#info), ``sessions`` shows the client's identity name."""
    from xmpp_trio.im import DEFAULT_IDENTITY, IMClient

    config = write_config(server.config, tmp_path)
    async with (
        open_client("juliet@localhost/balcony", PASSWORDS["juliet"], **options(server)) as c,
        IMClient(c) as im,
    ):
        await im.send_presence()
        with trio.fail_after(WAIT):
            while True:
                status, out, _ = await cli(capsys, "sessions", "--json", "--config", str(config))
                assert status == 0
                [session] = json.loads(out)
                # Until the server has verified the caps (its disco#info query
                # is answered) it can show only what the presence advertised.
                if session["client"] == DEFAULT_IDENTITY.name:
                    break
                await trio.sleep(0.05)


async def test_a_slixmpp_user_gets_the_announcement_and_the_kick_with_its_reason(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real third-party client with its default settings."""
    pytest.importorskip("slixmpp")
    config = write_config(server.config, tmp_path)
    script = Path(__file__).parent / "peers" / "slixmpp_admin.py"
    args = ["juliet@localhost", PASSWORDS["juliet"], "127.0.0.1", str(server.starttls_port)]
    process = await trio.lowlevel.open_process(
        [sys.executable, str(script), *args, str(server.ca_file)], stdout=subprocess.PIPE
    )
    output = bytearray()

    async def wait_for(text: bytes) -> None:
        assert process.stdout is not None
        while text not in output:
            chunk = await process.stdout.receive_some(65536)
            assert chunk, output.decode()
            output.extend(chunk)

    try:
        with trio.fail_after(WAIT):
            await wait_for(b"SESSION juliet@localhost/")
            status, out, _ = await cli(capsys, "sessions", "--json", "--config", str(config))
            [session] = json.loads(out)
            assert session["jid"].startswith("juliet@localhost/")
            assert session["sm"] == "off"  # slixmpp enables XEP-0198 only with its plugin
            await cli(capsys, "announce", "Restart at noon", "--config", str(config))
            await wait_for(b"MESSAGE headline localhost Restart at noon")
            status, out, _ = await cli(
                capsys, "kick", "juliet@localhost", "--reason", "go away", "--config", str(config)
            )
            assert status == 0 and "ended 1 sessions" in out
            await wait_for(b"DISCONNECTED")
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert b"STREAM_ERROR policy-violation go away" in output, output.decode()


async def test_disable_enable_and_motd_on_a_running_server(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The XEP-0133 operations from the command line: a disabled account's
    sessions end and it cannot log in until enabled; the message of the day
    reaches the next login as a headline."""
    from xmpp_trio.client import AuthenticationError

    config = write_config(server.config, tmp_path)
    opts = options(server)
    async with open_client("juliet@localhost/one", PASSWORDS["juliet"], **opts) as one:
        status, out, _ = await cli(capsys, "disable", "juliet@localhost", "--config", str(config))
        assert status == 0 and "disabled juliet@localhost (ended 1 sessions)" in out
        error = await wait_closed(one)
        assert error.condition is StreamErrorCondition.NOT_AUTHORIZED
    with pytest.raises(AuthenticationError):
        async with open_client("juliet@localhost/two", PASSWORDS["juliet"], **opts):
            pass
    status, out, _ = await cli(capsys, "enable", "juliet@localhost", "--config", str(config))
    assert status == 0 and "re-enabled juliet@localhost" in out
    status, _, _ = await cli(capsys, "motd", "Masks tonight", "--config", str(config))
    assert status == 0
    async with open_client("juliet@localhost/three", PASSWORDS["juliet"], **opts) as three:
        with trio.fail_after(WAIT):
            message = await three.receive()
            while not message.tag.endswith("message"):
                message = await three.receive()
        assert message.get("type") == "headline"
        assert message.findtext("{jabber:client}body") == "Masks tonight"
    status, out, _ = await cli(capsys, "motd", "--delete", "--config", str(config))
    assert status == 0 and "deleted" in out
    status, _, err = await cli(capsys, "disable", "nobody@localhost", "--config", str(config))
    assert status != 0 and "no account" in err
