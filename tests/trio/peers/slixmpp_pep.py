"""PEP with slixmpp's default settings: romeo publishes his nick (XEP-0172),
avatar (XEP-0084), bookmarks (XEP-0402) and an OMEMO device list; juliet,
his contact, and romeo's second resource receive what their +notify caps ask.

Usage: slixmpp_pep.py HOST PORT CAFILE ROMEO_PASSWORD JULIET_PASSWORD

Prints ``NICK <nick>`` and ``AVATAR <id>`` when juliet is notified,
``BOOKMARK <room>`` when romeo's other resource is (twice: the XEP-0402
publish, then the XEP-0048 list set in private storage, which names a new
room), ``LEGACY <room> <name>`` for what XEP-0048 reads back, ``OMEMO ok`` for the
device list published with OMEMO's publish-options, ``PRECONDITION <condition>``
for the same options on a node configured otherwise, ``DONE`` or ``TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form
from slixmpp.plugins.xep_0048.stanza import Bookmarks
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NICK_NS = "http://jabber.org/protocol/nick"
BOOKMARKS = "urn:xmpp:bookmarks:1"
DEVICES = "eu.siacs.conversations.axolotl.devicelist"


def client(jid: str, password: str, cafile: str, plugins: list[str]) -> slixmpp.ClientXMPP:
    xmpp = slixmpp.ClientXMPP(jid, password)
    xmpp.ca_certs = Path(cafile)
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    return xmpp


def options(**fields: str) -> Form:
    form = Form()
    form["type"] = "submit"
    form.add_field(
        "FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options"
    )
    for var, value in fields.items():
        form.add_field(f"pubsub#{var}", value=value)
    return form


async def main() -> None:
    host, port, cafile, romeo_pw, juliet_pw = sys.argv[1:6]
    pep = [
        "xep_0030",
        "xep_0060",
        "xep_0115",
        "xep_0163",
        "xep_0084",
        "xep_0172",
        "xep_0402",
        "xep_0048",
    ]
    romeo = client("romeo@localhost/pep", romeo_pw, cafile, pep)
    other = client("romeo@localhost/other", romeo_pw, cafile, ["xep_0030", "xep_0115", "xep_0163"])
    juliet = client("juliet@localhost/pep", juliet_pw, cafile, pep)
    other.plugin["xep_0163"].add_interest(BOOKMARKS)
    loop = asyncio.get_running_loop()
    started = {name: loop.create_future() for name in ("romeo", "other", "juliet")}
    wanted = {
        "NICK": loop.create_future(),
        "AVATAR": loop.create_future(),
        "BOOKMARK": loop.create_future(),
    }
    romeo_seen: asyncio.Future[None] = loop.create_future()
    queries: dict[str, asyncio.Future[None]] = {}

    def on_available(presence: object) -> None:
        if presence["from"].bare == "romeo@localhost" and not romeo_seen.done():  # type: ignore[index]
            romeo_seen.set_result(None)

    def report(key: str, value: str) -> None:
        if not wanted[key].done():
            print(key, value, flush=True)
            wanted[key].set_result(value)

    juliet.add_event_handler(
        "user_nick_publish",
        lambda msg: report("NICK", msg["pubsub_event"]["items"]["item"]["payload"].text or ""),
    )
    juliet.add_event_handler(
        "avatar_metadata_publish",
        lambda msg: report("AVATAR", msg["pubsub_event"]["items"]["item"]["id"]),
    )

    def on_other_event(msg: object) -> None:
        items = msg["pubsub_event"]["items"]  # type: ignore[index]
        if items["node"] == BOOKMARKS:
            report("BOOKMARK", items["item"]["id"])

    other.add_event_handler("pubsub_publish", on_other_event)
    juliet.add_event_handler("presence_available", on_available)
    for name, xmpp in (("romeo", romeo), ("other", other), ("juliet", juliet)):
        queried = queries[name] = loop.create_future()

        def on_query(iq: object, queried: asyncio.Future[None] = queried) -> None:
            if iq["type"] == "get" and not queried.done():  # type: ignore[index]
                queried.set_result(None)

        xmpp.register_handler(
            Callback(
                "server caps query",
                MatchXPath("{jabber:client}iq/{http://jabber.org/protocol/disco#info}query"),
                on_query,
            )
        )

        async def on_start(
            _e: object,
            name: str = name,
            xmpp: slixmpp.ClientXMPP = xmpp,
            queried: asyncio.Future[None] = queried,
        ) -> None:
            # Advertise the final caps (slixmpp computes them in the background).
            await xmpp.plugin["xep_0115"].update_caps(broadcast=False)
            xmpp.send_presence()
            started[name].set_result(None)

        xmpp.add_event_handler("session_start", on_start)
        xmpp.connect(host=host, port=int(port))
    try:
        await asyncio.wait_for(asyncio.gather(*started.values()), 20)
        # The server asks one session per unknown caps hash (romeo and juliet
        # share theirs): once it was asked, two round trips on its stream
        # mean the server has the answer (same stream, in order).
        await asyncio.wait_for(queries["other"], 20)
        await asyncio.wait(
            [queries["romeo"], queries["juliet"]],
            timeout=20,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for name, xmpp in (("romeo", romeo), ("other", other), ("juliet", juliet)):
            if queries[name].done():
                for _ in range(2):
                    await xmpp.plugin["xep_0030"].get_info(jid="localhost")
        print("STARTED", flush=True)
        juliet.send_presence_subscription(pto="romeo@localhost")
        # Approved (romeo's default auto_authorize): romeo's presence reaches juliet.
        await asyncio.wait_for(romeo_seen, 20)
        print("SUBSCRIBED", flush=True)
        await romeo.plugin["xep_0172"].publish_nick("Romeo Montague")
        png = b"\x89PNG not really"
        await romeo.plugin["xep_0084"].publish_avatar(png)
        avatar_id = romeo.plugin["xep_0084"].generate_id(png)
        await romeo.plugin["xep_0084"].publish_avatar_metadata(
            [{"id": avatar_id, "type": "image/png", "bytes": len(png)}]
        )
        conference = ET.fromstring(
            f"<conference xmlns='{BOOKMARKS}' name='Verona' autojoin='true'><nick>R</nick></conference>"
        )
        await romeo.plugin["xep_0060"].publish(
            None,
            BOOKMARKS,
            id="verona@conference.localhost",
            payload=conference,
            options=options(
                persist_items="true",
                max_items="max",
                send_last_published_item="never",
                access_model="whitelist",
            ),
        )
        await asyncio.wait_for(wanted["BOOKMARK"], 20)
        # XEP-0402 #compat: a XEP-0048 client (slixmpp's xep_0048, private
        # storage) sees the PEP bookmark, and its own list reaches PEP.
        legacy = await romeo.plugin["xep_0048"].get_bookmarks()
        for conf in legacy["private"]["bookmarks"]["conferences"]:
            print("LEGACY", conf["jid"], conf["name"], flush=True)
        bookmarks = Bookmarks()
        bookmarks.add_conference("verona@conference.localhost", "R", name="Verona", autojoin=True)
        bookmarks.add_conference("capulet@conference.localhost", "R", name="Capulet")
        wanted["BOOKMARK"] = loop.create_future()
        await romeo.plugin["xep_0048"].set_bookmarks(bookmarks)
        await asyncio.wait_for(wanted["BOOKMARK"], 20)
        devices = ET.fromstring(
            "<list xmlns='eu.siacs.conversations.axolotl'><device id='7'/></list>"
        )
        await romeo.plugin["xep_0060"].publish(
            None,
            DEVICES,
            id="current",
            payload=devices,
            options=options(access_model="open", max_items="max"),
        )
        print("OMEMO ok", flush=True)
        await romeo.plugin["xep_0060"].publish(None, "urn:x:other", id="current", payload=devices)
        try:
            await romeo.plugin["xep_0060"].publish(
                None,
                "urn:x:other",
                id="current",
                payload=devices,
                options=options(access_model="open", max_items="max"),
            )
            print("PRECONDITION none", flush=True)
        except IqError as exc:
            app = [c.tag for c in exc.iq["error"].xml if "pubsub#errors" in c.tag]
            print("PRECONDITION", exc.iq["error"]["condition"], *app, flush=True)
        await asyncio.wait_for(asyncio.gather(*wanted.values()), 20)
        print("DONE", flush=True)
    except TimeoutError:
        print("TIMEOUT", flush=True)
    finally:
        for xmpp in (romeo, other, juliet):
            xmpp.disconnect()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
