"""PEP with aioxmpp (default settings apart from trusting the test CA):
romeo publishes his avatar (its AvatarService, XEP-0084), nick (XEP-0172)
and a XEP-0402 bookmark with the publish-options XEP-0402 §3.4 asks for;
juliet, his contact, claims the avatar and nick nodes (+notify), romeo's
second resource the bookmarks node.

Usage: aioxmpp_pep.py HOST PORT CAFILE ROMEO_PASSWORD JULIET_PASSWORD

Prints ``READY`` once the three sessions are up and juliet is subscribed to
romeo's presence, then waits for a line on stdin (the test checks the
server knows the clients' caps) before publishing; prints ``NICK <nick>``,
``AVATAR <id>``, ``BOOKMARK <room>`` as they arrive, then ``DONE`` (or
``TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from typing import Any

import aioxmpp
import aioxmpp.avatar
import aioxmpp.forms
import aioxmpp.pep
import aioxmpp.pubsub.xso
import aioxmpp.xso
from aioxmpp_common import make_client

NICK = "http://jabber.org/protocol/nick"
BOOKMARKS = "urn:xmpp:bookmarks:1"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"


@aioxmpp.pubsub.xso.as_payload_class
class Nick(aioxmpp.xso.XSO):  # type: ignore[misc]
    TAG = (NICK, "nick")
    text = aioxmpp.xso.Text(default=None)


@aioxmpp.pubsub.xso.as_payload_class
class Conference(aioxmpp.xso.XSO):  # type: ignore[misc]
    TAG = (BOOKMARKS, "conference")
    name = aioxmpp.xso.Attr("name", default=None)
    autojoin = aioxmpp.xso.Attr("autojoin", default="false")


def publish_options(**fields: str) -> aioxmpp.forms.Data:
    data = aioxmpp.forms.Data(aioxmpp.forms.DataType.SUBMIT)
    data.fields.append(
        aioxmpp.forms.Field(
            var="FORM_TYPE", type_=aioxmpp.forms.FieldType.HIDDEN, values=[PUBLISH_OPTIONS]
        )
    )
    for var, value in fields.items():
        data.fields.append(aioxmpp.forms.Field(var=f"pubsub#{var}", values=[value]))
    return data


async def main() -> None:
    host, port, cafile, romeo_pw, juliet_pw = sys.argv[1:6]
    loop = asyncio.get_running_loop()
    romeo = make_client("romeo@localhost/aioxmpp", romeo_pw, host, port, cafile)
    other = make_client("romeo@localhost/other", romeo_pw, host, port, cafile)
    juliet = make_client("juliet@localhost/aioxmpp", juliet_pw, host, port, cafile)
    wanted = {key: loop.create_future() for key in ("NICK", "AVATAR", "BOOKMARK")}

    def report(key: str, value: str) -> None:
        if not wanted[key].done():
            print(key, value, flush=True)
            wanted[key].set_result(value)

    romeo_avatar = romeo.summon(aioxmpp.avatar.AvatarService)
    romeo_avatar.synchronize_vcard = False
    romeo_pubsub = romeo.summon(aioxmpp.PubSubClient)
    romeo_roster = romeo.summon(aioxmpp.RosterClient)

    def on_subscribe(stanza: Any) -> None:
        romeo_roster.approve(stanza.from_.bare())

    romeo_roster.on_subscribe.connect(on_subscribe)

    juliet_avatar = juliet.summon(aioxmpp.avatar.AvatarService)
    juliet_avatar.on_metadata_changed.connect(
        lambda jid, metadata: report("AVATAR", metadata[0].id_) if metadata else None
    )
    nick_claim = juliet.summon(aioxmpp.pep.PEPClient).claim_pep_node(NICK, notify=True)
    nick_claim.on_item_publish.connect(
        lambda jid, node, item, message=None: report("NICK", item.registered_payload.text)
    )
    romeo_seen = loop.create_future()

    def on_presence(stanza: Any) -> None:
        # aioxmpp disconnects a handler that returns a true value: return None.
        available = stanza.type_ == aioxmpp.PresenceType.AVAILABLE
        romeo_jid = aioxmpp.JID.fromstr("romeo@localhost")
        if available and stanza.from_.bare() == romeo_jid and not romeo_seen.done():
            romeo_seen.set_result(None)

    juliet.stream.on_presence_received.connect(on_presence)
    juliet_roster = juliet.summon(aioxmpp.RosterClient)

    bookmark_claim = other.summon(aioxmpp.pep.PEPClient).claim_pep_node(BOOKMARKS, notify=True)
    bookmark_claim.on_item_publish.connect(
        lambda jid, node, item, message=None: report("BOOKMARK", item.id_)
    )

    try:
        async with romeo.connected(), other.connected(), juliet.connected():
            juliet_roster.subscribe(aioxmpp.JID.fromstr("romeo@localhost"))
            await asyncio.wait_for(romeo_seen, 20)
            print("READY", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            png = b"\x89PNG not really an image"
            avatar = aioxmpp.avatar.AvatarSet()
            avatar.add_avatar_image("image/png", image_bytes=png)
            await romeo_avatar.publish_avatar_set(avatar)
            print("AVATAR_ID", hashlib.sha1(png).hexdigest(), flush=True)
            nick = Nick()
            nick.text = "Romeo Montague"
            await romeo_pubsub.publish(None, NICK, nick, id_="current")
            conference = Conference()
            conference.name = "Verona"
            conference.autojoin = "true"
            # To the account's bare JID (XEP-0163 §6): aioxmpp asks that JID's
            # disco#info for publish-options before it sends them.
            await romeo_pubsub.publish(
                romeo.local_jid.bare(),
                BOOKMARKS,
                conference,
                id_="verona@conference.localhost",
                publish_options=publish_options(
                    persist_items="true",
                    max_items="max",
                    send_last_published_item="never",
                    access_model="whitelist",
                ),
            )
            await asyncio.wait_for(asyncio.gather(*wanted.values()), 20)
            print("DONE", flush=True)
    except TimeoutError:
        print("TIMEOUT", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
