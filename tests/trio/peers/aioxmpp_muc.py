"""aioxmpp (its MUCClient, default settings apart from trusting the test CA)
as a MUC client driven line by line, for the MUC wire tests.

Usage: aioxmpp_muc.py JID PASSWORD HOST PORT CAFILE

Reads one JSON command per line on stdin and prints one JSON event per line,
like slixmpp_muc.py: ``session``; per command ``ok``/``fail``; ``groupchat``
messages, ``role`` changes of occupants. Commands: ``join`` (room, nick),
``say`` (room, body: ``ok`` once the room echoes it, ``fail`` with the
error condition if the room refuses it), ``leave`` (room), ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aioxmpp
import aioxmpp.muc
import aioxmpp.tracking
from aioxmpp_common import emit, make_client


async def main() -> None:
    jid, password, host, port, cafile = sys.argv[1:6]
    client = make_client(jid, password, host, port, cafile)
    muc = client.summon(aioxmpp.MUCClient)
    rooms: dict[str, aioxmpp.muc.Room] = {}
    loop = asyncio.get_event_loop()
    async with client.connected():
        emit(event="session", jid=str(client.local_jid))
        n = 0
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            n += 1
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "quit":
                break
            if op == "join":
                room, joined = muc.join(
                    aioxmpp.JID.fromstr(cmd["room"]), cmd["nick"], autorejoin=False
                )
                rooms[cmd["room"]] = room

                def on_message(
                    message: aioxmpp.Message, member: Any, source: Any, **kw: Any
                ) -> None:
                    if message.body:
                        emit(
                            event="groupchat",
                            nick=member.nick if member else None,
                            body=message.body.any(),
                        )

                def on_role(presence: Any, member: Any, **kw: Any) -> None:
                    emit(event="role", nick=member.nick, role=member.role)

                room.on_message.connect(on_message)
                room.on_muc_role_changed.connect(on_role)
                try:
                    await asyncio.wait_for(joined, 15)
                except aioxmpp.errors.XMPPError as exc:
                    emit(event="fail", id=n, condition=exc.condition.value[1])
                    continue
                emit(event="ok", id=n, role=room.me.role, affiliation=room.me.affiliation)
            elif op == "say":
                room = rooms[cmd["room"]]
                msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
                msg.body[None] = cmd["body"]
                done: asyncio.Future[str] = loop.create_future()
                tracker = room.send_message_tracked(msg)[1]

                def on_state(
                    state: aioxmpp.tracking.MessageState,
                    response: Any = None,
                    done: asyncio.Future[str] = done,
                ) -> None:
                    if (
                        state == aioxmpp.tracking.MessageState.DELIVERED_TO_RECIPIENT
                        and not done.done()
                    ):
                        done.set_result("ok")
                    elif state == aioxmpp.tracking.MessageState.ERROR and not done.done():
                        done.set_result(
                            response.error.condition.value[1] if response is not None else "error"
                        )

                tracker.on_state_changed.connect(on_state)
                result = await asyncio.wait_for(done, 15)
                if result == "ok":
                    emit(event="ok", id=n)
                else:
                    emit(event="fail", id=n, condition=result)
            elif op == "leave":
                await rooms.pop(cmd["room"]).leave()
                emit(event="ok", id=n)
    emit(event="end", why="quit")


if __name__ == "__main__":
    asyncio.run(main())
