"""Message archives with a real third-party client over loopback TLS (issue
17's "done when"): slixmpp's xep_0313 plugin, default settings, retrieves
and iterates a user's archive, both ways. aioxmpp has no MAM support
(it ships RSM only), so it is not tested here."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, start_running

from xmpp_sansio.server.mam.service import MamLimits
from xmpp_trio.config import ServerConfig

pytestmark = pytest.mark.integration

PEER = Path(__file__).parent / "peers" / "slixmpp_mam.py"


async def test_slixmpp_iterates_and_retrieves_its_archive_in_both_directions(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    count = 12
    with trio.fail_after(90):  # the time budget of the whole exchange
        async with trio.open_nursery() as nursery:
            archiving = dataclasses.replace(server_config, mam=MamLimits(enabled=True))
            server = await start_running(archiving, ca, tmp_path, nursery)
            result = await trio.run_process(
                [
                    sys.executable,
                    str(PEER),
                    "romeo@localhost/mam",
                    PASSWORDS["romeo"],
                    "127.0.0.1",
                    str(server.starttls_port),
                    str(server.ca_file),
                    "juliet@localhost",
                    str(count),
                ],
                capture_stdout=True,
                check=False,
            )
            nursery.cancel_scope.cancel()
    events = {e["event"]: e for e in map(json.loads, result.stdout.decode().splitlines())}
    expected = [f"m{i}" for i in range(count)]
    assert events["end"]["why"] == "done", events
    assert events["iterate"]["bodies"] == expected
    assert events["reverse"]["bodies"] == expected[::-1]
    assert events["retrieve"]["count"] == count, events["retrieve"]
    assert events["retrieve"]["complete"] in (True, "true"), events["retrieve"]
