"""A slixmpp client (default settings, xep_0050 and xep_0133 plugins) that
runs the server's ad-hoc commands and prints one JSON line per answer.

Usage: slixmpp_adhoc.py JID PASSWORD HOST PORT CAFILE MODE

MODE ``admin``: lists the commands, gets the online users, announces
"Feast at nine", adds nurse@localhost and deletes romeo@localhost.
MODE ``user``: tries each of those and prints the error condition.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import slixmpp
from peer_common import connect_and_wait, settle
from slixmpp.exceptions import IqError

ADMIN = "http://jabber.org/protocol/admin#"


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def run(client: slixmpp.ClientXMPP, mode: str) -> None:
    server = client.boundjid.domain
    adhoc = client["xep_0050"]
    items = await adhoc.get_commands(server)
    say(event="commands", nodes=[i[1] for i in items["disco_items"]["items"]])

    async def command(node: str, values: dict[str, Any] | None) -> dict[str, Any]:
        try:
            first = await adhoc.send_command(server, ADMIN + node)
            if values is None:
                form = first["command"]["form"]
                return {"status": first["command"]["status"], "values": form.get_values()}
            form = client["xep_0004"].make_form(ftype="submit")
            form.add_field(
                var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/admin"
            )
            for var, value in values.items():
                form.add_field(var=var, value=value)
            done = await adhoc.send_command(
                server,
                ADMIN + node,
                action="complete",
                payload=form,
                sessionid=first["command"]["sessionid"],
            )
            return {"status": done["command"]["status"]}
        except IqError as exc:
            return {"error": exc.iq["error"]["condition"]}

    say(event="online", **await command("get-online-users-list", None))
    say(event="announce", **await command("announce", {"announcement": "Feast at nine"}))
    say(
        event="add",
        **await command("add-user", {"accountjid": "nurse@localhost", "password": "N1ght-Nurse"}),
    )
    say(event="delete", **await command("delete-user", {"accountjids": ["romeo@localhost"]}))


async def main() -> None:
    jid, password, host, port, cafile, mode = sys.argv[1:7]
    client = slixmpp.ClientXMPP(jid, password)
    client.register_plugin("xep_0004")
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0050")
    client.register_plugin("xep_0133")
    done = asyncio.get_running_loop().create_future()

    async def on_session(_event: object) -> None:
        try:
            await run(client, mode)
        finally:
            say(event="end")
            client.disconnect()
            settle(done)

    client.add_event_handler("session_start", on_session)
    if not await connect_and_wait(client, host, port, cafile, 30, done):
        say(event="timeout")


if __name__ == "__main__":
    asyncio.run(main())
