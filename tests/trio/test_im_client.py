"""IMClient (xmpp_trio.im) against the bundled server on loopback: rosters with
versioning and pushes (RFC 6121 §2), subscriptions (§3), presence (§4), disco
and caps (XEP-0030, XEP-0115), vCards (XEP-0054) and unhandled iqs (RFC 6120 §8.4)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, SubElement

import pytest
import trio
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.client_state import RosterCache
from xmpp_sansio.disco import DiscoInfo, Identity
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import QUERY_TAG as ROSTER_QUERY
from xmpp_sansio.roster import Subscription, build_roster_query
from xmpp_sansio.stanza import Iq, IqType, PresenceShow, iq_result, make_iq, make_message
from xmpp_sansio.xml import ns
from xmpp_trio.client import IqErrorResponse, open_client
from xmpp_trio.im import NS_VCARD, IMClient

JULIET = JID.parse("juliet@localhost")
ROMEO = JID.parse("romeo@localhost")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "client.md"
WAIT = 10  # seconds: generous bounds for loopback round trips


class RecordingStream:
    """A Client seen through IMClient's StanzaStream protocol, recording the
    wire: every stanza sent and every iq request's answer."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[Element] = []
        self.answers: list[tuple[Element, Element]] = []

    @property
    def jid(self) -> JID:
        return self.client.jid  # type: ignore[no-any-return]

    async def send(self, stanza: Element) -> None:
        self.sent.append(stanza)
        await self.client.send(stanza)

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element:
        answer = await self.client.request(iq, timeout=timeout)
        self.answers.append((iq, answer))
        return answer  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[Element]:
        return self.client.__aiter__()  # type: ignore[no-any-return]

    def disco_answers_to(self, jid: JID) -> list[Element]:
        """The disco#info results this side sent to ``jid``."""
        return [
            el
            for el in self.sent
            if el.get("type") == "result"
            and el.get("to") == str(jid)
            and el.find(f"{{{ns.DISCO_INFO}}}query") is not None
        ]


class Session:
    def __init__(self, im: IMClient, wire: RecordingStream) -> None:
        self.im = im
        self.wire = wire


Connect = Callable[..., Awaitable[Session]]


@asynccontextmanager
async def im_session(server: RunningServer, account: str, **kwargs: Any) -> AsyncIterator[Session]:
    user = account.partition("@")[0]
    async with open_client(
        f"{account}" if "/" in account else f"{account}/{user}-res",
        PASSWORDS[user],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    ) as client:
        wire = RecordingStream(client)
        async with IMClient(wire, **kwargs) as im:
            yield Session(im, wire)


@asynccontextmanager
async def sessions(server: RunningServer) -> AsyncIterator[Connect]:
    """``connect(account, **IMClient kwargs)`` opens sessions that last until
    the block ends (opened and closed in the test's own task, as Trio wants)."""
    with trio.fail_after(WAIT):
        async with AsyncExitStack() as stack:

            async def connect(account: str, **kwargs: Any) -> Session:
                return await stack.enter_async_context(im_session(server, account, **kwargs))

            yield connect


async def online(connect: Connect, account: str, **kwargs: Any) -> IMClient:
    """A session that fetched its roster and sent initial presence (RFC 6121 §2.2, §4.2)."""
    im = (await connect(account, **kwargs)).im
    await im.get_roster()
    await im.send_presence()
    return im


async def befriend(a: IMClient, b: IMClient) -> None:
    """Mutual presence subscription, each side approving the other's request."""
    for asker, answerer in ((a, b), (b, a)):
        await asker.subscribe(answerer.jid.bare)
        request = await answerer.subscription_requests().receive()
        assert request.jid == asker.jid.bare
        await answerer.approve(request.jid)
    for im, other in ((a, b), (b, a)):
        await im.wait_until(lambda im=im, other=other: subscription(im, other.jid) == "both")  # type: ignore[misc]


def subscription(im: IMClient, jid: JID) -> str | None:
    item = im.roster.items.get(jid.bare)
    return None if item is None else item.subscription.value


def asking(im: IMClient, jid: JID) -> bool | None:
    """Whether the roster item for ``jid`` is "Pending Out"; ``None`` without an item."""
    item = im.roster.items.get(jid.bare)
    return None if item is None else item.ask


async def settle(im: IMClient) -> None:
    """Wait until the dispatcher has handled everything the server sent so far:
    a message to oneself comes back after anything queued before it."""
    marker = make_message(im.jid, body=f"marker-{id(im)}")
    await im.send(marker)
    async for stanza in im.stanzas():
        if stanza.findtext("{jabber:client}body") == f"marker-{id(im)}":
            return


# ---------------------------------------------------------------------------
# roster (RFC 6121 §2)


async def test_roster_set_and_remove_are_pushed_to_every_interested_resource(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        balcony = (await connect("juliet@localhost/balcony")).im
        chamber = (await connect("juliet@localhost/chamber")).im
        assert (await balcony.get_roster()).items == {}
        await chamber.get_roster()

        item = await balcony.set_roster_item(ROMEO, name="Romeo", groups={"Friends", "Lovers"})
        assert item is not None
        assert (item.name, item.groups, item.subscription) == (
            "Romeo",
            frozenset({"Friends", "Lovers"}),
            Subscription.NONE,
        )
        assert balcony.roster.items[ROMEO] == item  # applied before set_roster_item returned
        pushed = await chamber.roster_pushes().receive()
        assert pushed == item
        assert chamber.roster == balcony.roster  # same items and version

        await balcony.set_roster_item(ROMEO, name="Montague")
        assert (await chamber.roster_pushes().receive()).name == "Montague"
        assert chamber.roster.items[ROMEO].groups == frozenset()

        await balcony.remove_roster_item(ROMEO)
        assert ROMEO not in balcony.roster.items
        removed = await chamber.roster_pushes().receive()
        assert (removed.jid, removed.subscription) == (ROMEO, Subscription.REMOVE)
        assert chamber.roster == balcony.roster
        assert chamber.roster.items == {}


async def test_removing_an_unknown_item_is_item_not_found(server: RunningServer) -> None:
    async with sessions(server) as connect:
        im = await online(connect, "juliet@localhost/balcony")
        with pytest.raises(IqErrorResponse) as info:
            await im.remove_roster_item("nurse@localhost")
        assert info.value.error.condition is StanzaErrorCondition.ITEM_NOT_FOUND


async def test_roster_get_with_the_cached_version_gets_the_empty_result(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        async with im_session(server, "juliet@localhost/balcony") as first:
            await first.im.get_roster()
            await first.im.set_roster_item(ROMEO, name="Romeo", groups={"Friends"})
            saved = first.im.roster.to_dict()
        assert saved["version"]

        cache = RosterCache.from_dict(saved)
        second = await connect("juliet@localhost/chamber", roster_cache=cache)
        assert await second.im.get_roster() is cache
        ((request, answer),) = second.wire.answers
        assert request[0].get("ver") == saved["version"]  # RFC 6121 §2.6.2
        assert len(answer) == 0  # §2.6.3: the empty result, "your version is current"
        assert cache.to_dict() == saved

        # A change made elsewhere while the cache was saved: the next session
        # with the old version gets the whole roster (or pushes) and ends current.
        await second.im.set_roster_item(ROMEO, name="Montague")
        third = await connect("juliet@localhost/hall", roster_cache=RosterCache.from_dict(saved))
        roster = await third.im.get_roster()
        assert len(third.wire.answers[0][1]) == 1  # the full roster this time
        assert roster.items[ROMEO].name == "Montague"
        assert roster == second.im.roster


async def test_roster_bootstraps_versioning_with_an_empty_ver(server: RunningServer) -> None:
    async with sessions(server) as connect:
        session = await connect("juliet@localhost/balcony")
        await session.im.get_roster()
        ((request, answer),) = session.wire.answers
        assert request.find(ROSTER_QUERY) is not None
        assert request[0].get("ver") == ""  # RFC 6121 §2.6.2
        assert answer[0].get("ver") == session.im.roster.version
        await session.im.set_roster_item(ROMEO, name="Romeo")
        saved = session.im.roster.to_dict()

        await session.im.get_roster()  # again in the same session: nothing changed
        request, answer = session.wire.answers[-1]
        assert request[0].get("ver") == saved["version"]
        assert len(answer) == 0  # RFC 6121 §2.6.3
        assert session.im.roster.to_dict() == saved


def errors_sent(session: Session, iq_id: str) -> list[Element]:
    return [el for el in session.wire.sent if el.get("id") == iq_id and el.get("type") == "error"]


async def test_roster_push_from_another_user_is_refused_and_ignored(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = await connect("juliet@localhost/balcony")
        await juliet.im.get_roster()
        romeo = await connect("romeo@localhost/orchard")
        spoof = make_iq(IqType.SET, "spoof1", build_roster_query([]), to=juliet.im.jid)
        SubElement(spoof[0], f"{{{ns.ROSTER}}}item", {"jid": "tybalt@localhost"})
        with pytest.raises(IqErrorResponse) as info:
            await romeo.wire.client.request(spoof)
        assert info.value.error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
        assert len(errors_sent(juliet, "spoof1")) == 1  # juliet's client refused it
        assert juliet.im.roster.items == {}


# ---------------------------------------------------------------------------
# subscriptions and presence (RFC 6121 §3, §4)


async def test_subscribe_and_approve_show_each_other_online_with_resources(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        romeo = await online(connect, "romeo@localhost/orchard")
        await romeo.subscribe(JULIET)
        request = await juliet.subscription_requests().receive()
        assert request.jid == ROMEO
        await romeo.wait_until(lambda: asking(romeo, JULIET) is True)  # Pending Out
        await juliet.approve(request.jid)

        await romeo.wait_until(lambda: juliet.jid.bare in romeo.presence.available())
        assert [r.jid for r in romeo.presence.resources(JULIET)] == [juliet.jid]
        assert subscription(romeo, JULIET) == "to"
        await juliet.wait_until(lambda: subscription(juliet, ROMEO) == "from")
        assert not juliet.presence.is_available(ROMEO)  # no subscription that way yet

        await juliet.subscribe(ROMEO)
        request = await romeo.subscription_requests().receive()
        await romeo.approve(request.jid)
        await juliet.wait_until(lambda: juliet.presence.is_available(ROMEO))
        assert juliet.presence.best_resource(ROMEO) is not None
        assert juliet.presence.best_resource(ROMEO).jid == romeo.jid  # type: ignore[union-attr]
        await juliet.wait_until(lambda: subscription(juliet, ROMEO) == "both")
        await romeo.wait_until(lambda: subscription(romeo, JULIET) == "both")


async def test_presence_updates_report_coming_online_changes_and_going_offline(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        romeo = await online(connect, "romeo@localhost/orchard")
        await befriend(juliet, romeo)
        updates = juliet.presence_updates()
        async with im_session(server, "romeo@localhost/garden") as garden:
            await garden.im.send_presence(
                show=PresenceShow.AWAY, status="in the garden", priority=5
            )
            update = await updates.receive()
            while update.jid != garden.im.jid:
                update = await updates.receive()
            assert not update.came_online  # orchard was already online
            assert update.current is not None
            assert (update.current.show, update.current.status, update.current.priority) == (
                PresenceShow.AWAY,
                "in the garden",
                5,
            )
            best = juliet.presence.best_resource(ROMEO)
            assert best is not None and best.jid == garden.im.jid  # the highest priority
            assert len(juliet.presence.resources(ROMEO)) == 2
        await juliet.wait_until(lambda: len(juliet.presence.resources(ROMEO)) == 1)

        await romeo.send_unavailable(status="gone to Mantua")
        await juliet.wait_until(lambda: not juliet.presence.is_available(ROMEO))
        async for update in updates:
            if update.went_offline:
                assert update.bare == ROMEO
                break
        await romeo.send_presence()
        await juliet.wait_until(lambda: juliet.presence.is_available(ROMEO))
        async for update in updates:
            if update.came_online:
                assert update.jid == romeo.jid
                break


async def test_pre_approval_answers_the_later_request_without_asking(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        romeo = await online(connect, "romeo@localhost/orchard")
        await juliet.approve(ROMEO)  # RFC 6121 §3.4: no request pending: pre-approval
        await juliet.wait_until(lambda: ROMEO in juliet.roster.items)
        assert juliet.roster.items[ROMEO].approved
        assert juliet.roster.items[ROMEO].subscription is Subscription.NONE

        await romeo.subscribe(JULIET)
        await romeo.wait_until(lambda: subscription(romeo, JULIET) == "to")
        await romeo.wait_until(lambda: romeo.presence.is_available(JULIET))
        await juliet.wait_until(lambda: subscription(juliet, ROMEO) == "from")
        await settle(juliet)
        with pytest.raises(trio.WouldBlock):
            juliet.subscription_requests().receive_nowait()  # §3.4.2: never asked


async def test_unsubscribe_and_cancel_end_the_presence_subscriptions(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        romeo = await online(connect, "romeo@localhost/orchard")
        await befriend(juliet, romeo)
        await romeo.wait_until(lambda: romeo.presence.is_available(JULIET))

        await romeo.unsubscribe(JULIET)  # §3.3: romeo no longer sees juliet
        await romeo.wait_until(lambda: subscription(romeo, JULIET) == "from")
        await romeo.wait_until(lambda: not romeo.presence.is_available(JULIET))
        await juliet.wait_until(lambda: subscription(juliet, ROMEO) == "to")

        assert juliet.presence.is_available(ROMEO)
        await romeo.cancel(JULIET)  # §3.2: juliet no longer sees romeo either
        await romeo.wait_until(lambda: subscription(romeo, JULIET) == "none")
        await juliet.wait_until(lambda: subscription(juliet, ROMEO) == "none")
        await juliet.wait_until(lambda: not juliet.presence.is_available(ROMEO))


async def test_deny_refuses_a_subscription_request(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        romeo = await online(connect, "romeo@localhost/orchard")
        await romeo.subscribe(JULIET)
        request = await juliet.subscription_requests().receive()
        await juliet.deny(request.jid)
        await romeo.wait_until(lambda: asking(romeo, JULIET) is False)
        assert subscription(romeo, JULIET) == "none"
        assert not romeo.presence.is_available(JULIET)


# ---------------------------------------------------------------------------
# disco and caps (XEP-0030, XEP-0115)


async def test_disco_info_of_the_server_lists_its_features(server: RunningServer) -> None:
    async with sessions(server) as connect:
        im = (await connect("juliet@localhost/balcony")).im
        info = await im.disco_info("localhost")
        assert Identity("server", "im", "xmpp-trio") in info.identities
        for feature in (ns.DISCO_INFO, ns.ROSTER, NS_VCARD, ns.PING):
            assert info.has_feature(feature)
        items = await im.disco_items("localhost")
        assert items.node is None


async def test_disco_info_of_the_client_is_its_own_info_also_on_the_caps_node(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        juliet = (await connect("juliet@localhost/balcony")).im
        romeo = (await connect("romeo@localhost/orchard", features=["urn:example:sonnets"])).im
        info = await juliet.disco_info(romeo.jid)
        assert info == romeo.own_disco_info
        assert Identity("client", "pc", "xmpp-trio") in info.identities
        assert info.has_feature("urn:example:sonnets") and info.has_feature(ns.DISCO_INFO)
        node = f"{romeo.caps_node}#{romeo.caps_ver}"
        assert (await juliet.disco_info(romeo.jid, node)).node == node  # XEP-0115 §6.2
        with pytest.raises(IqErrorResponse) as error:
            await juliet.disco_info(romeo.jid, "urn:example:no-such-node")
        assert error.value.error.condition is StanzaErrorCondition.ITEM_NOT_FOUND
        assert (await juliet.disco_items(romeo.jid)).items == ()


async def test_caps_of_another_client_are_resolved_with_one_disco_query(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        orchard = await connect("romeo@localhost/orchard")
        garden = await connect("romeo@localhost/garden")
        await orchard.im.get_roster()
        await garden.im.get_roster()
        await orchard.im.send_presence()
        await befriend(juliet, orchard.im)
        await garden.im.send_presence()
        await juliet.wait_until(lambda: len(juliet.presence.resources(ROMEO)) == 2)
        caps = juliet.presence.caps(garden.im.jid)
        assert caps is not None and caps.ver == garden.im.caps_ver

        results: list[DiscoInfo] = []

        async def look_up(jid: JID) -> None:
            results.append(await juliet.caps_info(jid))

        async with trio.open_nursery() as nursery:  # concurrent lookups share a query
            nursery.start_soon(look_up, orchard.im.jid)
            nursery.start_soon(look_up, garden.im.jid)
        results.append(await juliet.caps_info(orchard.im.jid))
        results.append(await juliet.caps_info(garden.im.jid))

        assert results == [orchard.im.own_disco_info] * 4
        queries = orchard.wire.disco_answers_to(juliet.jid) + garden.wire.disco_answers_to(
            juliet.jid
        )
        assert len(queries) == 1  # XEP-0115 §8.2: one query per verification string
        assert len(juliet.caps_cache) == 1


async def test_caps_info_without_caps_asks_disco_info(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = (await connect("juliet@localhost/balcony")).im
        romeo = await connect("romeo@localhost/orchard")
        assert juliet.presence.caps(romeo.im.jid) is None
        assert await juliet.caps_info(romeo.im.jid) == romeo.im.own_disco_info
        assert len(romeo.wire.disco_answers_to(juliet.jid)) == 1
        assert len(juliet.caps_cache) == 0


# ---------------------------------------------------------------------------
# vCard (XEP-0054)


async def test_juliet_reads_the_vcard_romeo_set(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = (await connect("juliet@localhost/balcony")).im
        romeo = (await connect("romeo@localhost/orchard")).im
        assert len(await romeo.get_vcard()) == 0  # nothing stored yet: an empty vCard
        vcard = Element(f"{{{NS_VCARD}}}vCard")
        SubElement(vcard, f"{{{NS_VCARD}}}FN").text = "Romeo Montague"
        SubElement(vcard, f"{{{NS_VCARD}}}NICKNAME").text = "Romeo"
        await romeo.set_vcard(vcard)

        theirs = await juliet.get_vcard(ROMEO)
        assert theirs.findtext(f"{{{NS_VCARD}}}FN") == "Romeo Montague"
        assert (await romeo.get_vcard()).findtext(f"{{{NS_VCARD}}}NICKNAME") == "Romeo"
        with pytest.raises(ValueError):
            await romeo.set_vcard(Element("{urn:example}card"))


# ---------------------------------------------------------------------------
# other iqs (RFC 6120 §8.4) and other stanzas


async def test_an_unknown_iq_get_to_the_client_is_service_unavailable(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        juliet = await connect("juliet@localhost/balcony")
        romeo = await connect("romeo@localhost/orchard")
        for type_ in (IqType.GET, IqType.SET):
            iq_id = f"unknown-{type_}"
            iq = make_iq(type_, iq_id, Element("{urn:example:unknown}query"), to=juliet.im.jid)
            with pytest.raises(IqErrorResponse) as info:
                await romeo.wire.client.request(iq)
            assert info.value.error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
            assert len(errors_sent(juliet, iq_id)) == 1  # answered by the client (RFC 6120 §8.4)


async def test_the_iq_handler_hook_answers_what_it_takes(server: RunningServer) -> None:
    seen: list[Iq] = []

    async def handler(iq: Iq) -> Element | None:
        seen.append(iq)
        assert iq.payload is not None
        if iq.payload.tag == "{urn:example:sonnets}query":
            answer = Element("{urn:example:sonnets}query")
            answer.text = "Shall I compare thee"
            return iq_result(iq.element, answer)
        if iq.payload.tag == "{urn:example:broken}query":
            raise RuntimeError("a bug in the handler")
        return None

    async with sessions(server) as connect:
        juliet = (await connect("juliet@localhost/balcony", iq_handler=handler)).im
        romeo = await connect("romeo@localhost/orchard")
        request = romeo.wire.client.request
        got = await request(
            make_iq(IqType.GET, "", Element("{urn:example:sonnets}query"), to=juliet.jid)
        )
        assert got.findtext("{urn:example:sonnets}query") == "Shall I compare thee"
        for tag, condition in (
            ("{urn:example:other}query", StanzaErrorCondition.SERVICE_UNAVAILABLE),
            ("{urn:example:broken}query", StanzaErrorCondition.INTERNAL_SERVER_ERROR),
        ):
            with pytest.raises(IqErrorResponse) as info:
                await request(make_iq(IqType.GET, "", Element(tag), to=juliet.jid))
            assert info.value.error.condition is condition
        assert len(seen) == 3
        # built-in handling comes first: the hook never sees disco
        await romeo.im.disco_info(juliet.jid)
        assert len(seen) == 3


async def test_messages_and_other_unconsumed_stanzas_reach_stanzas(server: RunningServer) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony")
        romeo = await online(connect, "romeo@localhost/orchard")
        await romeo.send(make_message(juliet.jid, body="Wherefore art thou?"))
        stanzas = juliet.stanzas()
        message = await stanzas.receive()
        while message.tag != "{jabber:client}message":
            message = await stanzas.receive()
        assert message.findtext("{jabber:client}body") == "Wherefore art thou?"
        assert message.get("from") == str(romeo.jid)


async def test_iterators_end_when_the_stream_closes(server: RunningServer) -> None:
    with trio.fail_after(WAIT):
        async with im_session(server, "juliet@localhost/balcony") as session:
            im = session.im
            await session.wire.client.aclose()
            async for _ in im.stanzas():
                pass
            async for _ in im.presence_updates():
                pass
            with pytest.raises(Exception, match="stream ended"):
                await im.wait_until(lambda: False)


# ---------------------------------------------------------------------------
# the documentation's example runs


def docs_example() -> str:
    text = DOCS.read_text()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match is not None, "docs/client.md has no python example"
    return match.group(1)


async def test_the_docs_example_runs(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(docs_example(), str(DOCS), "exec"), namespace)
    cache_file = tmp_path / "roster.json"
    connect = {
        "host": "127.0.0.1",
        "port": server.starttls_port,
        "ssl_context": server.client_context(),
    }
    with trio.fail_after(WAIT):
        async with im_session(server, "romeo@localhost/orchard") as romeo:
            await romeo.im.get_roster()
            await romeo.im.send_presence(status="under the balcony")

            async def romeo_answers() -> None:
                async for request in romeo.im.subscription_requests():
                    await romeo.im.approve(request.jid)
                    await romeo.im.subscribe(request.jid)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(romeo_answers)
                for _ in range(2):  # a second run starts from the saved roster
                    await namespace["main"](
                        "juliet@localhost",
                        PASSWORDS["juliet"],
                        "romeo@localhost",
                        cache_file,
                        **connect,
                    )
                nursery.cancel_scope.cancel()
            bodies = []
            async for stanza in romeo.im.stanzas():  # also the "subscribed" notices
                if stanza.tag == "{jabber:client}message":
                    bodies.append(stanza.findtext("{jabber:client}body"))
                if len(bodies) == 2:
                    break
            assert bodies == ["Good night!", "Good night!"]
    out = capsys.readouterr().out
    assert "romeo@localhost is online" in out
    assert "roster version" in out
    saved = RosterCache.from_dict(json.loads(cache_file.read_text()))
    assert saved.items[ROMEO].subscription is Subscription.BOTH


async def test_with_presence_stanzas_every_presence_reaches_stanzas_and_is_still_tracked(
    server: RunningServer,
) -> None:
    async with sessions(server) as connect:
        juliet = await online(connect, "juliet@localhost/balcony", presence_stanzas=True)
        romeo = await online(connect, "romeo@localhost/orchard")
        await romeo.subscribe(JULIET)
        seen = [await juliet.stanzas().receive()]  # her own presence first
        while seen[-1].get("type") != "subscribe":
            seen.append(await juliet.stanzas().receive())
        assert seen[-1].get("from") == str(ROMEO)  # not on subscription_requests()
        assert seen[0].get("from") == str(juliet.jid)  # every presence, her own too
        await juliet.approve(ROMEO)
        await romeo.send_presence(to=juliet.jid, status="here")  # directed (RFC 6121 §4.6)
        while True:
            stanza = await juliet.stanzas().receive()
            if stanza.tag.endswith("presence") and stanza.get("type") is None:
                break
        assert stanza.get("from") == str(romeo.jid)
        assert juliet.presence.is_available(ROMEO)  # tracked all the same
        with pytest.raises(trio.WouldBlock):
            juliet.presence_updates().receive_nowait()  # nothing piles up there
