"""What the tests driving third-party client processes (tests/trio/peers/)
share: the aioxmpp requirement check (skipped without aioxmpp, failed when
CI is set), a one-shot peer whose JSON lines are read at its end, and
:class:`Peer`, a peer driven line by line (commands on stdin, JSON events on
stdout). The slixmpp scripts themselves share ``peers/peer_common.py``
(connect trusting the test CA, wait with a time budget, JSON events)."""

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
from conftest import RunningServer

#: The peer scripts.
PEERS = Path(__file__).parent / "peers"


def require_aioxmpp() -> None:
    """Skip without aioxmpp (fail when ``CI`` is set: CI installs it)."""
    if importlib.util.find_spec("aioxmpp") is None:
        if os.environ.get("CI"):
            pytest.fail("aioxmpp is not installed (pip install aioxmpp pytz)")
        pytest.skip("aioxmpp is not installed (pip install aioxmpp pytz)")


async def run_peer(args: list[str], script: str) -> list[dict[str, Any]]:
    """Run ``peers/script`` with ``args`` to its end; the JSON events it printed."""
    result = await trio.run_process(
        [sys.executable, str(PEERS / script), *args], capture_stdout=True, check=False
    )
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]


class Peer:
    """A client process driven by JSON lines (peers/*_muc.py): ``do`` sends a
    command and waits for its ``ok``/``fail`` event, ``expect`` reads events."""

    def __init__(self, process: trio.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.buffer = b""
        self.seen: list[dict[str, Any]] = []
        self.sent = 0

    @classmethod
    async def start(
        cls,
        nursery: trio.Nursery,
        script: str,
        user: str,
        password: str,
        server: RunningServer,
        *,
        resource: str | None = None,
        domain: str = "localhost",
    ) -> Peer:
        """``user@domain/resource`` (the resource: the script's first word
        unless given) logged in to ``server``."""
        command = [
            sys.executable,
            str(PEERS / script),
            f"{user}@{domain}/{resource or script.split('_')[0]}",
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


async def persistent_room_talk(
    nursery: trio.Nursery,
    server: RunningServer,
    passwords: dict[str, str],
    room: str,
    lines: tuple[str, ...],
) -> tuple[Peer, Peer, dict[str, str]]:
    """romeo (slixmpp_muc.py) makes ``room`` persistent, juliet joins and
    says ``lines``; romeo's echoes give each line's XEP-0359 room id.
    Returns romeo, juliet and the ids by line."""
    romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", passwords["romeo"], server)
    assert (await romeo.do("join", room=room, nick="romeo"))["event"] == "ok"
    persistent = {"muc#roomconfig_persistentroom": "1"}
    assert (await romeo.do("configure", room=room, fields=persistent))["event"] == "ok"
    juliet = await Peer.start(nursery, "slixmpp_muc.py", "juliet", passwords["juliet"], server)
    assert (await juliet.do("join", room=room, nick="juliet"))["event"] == "ok"
    sids = {}
    for line in lines:
        assert (await juliet.do("say", room=room, body=line))["event"] == "ok"
        echo = await romeo.expect(lambda e, line=line: e.get("body") == line)
        sids[line] = echo["sid"]
    return romeo, juliet, sids
