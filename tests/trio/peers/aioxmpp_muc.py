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
import OpenSSL.crypto
import OpenSSL.SSL
from aioxmpp.security_layer import default_ssl_context


def restore_pyopenssl_extensions() -> None:
    """aioxmpp 0.13.3 (its last release) checks the server's name with
    pyOpenSSL's ``X509.get_extension``, which pyOpenSSL 24.3 removed: put
    it back, read through ``cryptography``, so that aioxmpp's own PKIX
    verification runs as written (nothing else is changed)."""
    x509_class = OpenSSL.crypto.X509
    if hasattr(x509_class, "get_extension"):
        return
    from cryptography.x509.oid import ExtensionOID

    class Extension:
        def __init__(self, ext: Any) -> None:
            self.ext = ext

        def get_short_name(self) -> bytes:
            if self.ext.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
                return b"subjectAltName"
            return str(self.ext.oid.dotted_string).encode()

        def get_data(self) -> bytes:
            return bytes(self.ext.value.public_bytes())

    def get_extension_count(self: Any) -> int:
        return len(self.to_cryptography().extensions)

    def get_extension(self: Any, index: int) -> Extension:
        return Extension(self.to_cryptography().extensions[index])

    x509_class.get_extension_count = get_extension_count
    x509_class.get_extension = get_extension


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def main() -> None:
    jid, password, host, port, cafile = sys.argv[1:6]
    restore_pyopenssl_extensions()

    def ssl_context() -> OpenSSL.SSL.Context:
        ctx = default_ssl_context()
        ctx.load_verify_locations(cafile)
        return ctx

    client = aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr(jid),
        aioxmpp.make_security_layer(password, ssl_context_factory=ssl_context),
        override_peer=[(host, int(port), aioxmpp.connector.STARTTLSConnector())],
    )
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
