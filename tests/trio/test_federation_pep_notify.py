"""PEP ``+notify`` across servers (XEP-0163 §4.3.1 with XEP-0115): two of
our servers on loopback (test_federation_wire's harness). romeo@b.test has
juliet@a.test's presence and she has his; his client (IMClient, its caps
naming ``tune+notify``) goes online; a.test asks his resource for the
disco#info of the unknown hash over the link, verifies it (XEP-0115 §5.4),
then sends him juliet's last tune and her next publish, with no explicit
subscription. A remote resource whose caps lack ``+notify``, or that has no
presence subscription, gets nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import trio
import trustme
from conftest import RunningServer
from test_federation_wire import (
    EVENT,
    TUNE,
    WAIT,
    C,
    chat,
    client,
    exchange_between,
    next_stanza,
    pep_publish,
    two_servers,
)

from xmpp_sansio.jid import JID
from xmpp_sansio.server.caps import CapsService
from xmpp_trio.client import Client
from xmpp_trio.im import IMClient

NOTIFY = TUNE + "+notify"


async def subscribe_both(juliet: Client, romeo: Client) -> None:
    """juliet and romeo each receive the other's presence (RFC 6121 §3)."""
    await exchange_between(romeo, "romeo@b.test", juliet, "juliet@a.test")
    await juliet.send(ET.Element(C + "presence", {"to": "romeo@b.test", "type": "subscribe"}))
    await next_stanza(romeo, "presence", type="subscribe")
    await romeo.send(ET.Element(C + "presence", {"to": "juliet@a.test", "type": "subscribed"}))


async def tune_event(im: IMClient) -> tuple[str | None, bool]:
    """The next tune notification from juliet: its title, and whether it
    carries a <delay/> (a last item, XEP-0060 §6.1.7)."""
    with trio.fail_after(WAIT):
        async for stanza in im.stanzas():
            items = stanza.find(f"{EVENT}event/{EVENT}items")
            if stanza.tag != C + "message" or items is None:
                continue
            assert stanza.get("from") == "juliet@a.test" and items.get("node") == TUNE
            title = items.findtext(f"{EVENT}item/{{{TUNE}}}tune/{{{TUNE}}}title")
            return title, stanza.find("{urn:xmpp:delay}delay") is not None
    raise AssertionError("romeo's stream ended")


async def linked(
    tmp_path: Path, nursery: trio.Nursery
) -> tuple[RunningServer, RunningServer, CapsService]:
    """a.test and b.test over s2s, and a.test's caps service."""
    ca = trustme.CA()
    a, b = await two_servers(tmp_path, nursery, a_ca=ca, b_ca=ca, trusted=ca)
    (caps,) = [s for s in a.router.services if isinstance(s, CapsService)]
    return a, b, caps


async def test_a_remote_contact_with_tune_notify_caps_gets_the_last_and_next_tune(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    a, b, caps = await linked(tmp_path, nursery)
    async with client(a, "juliet@a.test") as juliet, client(b, "romeo@b.test") as romeo:
        await subscribe_both(juliet, romeo)
        await juliet.request(pep_publish("first"))
        async with IMClient(romeo, features=(NOTIFY,)) as im:
            await im.send_presence()  # with caps (XEP-0115 §4): unknown to a.test
            assert await tune_event(im) == ("first", True)
            full = JID.parse(str(romeo.jid))
            assert NOTIFY in caps.features_of(full)  # asked over the link, verified
            assert caps.remote_owners(full) == {JID.parse("juliet@a.test")}
            await juliet.request(pep_publish("Gloria"))
            assert await tune_event(im) == ("Gloria", False)
            # Gone (RFC 6121 §4.5.3): forgotten, and the next publish is not sent.
            await im.send_unavailable()
            with trio.fail_after(WAIT):
                while caps.remote_owners(full):
                    await trio.sleep(0.01)
            assert caps.remote_resources(JID.parse("juliet@a.test"), full.bare) == []


async def test_remote_resources_without_notify_or_without_a_subscription_get_nothing(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    a, b, caps = await linked(tmp_path, nursery)
    async with (
        client(a, "juliet@a.test") as juliet,
        client(b, "romeo@b.test") as romeo,
        client(b, "juliet@b.test") as stranger,
    ):
        await subscribe_both(juliet, romeo)
        await juliet.request(pep_publish("first"))
        async with (
            IMClient(romeo, features=("urn:example:other",)) as plain,
            IMClient(stranger, features=(NOTIFY,)) as uninvited,
        ):
            await plain.send_presence()
            # No subscription: directed presence only (RFC 6121 §4.6).
            await uninvited.send_presence(to="juliet@a.test")
            romeo_full, stranger_full = JID.parse(str(romeo.jid)), JID.parse(str(stranger.jid))
            with trio.fail_after(WAIT):
                while not (caps.caps_for(romeo_full) and caps.caps_for(stranger_full)):
                    await trio.sleep(0.01)
            await juliet.request(pep_publish("Gloria"))
            # A message juliet sends after the publish arrives after anything
            # the publish would have sent (one ordered link): nothing came.
            # (to the full JID: the stranger sent no broadcast presence)
            for im, to in ((plain, "romeo@b.test"), (uninvited, str(stranger.jid))):
                await juliet.send(chat(to, "after the publish"))
                with trio.fail_after(WAIT):
                    async for stanza in im.stanzas():
                        assert stanza.find(f"{EVENT}event") is None, ET.tostring(stanza)
                        if stanza.tag == C + "message" and stanza.get("type") == "chat":
                            break
