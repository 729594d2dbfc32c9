"""A slixmpp client (default settings; xep_0050, xep_0054, xep_0055) for the
user directory's test. Prints one JSON line per step.

Usage: slixmpp_vjud.py JID PASSWORD HOST PORT CAFILE MODE

MODE ``publish``: publishes a vCard (Romeo Montague) and opts in to the
directory with the ``visibility`` command at vjud.<domain>.
MODE ``search``: searches the directory for the family name "montague".
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import slixmpp
from peer_common import connect_and_wait, settle
from slixmpp.exceptions import IqError


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def publish(client: slixmpp.ClientXMPP, directory: str) -> None:
    vcard = client["xep_0054"].make_vcard()
    vcard["N"]["GIVEN"] = "Romeo"
    vcard["N"]["FAMILY"] = "Montague"
    vcard["NICKNAME"] = "rom"
    await client["xep_0054"].publish_vcard(vcard)
    adhoc = client["xep_0050"]
    first = await adhoc.send_command(directory, "visibility")
    form = client["xep_0004"].make_form(ftype="submit")
    form.add_field(var="listed", value=True)
    done = await adhoc.send_command(
        directory,
        "visibility",
        action="complete",
        payload=form,
        sessionid=first["command"]["sessionid"],
    )
    say(event="listed", status=done["command"]["status"])


async def search(client: slixmpp.ClientXMPP, directory: str) -> None:
    iq = client["xep_0055"].make_search_iq(ito=directory)
    iq["search"]["form"].add_field(var="last", value="montague")
    try:
        result = await iq.send()
    except IqError as exc:
        say(event="found", error=exc.iq["error"]["condition"])
        return
    items = result["search"]["form"].get_items()
    say(event="found", items=[dict(item) for item in items])


async def main() -> None:
    jid, password, host, port, cafile, mode = sys.argv[1:7]
    client = slixmpp.ClientXMPP(jid, password)
    for plugin in ("xep_0004", "xep_0030", "xep_0050", "xep_0054", "xep_0055"):
        client.register_plugin(plugin)
    done = asyncio.get_running_loop().create_future()

    async def on_session(_event: object) -> None:
        directory = f"vjud.{client.boundjid.domain}"
        try:
            await (publish if mode == "publish" else search)(client, directory)
        except Exception as exc:
            say(event="failed", error=repr(exc))
        finally:
            client.disconnect()
            settle(done)

    client.add_event_handler("session_start", on_session)
    if not await connect_and_wait(client, host, port, cafile, 30, done):
        say(event="timeout")


if __name__ == "__main__":
    asyncio.run(main())
