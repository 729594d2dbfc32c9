"""aioxmpp's ad-hoc client (aioxmpp.adhoc, default settings apart from
trusting the test CA) running the server's XEP-0133 commands. Prints one
JSON line per step.

Usage: aioxmpp_adhoc.py JID PASSWORD HOST PORT CAFILE MODE

MODE ``admin``: lists the commands, gets the online users, announces
"Balcony at dawn", adds friar@localhost and deletes benvolio@localhost.
MODE ``user``: tries each and prints the error condition.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aioxmpp
import aioxmpp.adhoc
import aioxmpp.errors
import aioxmpp.forms
from aioxmpp_common import emit as say
from aioxmpp_common import make_client

ADMIN = "http://jabber.org/protocol/admin#"


async def run(client: Any, node: str, values: dict[str, list[str]] | None) -> dict[str, Any]:
    adhoc = client.summon(aioxmpp.adhoc.AdHocClient)
    server = aioxmpp.JID.fromstr("localhost")
    try:
        session = await adhoc.execute(server, ADMIN + node)
    except aioxmpp.errors.XMPPError as exc:
        return {"error": exc.condition.value[1]}
    try:
        form = session.first_payload
        if values is None:
            return {
                "status": session.status.value,
                "values": {f.var: list(f.values) for f in form.fields if f.var},
            }
        form.type_ = aioxmpp.forms.DataType.SUBMIT
        for field in form.fields:
            if field.var in values:
                field.values[:] = values[field.var]
        await session.proceed(action=aioxmpp.adhoc.ActionType.COMPLETE, payload=form)
        return {"status": session.status.value}
    finally:
        await session.close()


async def main() -> None:
    jid, password, host, port, cafile, _mode = sys.argv[1:7]  # admin or user: same steps
    client = make_client(jid, password, host, port, cafile)
    async with client.connected():
        adhoc = client.summon(aioxmpp.adhoc.AdHocClient)
        items = await adhoc.get_commands(aioxmpp.JID.fromstr("localhost"))
        say(event="commands", nodes=[item.node for item in items])
        say(event="online", **await run(client, "get-online-users-list", None))
        say(
            event="announce", **await run(client, "announce", {"announcement": ["Balcony at dawn"]})
        )
        say(
            event="add",
            **await run(
                client, "add-user", {"accountjid": ["friar@localhost"], "password": ["L4urence"]}
            ),
        )
        say(
            event="delete",
            **await run(client, "delete-user", {"accountjids": ["benvolio@localhost"]}),
        )
    say(event="end")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), 60))
