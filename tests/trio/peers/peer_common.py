"""What the slixmpp peer scripts of this folder share (imported by them:
each runs with this folder first on ``sys.path``): the JSON event line, a
client whose ``done`` future ends the run, and the run itself (trust the
test CA, connect, wait for ``done`` with a time budget)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import slixmpp


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
