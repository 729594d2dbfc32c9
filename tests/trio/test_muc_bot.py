"""The seed's echo bot (examples/echo_bot.py's handler) joined to a room
answers there (issue 14), and the Trio client helpers (xmpp_trio.muc) drive
a room on the real server."""

from __future__ import annotations

import importlib.util
import ssl
import sys
from pathlib import Path
from typing import Any

import trio
from conftest import PASSWORDS, RunningServer
from test_muc_clients import Peer

from xmpp_sansio.jid import JID
from xmpp_trio.bot import Bot, BotConfig
from xmpp_trio.client import open_client
from xmpp_trio.muc import JoinError, Rooms

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROOM = "lobby@conference.localhost"
WAIT = 30


def seed_echo() -> Any:
    spec = importlib.util.spec_from_file_location("echo_bot_example", EXAMPLES / "echo_bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.SeedEcho


def room_bot(server: RunningServer, room: JID) -> Bot:
    """juliet@localhost as a bot whose file names ``room``."""
    config = BotConfig(
        jid=JID.parse("juliet@localhost"),
        password=PASSWORDS["juliet"],
        host="127.0.0.1",
        port=server.starttls_port,
        ca_file=server.ca_file,
        rooms=(room,),
        keepalive=0,
    )
    return Bot(config)


async def test_the_seed_echo_bot_joined_to_a_room_answers_there(server: RunningServer) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            romeo = await Peer.start(nursery, "slixmpp_muc.py", "romeo", PASSWORDS["romeo"], server)
            assert (await romeo.do("join", room=ROOM, nick="romeo"))["event"] == "ok"
            assert (await romeo.do("configure", room=ROOM, fields={}))["event"] == "ok"
            bot = room_bot(server, JID.parse(ROOM))
            bot.add_handler(seed_echo())
            await nursery.start(bot.run)
            await romeo.expect(lambda e: e["event"] == "presence" and e["nick"] == "juliet")
            assert (await romeo.do("say", room=ROOM, body="juliet: what light"))["event"] == "ok"
            answer = await romeo.expect(
                lambda e: e["event"] == "groupchat" and e["nick"] == "juliet"
            )
            assert answer["body"] == "romeo: You sent: juliet: what light"
            # Not addressed to the bot: heard, not answered; the next answer is to the next mention.
            await romeo.do("say", room=ROOM, body="nobody here?")
            await romeo.do("say", room=ROOM, body="juliet, again")
            answer = await romeo.expect(
                lambda e: e["event"] == "groupchat" and e["nick"] == "juliet"
            )
            assert answer["body"] == "romeo: You sent: juliet, again"
            await romeo.quit()
            nursery.cancel_scope.cancel()


async def test_the_trio_room_helpers_on_the_real_server(server: RunningServer) -> None:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    room = JID.parse("garden@conference.localhost")
    with trio.fail_after(WAIT):
        async with (
            open_client(
                "romeo@localhost/trio",
                PASSWORDS["romeo"],
                host="127.0.0.1",
                port=server.starttls_port,
                ssl_context=context,
            ) as romeo,
            open_client(
                "juliet@localhost/trio",
                PASSWORDS["juliet"],
                host="127.0.0.1",
                port=server.starttls_port,
                ssl_context=context,
            ) as juliet,
            trio.open_nursery() as nursery,
        ):
            rooms = {"romeo": Rooms(romeo), "juliet": Rooms(juliet)}
            heard: list[str] = []
            got_message = trio.Event()

            async def pump(name: str, client: Any) -> None:
                async for stanza in client:
                    rooms[name].feed(stanza)
                    body = stanza.findtext("{jabber:client}body")
                    if name == "juliet" and body:
                        heard.append(body)
                        got_message.set()

            nursery.start_soon(pump, "romeo", romeo)
            nursery.start_soon(pump, "juliet", juliet)
            view = await rooms["romeo"].join(room, "romeo")
            assert view.me is not None and view.me.affiliation.value == "owner"
            await rooms["romeo"].configure(room, {"muc#roomconfig_membersonly": True})
            form = await rooms["romeo"].get_config(room)
            assert form.bool_value("muc#roomconfig_membersonly") is True
            try:
                await rooms["juliet"].join(room, "juliet")
            except JoinError as refused:
                assert refused.condition == "registration-required"
            else:
                raise AssertionError("a non-member entered a members-only room")
            await rooms["romeo"].set_affiliation(room, JID.parse("juliet@localhost"), "member")
            assert await rooms["romeo"].get_affiliations(room, "member") == [
                JID.parse("juliet@localhost")
            ]
            joined = await rooms["juliet"].join(room, "juliet", maxstanzas=0)
            assert set(joined.occupants) == {"romeo", "juliet"}
            await rooms["romeo"].say(room, "But soft")
            await got_message.wait()
            assert heard == ["But soft"]
            nursery.cancel_scope.cancel()


async def test_a_bot_whose_join_creates_the_room_opens_it_as_an_instant_room(
    server: RunningServer,
) -> None:
    room = JID.parse("new@conference.localhost")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    bot = room_bot(server, room)
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(bot.run)
            view = await bot.rooms.wait_joined(room)
            assert view.me is not None and view.me.affiliation.value == "owner"
            async with open_client(
                "romeo@localhost/trio",
                PASSWORDS["romeo"],
                host="127.0.0.1",
                port=server.starttls_port,
                ssl_context=context,
            ) as romeo:
                rooms = Rooms(romeo)

                async def pump() -> None:
                    async for stanza in romeo:
                        rooms.feed(stanza)

                nursery.start_soon(pump)
                # The bot's configuration (an instant room) unlocks the room: a
                # locked room answers item-not-found (XEP-0045 §10.1.1).
                # Until then romeo's join is refused; each retry is a round trip.
                while True:
                    try:
                        joined = await rooms.join(room, "romeo")
                        break
                    except JoinError as refused:
                        assert refused.condition == "item-not-found"
                assert set(joined.occupants) == {"juliet", "romeo"}
            nursery.cancel_scope.cancel()
