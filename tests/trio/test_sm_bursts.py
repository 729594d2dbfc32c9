"""XEP-0198 bursts on the wire (``[limits] unacked_burst``): a client that
acks is not cut because one large burst (its roster, a MAM page) went out
before it could answer the ``<r/>``; a client that never acks is still closed
with ``resource-constraint``, holding at most ``unacked_burst`` times
``max_unacked_bytes`` (docs/security.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from peer_support import run_peer
from test_limits import Started, chat, read_until, silent_client, start, with_limits
from test_limits import config as config  # the fixture

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.server.roster import StoredItem
from xmpp_trio.client import open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.services import open_database
from xmpp_trio.stores.roster import SqliteRosterStorage

#: The smallest max_unacked_bytes the loader accepts: bursts pass it easily.
LIMIT = 65536
CONTACTS = 1000
MESSAGES, SIZE = 50, 3000  # one MAM page of ~170 KB: past LIMIT, within 4 x LIMIT


def seed_roster(config: ServerConfig, owner: str, count: int) -> None:
    db = open_database(config)
    try:
        roster = SqliteRosterStorage(db)
        jid = JID.parse(owner)
        for i in range(count):
            item = RosterItem(JID.parse(f"contact{i:04d}@example.net"), f"Contact {i}")
            roster.put(jid, StoredItem(dataclasses.replace(item, subscription=Subscription.NONE)))
    finally:
        db.close()


@pytest.mark.integration
async def test_an_acking_slixmpp_client_survives_a_roster_and_a_mam_page_past_the_limit(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = dataclasses.replace(
        with_limits(server_config, max_unacked_bytes=LIMIT), mam=MamLimits(enabled=True)
    )
    assert config.limits.unacked_burst == 4  # the default
    seed_roster(config, "romeo@localhost", CONTACTS)
    with trio.fail_after(90):  # the time budget of the whole exchange
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            printed = await run_peer(
                [
                    "romeo@localhost/burst",
                    PASSWORDS["romeo"],
                    "127.0.0.1",
                    str(server.starttls_port),
                    str(server.ca_file),
                    "juliet@localhost",
                    str(MESSAGES),
                    str(SIZE),
                ],
                "slixmpp_burst.py",
            )
            errors = server.server.metrics.stream_errors
            nursery.cancel_scope.cancel()
    events = {e["event"]: e for e in printed}
    assert events.get("sm") == {"event": "sm", "enabled": True}, events
    assert events["roster"]["items"] == CONTACTS
    assert events["page"]["bodies"] == MESSAGES
    assert "pong" in events and events["end"]["why"] == "done", events
    cut = errors.labels(condition="resource-constraint")._value.get()  # type: ignore[attr-defined]
    assert cut == 0


async def test_a_client_that_never_acks_is_closed_within_the_burst_allowance(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    started: Started = await start(nursery, with_limits(config, max_unacked_bytes=LIMIT))
    cap = LIMIT * started.server.config.limits.unacked_burst
    size, count = 30000, 12  # 360 KB: past the cap of 4 x 64 KiB
    async with (
        silent_client(started, "juliet", sm=True, rcvbuf=1 << 20) as (_conn, stream),
        open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        for i in range(count):
            await romeo.send(chat("juliet@localhost/silent", f"big {i} " + "b" * size))
        received = await read_until(stream, b"</stream:stream>")
    assert b"<resource-constraint" in received
    delivered = received.count(b"big ")
    # Well past max_unacked_bytes (the cut before unacked_burst: 3 stanzas),
    # never past the burst allowance by more than the stanza that crossed it.
    assert delivered * size > 2 * LIMIT, delivered
    assert (delivered - 1) * size <= cap < count * size, delivered
