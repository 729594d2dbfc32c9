"""Multi-user chat with real third-party clients over loopback TLS (issue
14's "done when"): a room created from slixmpp (its xep_0045 plugin,
default settings), configured members-only and moderated, behaves per
XEP-0045 for aioxmpp and a second slixmpp client, and keeps its
configuration and affiliations across a server restart."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountStore

pytestmark = pytest.mark.integration

PEERS = Path(__file__).parent / "peers"
ROOM = "verona@conference.localhost"
TYBALT = "pr1nce-0f-cats"


def require_aioxmpp() -> None:
    if importlib.util.find_spec("aioxmpp") is None:
        if os.environ.get("CI"):
            pytest.fail("aioxmpp is not installed (pip install aioxmpp pytz)")
        pytest.skip("aioxmpp is not installed (pip install aioxmpp pytz)")


class Peer:
    """A client process driven by JSON lines (peers/*_muc.py)."""

    def __init__(self, process: trio.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.buffer = b""
        self.seen: list[dict[str, Any]] = []
        self.sent = 0

    @classmethod
    async def start(
        cls, nursery: trio.Nursery, script: str, user: str, password: str, server: RunningServer
    ) -> Peer:
        command = [
            sys.executable,
            str(PEERS / script),
            f"{user}@localhost/{script.split('_')[0]}",
            password,
            "127.0.0.1",
            str(server.starttls_port),
            str(server.ca_file),
        ]
        process: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                check=False,
            )
        )
        peer = cls(process, user)
        await peer.expect(lambda e: e["event"] == "session")
        return peer

    async def _event(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise AssertionError(f"{self.name}'s client ended; it printed {self.seen}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        event: dict[str, Any] = json.loads(line)
        self.seen.append(event)
        return event

    async def expect(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next event that ``matches`` (events before it are kept in ``seen``)."""
        with trio.fail_after(30):
            while True:
                event = await self._event()
                if matches(event):
                    return event

    async def do(self, op: str, **args: Any) -> dict[str, Any]:
        """Run one command; its ``ok`` or ``fail`` event."""
        assert self.process.stdin is not None
        self.sent += 1
        n = self.sent
        await self.process.stdin.send_all(json.dumps({"op": op, **args}).encode() + b"\n")
        return await self.expect(lambda e: e["event"] in ("ok", "fail") and e["id"] == n)

    async def quit(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(b'{"op": "quit"}\n')
        await self.expect(lambda e: e["event"] == "end")
        with trio.fail_after(30):
            await self.process.wait()


def with_tybalt(config: ServerConfig) -> ServerConfig:
    with AccountStore.open(config.database_path) as store:
        store.create("tybalt", "localhost", TYBALT, iterations=4096)
    return config


async def test_a_slixmpp_room_members_only_and_moderated_with_aioxmpp_survives_a_restart(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    require_aioxmpp()
    config = with_tybalt(server_config)
    with trio.fail_after(120):  # the time budget of the whole exchange
        await run_scenario(config, ca, tmp_path)


async def run_scenario(config: ServerConfig, ca: trustme.CA, tmp_path: Path) -> None:
    async with trio.open_nursery() as outer:
        # -- first run: the room is made and used ---------------------------------------
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            created = await romeo.do("join", room=ROOM, nick="romeo")
            assert created["event"] == "ok" and {110, 201} <= set(created["codes"])
            assert created["affiliation"] == "owner" and created["role"] == "moderator"
            configured = await romeo.do(
                "configure",
                room=ROOM,
                fields={
                    "muc#roomconfig_membersonly": "1",
                    "muc#roomconfig_moderatedroom": "1",
                    "muc#roomconfig_persistentroom": "1",
                },
            )
            assert configured["event"] == "ok"
            tybalt = await Peer.start(nursery, "slixmpp_muc.py", "tybalt", TYBALT, server)
            refused = await tybalt.do("join", room=ROOM, nick="tybalt")
            assert refused == {"event": "fail", "id": 1, "condition": "registration-required"}
            assert (
                await romeo.do(
                    "affiliation", room=ROOM, jid="juliet@localhost", affiliation="member"
                )
            )["event"] == "ok"

            juliet = await Peer.start(
                nursery, "aioxmpp_muc.py", "juliet", PASSWORDS["juliet"], server
            )
            joined = await juliet.do("join", room=ROOM, nick="juliet")
            assert joined == {
                "event": "ok",
                "id": 1,
                "role": "participant",
                "affiliation": "member",
            }
            seen = await romeo.expect(lambda e: e["event"] == "presence" and e["nick"] == "juliet")
            assert (seen["role"], seen["affiliation"]) == ("participant", "member")

            assert (await juliet.do("say", room=ROOM, body="Romeo, Romeo"))["event"] == "ok"
            heard = await romeo.expect(
                lambda e: e["event"] == "groupchat" and e["nick"] == "juliet"
            )
            assert heard["body"] == "Romeo, Romeo"

            # Moderated: the owner takes juliet's voice; the room refuses her message.
            assert (await romeo.do("role", room=ROOM, nick="juliet", role="visitor"))[
                "event"
            ] == "ok"
            await juliet.expect(
                lambda e: e == {"event": "role", "nick": "juliet", "role": "visitor"}
            )
            silenced = await juliet.do("say", room=ROOM, body="Wherefore?")
            assert (silenced["event"], silenced["condition"]) == ("fail", "forbidden")
            for peer in (romeo, tybalt, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()

        # -- second run over the same data: the room and its affiliations are back --------
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            juliet = await Peer.start(
                nursery, "aioxmpp_muc.py", "juliet", PASSWORDS["juliet"], server
            )
            back = await juliet.do("join", room=ROOM, nick="juliet")
            assert back == {"event": "ok", "id": 1, "role": "participant", "affiliation": "member"}
            tybalt = await Peer.start(nursery, "slixmpp_muc.py", "tybalt", TYBALT, server)
            assert (await tybalt.do("join", room=ROOM, nick="tybalt"))[
                "condition"
            ] == "registration-required"
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            owner = await romeo.do("join", room=ROOM, nick="romeo")
            assert owner["affiliation"] == "owner" and 201 not in owner["codes"]
            assert (await romeo.do("members", room=ROOM))["jids"] == ["juliet@localhost"]
            for peer in (romeo, tybalt, juliet):
                await peer.quit()
            nursery.cancel_scope.cancel()
        outer.cancel_scope.cancel()
