"""Message archives with real third-party clients over loopback TLS (issue
17's "done when"): slixmpp's xep_0313 plugin, default settings, retrieves
and iterates a user's archive, both ways. aioxmpp 0.13 ships no MAM
service, only the parts a query is made of (IQs, XEP-0059 result sets,
XEP-0004 forms, XEP-0297 forwarding): peers/aioxmpp_mam.py declares the
three XEP-0313 elements on them and pages the archive both ways."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running
from peer_support import require_aioxmpp, run_peer

from xmpp_sansio.server.mam.service import MamLimits
from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.integration

COUNT = 12  # messages sent, then read back: pages of 5 are 5 + 5 + 2


async def archive_events(
    config: ServerConfig, ca: trustme.CA, tmp_path: Path, script: str, resource: str
) -> dict[str, dict[str, Any]]:
    """Start an archiving server, run ``peers/script`` as romeo/``resource``
    (it sends :data:`COUNT` messages to juliet, then reads its archive): its
    events by name."""
    with trio.fail_after(90):  # the time budget of the whole exchange
        async with trio.open_nursery() as nursery:
            archiving = dataclasses.replace(config, mam=MamLimits(enabled=True))
            server = await start_running(archiving, ca, tmp_path, nursery)
            events = await run_peer(
                [
                    f"romeo@localhost/{resource}",
                    PASSWORDS["romeo"],
                    "127.0.0.1",
                    str(server.starttls_port),
                    str(server.ca_file),
                    "juliet@localhost",
                    str(COUNT),
                ],
                script,
            )
            nursery.cancel_scope.cancel()
    return {e["event"]: e for e in events}


async def test_slixmpp_iterates_and_retrieves_its_archive_in_both_directions(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    events = await archive_events(server_config, ca, tmp_path, "slixmpp_mam.py", "mam")
    count = COUNT
    expected = [f"m{i}" for i in range(count)]
    assert events["end"]["why"] == "done", events
    assert events["iterate"]["bodies"] == expected
    assert events["reverse"]["bodies"] == expected[::-1]
    assert events["retrieve"]["count"] == count, events["retrieve"]
    assert events["retrieve"]["complete"] in (True, "true"), events["retrieve"]


async def test_aioxmpp_pages_its_archive_both_ways_and_filters_by_peer(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    require_aioxmpp()
    by_event = await archive_events(server_config, ca, tmp_path, "aioxmpp_mam.py", "aioxmpp")
    count = COUNT
    expected = [f"m{i}" for i in range(count)]
    assert "end" in by_event, by_event
    # pages of 5 after the previous page's last id: 5 + 5 + 2, no gap, no duplicate
    assert by_event["forward"] == {"event": "forward", "bodies": expected, "pages": 3}
    assert by_event["reverse"] == {"event": "reverse", "bodies": expected[::-1], "pages": 3}
    assert by_event["with"] == {
        "event": "with",
        "count": count,
        "complete": True,
        "bodies": expected,
    }
