"""One write per receiving session per scheduler pass (issue 24).

A read's batch (``XMPPServer.end_batch``) used to write each receiver's
output at once: with many clients and random peers a receiver rarely gets
two stanzas from one read, so every delivered stanza cost a TLS record and a
``send`` system call of its own. Here the receivers of every batch are
collected and written by one task that Trio runs in its next pass, after the
other readers that were ready in the same pass: under load a receiver's
stanzas from many senders leave in one write. What a write confirms
(XEP-0198 receipts) and what it waits for (storage commits, done by
``end_batch`` first) are unchanged; a stanza is delayed by one scheduler
pass at most. Without a nursery (tests driving a server by hand) every
batch is written at once, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["WriteCoalescer"]


class WriteCoalescer:
    """Receivers whose output waits for the next scheduler pass."""

    def __init__(self) -> None:
        self._due: dict[Session, None] = {}  # insertion order: first come, first written
        self._wake = trio.Event()
        self._running = False

    def push(self, sessions: Iterable[Session], nursery: trio.Nursery | None) -> None:
        """Write ``sessions``' output at the next pass (at once without ``nursery``)."""
        if not self._running:
            if nursery is None:
                for session in sessions:
                    session.push()
                return
            self._running = True
            nursery.start_soon(self._run)
        self._due.update(dict.fromkeys(sessions))
        self._wake.set()

    def flush(self) -> None:
        """Write everything due now."""
        due, self._due = self._due, {}
        for session in due:
            session.push()

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                self.flush()
        finally:
            self._running = False
            self.flush()
