"""The Trio MAM catch-up helper (xmpp_trio.mam) against the bundled server
on loopback: a device pages its archive from the start and from the last id
it saw, across several pages, with no gap and no duplicate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trustme
from conftest import start_running
from test_im_client import im_session

from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.stanza import MessageType, make_message
from xmpp_sansio.xml import ns
from xmpp_trio.client import IqErrorResponse
from xmpp_trio.config import ServerConfig
from xmpp_trio.mam import catch_up


def body(result: object) -> str:
    return result.message.findtext(f"{{{ns.CLIENT}}}body") or ""  # type: ignore[attr-defined]


async def test_a_device_catches_up_from_the_start_and_from_its_last_seen_id(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    archiving = dataclasses.replace(server_config, mam=MamLimits(enabled=True))  # off by default
    server = await start_running(archiving, ca, tmp_path, nursery)
    with trio.fail_after(20):
        async with im_session(server, "romeo@localhost/garden") as romeo:
            for i in range(7):
                await romeo.im.send(
                    make_message(to="juliet@localhost", type=MessageType.CHAT, body=f"m{i}")
                )
            async with im_session(server, "juliet@localhost/phone") as juliet:
                everything = await catch_up(juliet.im, None, page=3)
                assert [body(r) for r in everything] == [f"m{i}" for i in range(7)]
                assert len({r.id for r in everything}) == 7
                since = everything[3].id
                rest = await catch_up(juliet.im, since, page=2)
                assert [body(r) for r in rest] == ["m4", "m5", "m6"]
                assert await catch_up(juliet.im, everything[-1].id) == []
                with pytest.raises(IqErrorResponse):
                    await catch_up(juliet.im, "no-such-id")
