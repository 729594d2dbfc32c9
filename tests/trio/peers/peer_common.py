"""What the slixmpp peer scripts of this folder share (imported by them:
each runs with this folder first on ``sys.path``): the JSON event line, a
client whose ``done`` future ends the run, and the run itself (trust the
test CA, connect, wait for ``done`` with a time budget)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp.exceptions import IqError, PresenceError


def settle(done: asyncio.Future[None]) -> None:
    """Resolve ``done`` (once)."""
    if not done.done():
        done.set_result(None)


def emit(**event: Any) -> None:
    """One JSON event line on stdout (what the tests read)."""
    print(json.dumps(event), flush=True)


class Finishing(slixmpp.ClientXMPP):  # type: ignore[misc]
    """A client that reports its end once as ``{"event": "end", "why": …}``:
    ``finish("auth")`` on a failed authentication, ``on_start`` at
    ``session_start`` (subclasses define it)."""

    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password)
        self.done: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _e: self.finish("auth"))

    async def on_start(self, _event: object) -> None:
        raise NotImplementedError

    def finish(self, why: str) -> None:
        if not self.done.done():
            emit(event="end", why=why)
            settle(self.done)


class Commanded(Finishing):
    """A client driven line by line: once logged in it sends its presence,
    prints ``{"event": "session", "jid": …}`` and reads one JSON command a
    line on stdin (``{"op": …}``) for :meth:`command`, the ``n``-th; an
    iq or presence error is ``{"event": "fail", "id": n, "condition": …}``,
    a time-out ``condition: "timeout"``. ``quit`` or the end of stdin ends
    the stream (``{"event": "end", "why": "quit"}``)."""

    async def on_start(self, _event: object) -> None:
        self.send_presence()
        emit(event="session", jid=str(self.boundjid))
        self.task = asyncio.ensure_future(self.commands())

    async def command(self, n: int, op: str, cmd: dict[str, Any]) -> None:
        raise NotImplementedError

    async def commands(self) -> None:
        loop = asyncio.get_event_loop()
        n = 0
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            n += 1
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            try:
                await self.command(n, cmd["op"], cmd)
            except (IqError, PresenceError) as exc:
                emit(event="fail", id=n, condition=exc.condition)
            except TimeoutError:
                emit(event="fail", id=n, condition="timeout")
        self.disconnect()
        self.finish("quit")


async def connect_and_wait(
    client: slixmpp.ClientXMPP,
    host: str,
    port: str,
    cafile: str,
    timeout: float,
    done: asyncio.Future[Any] | None = None,
) -> bool:
    """Connect ``client`` to ``host:port`` trusting the test CA ``cafile``
    (slixmpp's defaults otherwise) and wait for ``done`` (the client's own
    if not given): whether it came within ``timeout`` seconds."""
    client.ca_certs = Path(cafile)
    try:
        client.connect(host=host, port=int(port))  # slixmpp >= 1.8.5
    except TypeError:
        client.connect((host, int(port)))  # Debian's 1.8.3
    try:
        await asyncio.wait_for(client.done if done is None else done, timeout)
    except TimeoutError:
        return False
    return True


async def run_finishing(client: Finishing, host: str, port: str, cafile: str) -> None:
    """:func:`connect_and_wait` for a :class:`Finishing` client; ``timeout`` ends it after 60 s."""
    if not await connect_and_wait(client, host, port, cafile, 60):
        client.finish("timeout")
