"""Administration from a third-party client (issue 15's "done when"): an
admin using slixmpp's ad-hoc support (xep_0050/xep_0133, default settings)
or aioxmpp's (aioxmpp.adhoc)
lists online users, announces to every online session, adds a user and
deletes one (whose session ends); a non-admin is refused each; a user finds
another by name in the directory (xep_0055)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from peer_support import PEERS, require_aioxmpp, run_peer

from xmpp_sansio.jid import JID
from xmpp_trio.admin_config import AdminConfig
from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountStore

pytestmark = pytest.mark.integration

ADMIN_NS = "http://jabber.org/protocol/admin#"


async def test_slixmpp_admin_runs_xep0133_and_a_non_admin_is_refused(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    pytest.importorskip("slixmpp")
    config = dataclasses.replace(
        server_config, admin=AdminConfig(admins=frozenset({JID.parse("juliet@localhost")}))
    )
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            common = ["127.0.0.1", str(server.starttls_port), str(server.ca_file)]
            # romeo stays online: he gets the announcement, then loses his session.
            romeo = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    str(PEERS / "slixmpp_admin.py"),
                    "romeo@localhost/garden",
                    PASSWORDS["romeo"],
                    *common,
                ],
                stdout=subprocess.PIPE,
            )
            output = bytearray()

            async def wait_for(text: bytes) -> None:
                assert romeo.stdout is not None
                while text not in output:
                    chunk = await romeo.stdout.receive_some(65536)
                    assert chunk, output.decode()
                    output.extend(chunk)

            try:
                await wait_for(b"SESSION romeo@localhost/garden")
                refused = await run_peer(
                    ["romeo@localhost/cli", PASSWORDS["romeo"], *common, "user"], "slixmpp_adhoc.py"
                )
                by_event = {e["event"]: e for e in refused}
                assert by_event["commands"]["nodes"] == []
                for event in ("online", "announce", "add", "delete"):
                    assert by_event[event] == {"event": event, "error": "forbidden"}

                events = await run_peer(
                    ["juliet@localhost/desk", PASSWORDS["juliet"], *common, "admin"],
                    "slixmpp_adhoc.py",
                )
                by_event = {e["event"]: e for e in events}
                nodes = by_event["commands"]["nodes"]
                assert "http://jabber.org/protocol/admin#announce" in nodes
                online = by_event["online"]
                assert online["status"] == "completed"
                assert sorted(online["values"]["onlineuserjids"]) == [
                    "juliet@localhost",
                    "romeo@localhost",
                ]
                assert by_event["announce"]["status"] == "completed"
                await wait_for(b"MESSAGE headline localhost Feast at nine")
                assert by_event["add"]["status"] == "completed"
                assert by_event["delete"]["status"] == "completed"
                await wait_for(b"DISCONNECTED")
                assert b"STREAM_ERROR not-authorized" in output, output.decode()
            finally:
                if romeo.returncode is None:
                    romeo.kill()
                await romeo.wait()
            nursery.cancel_scope.cancel()
    with AccountStore.open(config.database_path) as store:
        assert store.exists("nurse", "localhost")
        assert not store.exists("romeo", "localhost")


async def test_slixmpp_user_finds_another_by_name_in_the_directory(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    """XEP-0055 with slixmpp's xep_0055: romeo publishes his vCard and opts in
    (the ``visibility`` command, XEP-0050); juliet finds him by family name."""
    pytest.importorskip("slixmpp")
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            server = await start_running(server_config, ca, tmp_path, nursery)
            common = ["127.0.0.1", str(server.starttls_port), str(server.ca_file)]
            script = "slixmpp_vjud.py"
            before = await run_peer(
                ["juliet@localhost/desk", PASSWORDS["juliet"], *common, "search"], script
            )
            assert before == [{"event": "found", "items": []}]
            published = await run_peer(
                ["romeo@localhost/garden", PASSWORDS["romeo"], *common, "publish"], script
            )
            assert published == [{"event": "listed", "status": "completed"}]
            after = await run_peer(
                ["juliet@localhost/desk", PASSWORDS["juliet"], *common, "search"], script
            )
            [event] = after
            assert [item["jid"] for item in event["items"]] == ["romeo@localhost"]
            assert event["items"][0]["first"] == "Romeo"
            nursery.cancel_scope.cancel()


async def test_aioxmpp_admin_runs_xep0133_and_a_non_admin_is_refused(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    """The same with aioxmpp's ad-hoc client (aioxmpp.adhoc): benvolio, online
    with slixmpp, gets the announcement, then loses his session and account."""
    require_aioxmpp()
    pytest.importorskip("slixmpp")
    config = dataclasses.replace(
        server_config, admin=AdminConfig(admins=frozenset({JID.parse("juliet@localhost")}))
    )
    with AccountStore.open(config.database_path) as store:
        store.create("benvolio", "localhost", "C0usin-B", iterations=4096)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            common = ["127.0.0.1", str(server.starttls_port), str(server.ca_file)]
            benvolio = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    str(PEERS / "slixmpp_admin.py"),
                    "benvolio@localhost/square",
                    "C0usin-B",
                    *common,
                ],
                stdout=subprocess.PIPE,
            )
            output = bytearray()

            async def wait_for(text: bytes) -> None:
                assert benvolio.stdout is not None
                while text not in output:
                    chunk = await benvolio.stdout.receive_some(65536)
                    assert chunk, output.decode()
                    output.extend(chunk)

            script = "aioxmpp_adhoc.py"
            try:
                await wait_for(b"SESSION benvolio@localhost/square")
                refused = await run_peer(
                    ["romeo@localhost/aioxmpp", PASSWORDS["romeo"], *common, "user"], script
                )
                by_event = {e["event"]: e for e in refused}
                assert by_event["commands"]["nodes"] == [], refused
                for event in ("online", "announce", "add", "delete"):
                    assert by_event[event] == {"event": event, "error": "forbidden"}
                events = await run_peer(
                    ["juliet@localhost/aioxmpp", PASSWORDS["juliet"], *common, "admin"], script
                )
                by_event = {e["event"]: e for e in events}
                assert "end" in by_event, events
                assert f"{ADMIN_NS}announce" in by_event["commands"]["nodes"]
                online = by_event["online"]
                assert online["status"] == "completed"
                assert sorted(online["values"]["onlineuserjids"]) == [
                    "benvolio@localhost",
                    "juliet@localhost",
                ]
                assert by_event["announce"]["status"] == "completed"
                await wait_for(b"MESSAGE headline localhost Balcony at dawn")
                assert by_event["add"]["status"] == "completed"
                assert by_event["delete"]["status"] == "completed"
                await wait_for(b"DISCONNECTED")
                assert b"STREAM_ERROR not-authorized" in output, output.decode()
            finally:
                if benvolio.returncode is None:
                    benvolio.kill()
                await benvolio.wait()
            nursery.cancel_scope.cancel()
    with AccountStore.open(config.database_path) as store:
        assert store.exists("friar", "localhost")
        assert not store.exists("benvolio", "localhost")
