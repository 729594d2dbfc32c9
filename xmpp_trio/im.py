"""Instant messaging and presence for a Trio client (RFC 6121, XEP-0030, XEP-0115, XEP-0054).

:class:`IMClient` wraps a :class:`~xmpp_trio.client.Client` from
:func:`~xmpp_trio.client.open_client`::

    async with open_client(jid, password) as client, IMClient(client) as im:
        await im.get_roster()            # RFC 6121 §2.2: the roster before presence
        await im.send_presence(status="here")
        async for stanza in im.stanzas():
            ...                          # messages and whatever IMClient did not take

It owns the reading of the client's stanzas (one dispatcher task; read
:meth:`IMClient.stanzas` instead of the client) and takes care of:

* the roster (RFC 6121 §2): :meth:`~IMClient.get_roster` with versioning
  (§2.6), roster pushes applied and answered (§2.1.6), sets and removes;
* subscriptions (§3): requests arrive on :meth:`~IMClient.subscription_requests`;
  :meth:`~IMClient.subscribe`, :meth:`~IMClient.approve` (also pre-approval,
  §3.4), :meth:`~IMClient.deny`, :meth:`~IMClient.unsubscribe`,
  :meth:`~IMClient.cancel`;
* presence (§4): :meth:`~IMClient.send_presence` with the client's entity
  capabilities (XEP-0115 §4), the :class:`~xmpp_sansio.client_state.PresenceTracker`
  in :attr:`~IMClient.presence`, changes on :meth:`~IMClient.presence_updates`;
* service discovery (XEP-0030) and entity capabilities (XEP-0115): queries,
  answers to queries about this client (§3.1), contacts' capabilities
  resolved once per verification string;
* vCards (XEP-0054);
* every other iq get/set addressed to the client: the :data:`IqHandler` if one
  takes it, else ``service-unavailable`` (RFC 6120 §8.4).

The protocol state lives in :mod:`xmpp_sansio.client_state`; this module only
moves stanzas.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol, Self, TypeVar
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client import (
    CAPS_NODE,
    DEFAULT_IDENTITY,
    CapsCache,
    ClientServices,
    DiscoResponder,
    IqOutcome,
    PresenceTracker,
    PresenceUpdate,
    RosterCache,
    roster_remove_query,
    roster_set_query,
    service_unavailable,
)
from xmpp_sansio.disco import (
    DiscoError,
    DiscoInfo,
    DiscoItems,
    Identity,
    info_query,
    items_query,
    parse_disco_info,
    parse_disco_items,
)
from xmpp_sansio.errors import LocalProtocolError, StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    Presence,
    PresenceShow,
    PresenceType,
    StanzaKind,
    StanzaValueError,
    error_reply,
    make_iq,
    make_presence,
    stanza_kind,
)
from xmpp_sansio.xml import ns

from .client import ConnectionFailed

__all__ = [
    "CAPS_NODE",
    "DEFAULT_IDENTITY",
    "NS_VCARD",
    "IMClient",
    "IqHandler",
    "StanzaStream",
    "SubscriptionRequest",
]

log = logging.getLogger("xmpp_trio.im")

NS_VCARD: Final = "vcard-temp"
"""XEP-0054 vcard-temp."""

_VCARD: Final = f"{{{NS_VCARD}}}vCard"
_DISCO_INFO: Final = f"{{{ns.DISCO_INFO}}}query"
_DISCO_ITEMS: Final = f"{{{ns.DISCO_ITEMS}}}query"
_ROSTER_QUERY: Final = f"{{{ns.ROSTER}}}query"

_T = TypeVar("_T")

IqHandler = Callable[[Iq], Awaitable[Element | None]]
"""Takes an iq get/set addressed to the client that IMClient does not handle
itself; returns the reply to send (built with
:func:`~xmpp_sansio.stanza.iq_result` or :func:`~xmpp_sansio.stanza.error_reply`),
or ``None`` to decline it (it is then answered ``service-unavailable``). It
runs in the dispatcher task: keep it short (start a task for long work). An
exception is logged and answered ``internal-server-error``."""


class StanzaStream(Protocol):
    """What IMClient needs of a client stream; :class:`~xmpp_trio.client.Client` is one."""

    @property
    def jid(self) -> JID: ...

    async def send(self, stanza: Element) -> None: ...

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element: ...

    def __aiter__(self) -> AsyncIterator[Element]: ...


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """An incoming request to see the user's presence (RFC 6121 §3.1.3).

    Answer with :meth:`IMClient.approve` or :meth:`IMClient.deny`; an
    unanswered request is delivered again at the next login (§3.1.3).
    ``status`` is the requester's optional ``<status/>`` text.
    """

    jid: JID
    status: str | None
    element: Element


def _jid(jid: JID | str) -> JID:
    return jid if isinstance(jid, JID) else JID.parse(jid)


def _request(type_: IqType, payload: Element, to: JID | None = None) -> Element:
    # An empty id: Client.request assigns a fresh one.
    return make_iq(type_, "", payload, to=to)


class IMClient:
    """Roster, subscriptions, presence, disco, caps and vCards over a client stream.

    Use ``async with IMClient(client) as im:``, or construct it and run
    :meth:`run` in a nursery you own (``await nursery.start(im.run)`` or
    ``await im.start(nursery)``). It is the only reader of ``client``.

    Args:
        client: a negotiated stream (:class:`~xmpp_trio.client.Client`).
        roster_cache: a cache kept from a previous session
            (:meth:`RosterCache.from_dict`); its version is sent with the
            roster get (RFC 6121 §2.6.2). A new empty cache otherwise.
        presence, caps_cache: the state of the IMClient of a stream this one
            resumed (XEP-0198), where presence is still valid; new ones
            otherwise (after a fresh login presence is learnt again from the
            probes, RFC 6121 §4.3). Capabilities may be kept across logins.
        roster_versioning: whether the server announced roster versioning
            (RFC 6121 §2.6.1); without it no ``ver`` is sent.
        identity, features: the client's disco#info (XEP-0030 §3.1): its
            identity and the features it handles on top of disco, caps and
            ping (e.g. those an :data:`IqHandler` implements). They make the
            XEP-0115 verification string.
        caps_node: the XEP-0115 ``node`` of this software (§4).
        iq_handler: the hook for iq requests IMClient does not handle.
        timeout: for every iq request this class sends.
        stanza_buffer: how many stanzas :meth:`stanzas` holds before the
            dispatcher waits for the reader (back-pressure: read it).
        event_buffer: how many subscription requests, presence updates and
            roster pushes are kept for their iterators; when one is full,
            newer events are dropped with a warning (the state is in
            :attr:`roster` and :attr:`presence` anyway, and the server
            redelivers pending subscription requests, RFC 6121 §3.1.3).
        presence_stanzas: deliver every presence stanza on :meth:`stanzas`
            (after :attr:`presence` took it into account) instead of as
            subscription requests and presence updates (for bots, whose
            handlers see each presence).
    """

    def __init__(
        self,
        client: StanzaStream,
        *,
        roster_cache: RosterCache | None = None,
        presence: PresenceTracker | None = None,
        caps_cache: CapsCache | None = None,
        roster_versioning: bool = True,
        identity: Identity = DEFAULT_IDENTITY,
        features: Iterable[str] = (),
        caps_node: str = CAPS_NODE,
        iq_handler: IqHandler | None = None,
        timeout: float = 30.0,
        stanza_buffer: int = 1000,
        event_buffer: int = 100,
        presence_stanzas: bool = False,
    ) -> None:
        self._client = client
        self.roster: RosterCache = roster_cache if roster_cache is not None else RosterCache()
        """The roster as the server last told it (RFC 6121 §2)."""
        self.presence = presence if presence is not None else PresenceTracker()
        """Who is available, fed with every incoming presence (RFC 6121 §4)."""
        self.caps_cache = caps_cache if caps_cache is not None else CapsCache()
        """Contacts' capabilities by verification string (XEP-0115 §8.2)."""
        self.iq_handler: IqHandler | None = iq_handler
        self.timeout = timeout
        self._versioning = roster_versioning
        self._presence_stanzas = presence_stanzas
        self.services = ClientServices(
            client.jid, self.roster, DiscoResponder(identity, features, caps_node)
        )
        """The iq requests answered here (roster pushes, disco, caps), sans I/O."""
        self.own_disco_info: DiscoInfo = self.services.disco.info
        """What this client answers to disco#info (XEP-0030 §3.1)."""
        self.caps_node = caps_node
        self.caps_ver = self.services.disco.ver
        """The XEP-0115 §5.1 verification string of :attr:`own_disco_info`."""
        self._stanzas_send, self._stanzas = trio.open_memory_channel[Element](stanza_buffer)
        self._requests_send, self._requests = trio.open_memory_channel[SubscriptionRequest](
            event_buffer
        )
        self._updates_send, self._updates = trio.open_memory_channel[PresenceUpdate](event_buffer)
        self._pushes_send, self._pushes = trio.open_memory_channel[RosterItem](event_buffer)
        self._changed = trio.Event()
        self._running = False
        self._stopped = False
        self._interested = False  # a roster get was answered: pushes will come
        self._push_counts: dict[JID, int] = {}
        self._roster_lock = trio.Lock()
        self._caps_pending: dict[object, trio.Event] = {}
        self._exit_stack: AsyncExitStack | None = None

    # ------------------------------------------------------------------
    # lifetime

    @property
    def jid(self) -> JID:
        """The client's full JID."""
        return self._client.jid

    async def send(self, stanza: Element) -> None:
        """Send any stanza, e.g. a message (the client's ``send``)."""
        await self._client.send(stanza)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The dispatcher: read the client's stanzas until the stream ends.

        For ``await nursery.start(im.run)``. When it returns, the iterators
        end and :meth:`wait_until` raises.
        """
        if self._running:
            raise RuntimeError("IMClient.run is already running")
        self._running = True
        task_status.started()
        try:
            async for stanza in self._client:
                await self._dispatch(stanza)
        finally:
            self._stopped = True
            for channel in (
                self._stanzas_send,
                self._requests_send,
                self._updates_send,
                self._pushes_send,
            ):
                channel.close()
            self._notify()

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the dispatcher (:meth:`run`) in ``nursery``."""
        await nursery.start(self.run)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Self]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.run)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        im = await stack.enter_async_context(self._session())
        self._exit_stack = stack
        return im

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._exit_stack = self._exit_stack, None
        assert stack is not None, "__aexit__ without __aenter__"
        return await stack.__aexit__(exc_type, exc, tb)

    # ------------------------------------------------------------------
    # what the user reads

    def stanzas(self) -> trio.MemoryReceiveChannel[Element]:
        """Every incoming stanza IMClient does not consume: messages,
        subscription answers (``subscribed``, ``unsubscribe``,
        ``unsubscribed``, RFC 6121 §3: the roster pushes carry their effect),
        presence errors, iq results nobody waits for. The same channel on
        every call; it ends with the stream."""
        return self._stanzas

    def subscription_requests(self) -> trio.MemoryReceiveChannel[SubscriptionRequest]:
        """Incoming subscription requests (RFC 6121 §3.1.3)."""
        return self._requests

    def presence_updates(self) -> trio.MemoryReceiveChannel[PresenceUpdate]:
        """Every change of :attr:`presence`: contacts (and the user's own
        resources) coming online (``came_online``), changing their presence,
        going offline (``went_offline``)."""
        return self._updates

    def roster_pushes(self) -> trio.MemoryReceiveChannel[RosterItem]:
        """The item of every roster push applied to :attr:`roster` (RFC 6121
        §2.1.6); ``subscription`` is ``remove`` for deleted items."""
        return self._pushes

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true; it is checked now and after
        every change of :attr:`roster` or :attr:`presence`. Bound it with
        ``trio.fail_after``. Raises :class:`~xmpp_trio.client.ConnectionFailed`
        if the stream ends first."""
        while not predicate():
            if self._stopped:
                raise ConnectionFailed("the stream ended")
            await self._changed.wait()

    # ------------------------------------------------------------------
    # roster (RFC 6121 §2)

    async def get_roster(self) -> RosterCache:
        """Fetch the roster (RFC 6121 §2.1.3, §2.2) into :attr:`roster` and
        return it. The cached version goes with the request (§2.6.2); an
        empty result keeps the cache (§2.6.3). From now on the server sends
        this resource roster pushes (§2.1.6), applied as they come."""
        async with self._roster_lock:
            query = self.roster.start_fetch(versioning=self._versioning)
            try:
                result = await self._client.request(
                    _request(IqType.GET, query), timeout=self.timeout
                )
                self.roster.apply_result(result[0] if len(result) else None)
            finally:
                self.roster.cancel_fetch()
            self._interested = True
        self._notify()
        return self.roster

    async def set_roster_item(
        self, jid: JID | str, *, name: str | None = None, groups: Iterable[str] = ()
    ) -> RosterItem | None:
        """Add or update a roster item (RFC 6121 §2.3, §2.4): ``name`` and
        ``groups`` replace the old ones; the subscription is the server's.

        Once :meth:`get_roster` has been called, waits for the roster push
        that follows (§2.3.2) and returns the item as pushed; otherwise
        returns what :attr:`roster` holds (maybe ``None``). Raises
        :class:`~xmpp_trio.client.IqErrorResponse` for the §2.3.3 errors.
        """
        contact = _jid(jid)
        query = roster_set_query(contact, name, groups)
        await self._roster_set(contact, query)
        return self.roster.items.get(contact)

    async def remove_roster_item(self, jid: JID | str) -> None:
        """Remove a roster item (RFC 6121 §2.5); the server also cancels the
        subscriptions both ways (§2.5.2). Waits for the push like
        :meth:`set_roster_item`. ``item-not-found`` if there is none (§2.5.3)."""
        contact = _jid(jid)
        await self._roster_set(contact, roster_remove_query(contact))

    async def _roster_set(self, contact: JID, query: Element) -> None:
        seen = self._push_counts.get(contact, 0)
        await self._client.request(_request(IqType.SET, query), timeout=self.timeout)
        if self._interested:
            # The push may come before or after the result (RFC 6121 §2.3.2).
            with trio.move_on_after(self.timeout):
                await self.wait_until(lambda: self._push_counts.get(contact, 0) != seen)

    def _on_roster_push(self, item: RosterItem) -> None:
        """A push was applied (RFC 6121 §2.1.6): tell who waits for it."""
        self._push_counts[item.jid] = self._push_counts.get(item.jid, 0) + 1
        self._emit(self._pushes_send, item)
        self._notify()

    # ------------------------------------------------------------------
    # subscriptions (RFC 6121 §3)

    async def _subscription(self, jid: JID | str, type_: PresenceType) -> None:
        # §3.1.1 etc.: to the contact's bare JID, with an id for tracking.
        await self._client.send(
            make_presence(_jid(jid).bare, type_, id=f"sub-{secrets.token_hex(6)}")
        )

    async def subscribe(self, jid: JID | str) -> None:
        """Ask to see ``jid``'s presence (RFC 6121 §3.1.1)."""
        await self._subscription(jid, PresenceType.SUBSCRIBE)

    async def approve(self, jid: JID | str) -> None:
        """Let ``jid`` see the user's presence: answers its request (RFC 6121
        §3.1.4) or, with no request pending, pre-approves one (§3.4, if the
        server announced ``urn:xmpp:features:pre-approval``)."""
        await self._subscription(jid, PresenceType.SUBSCRIBED)

    async def deny(self, jid: JID | str) -> None:
        """Refuse ``jid``'s subscription request (RFC 6121 §3.1.4)."""
        await self._subscription(jid, PresenceType.UNSUBSCRIBED)

    async def cancel(self, jid: JID | str) -> None:
        """Stop ``jid`` from seeing the user's presence (RFC 6121 §3.2.1),
        or withdraw a pre-approval (§3.4)."""
        await self._subscription(jid, PresenceType.UNSUBSCRIBED)

    async def unsubscribe(self, jid: JID | str) -> None:
        """Stop seeing ``jid``'s presence (RFC 6121 §3.3.1)."""
        await self._subscription(jid, PresenceType.UNSUBSCRIBE)

    # ------------------------------------------------------------------
    # presence (RFC 6121 §4)

    async def send_presence(
        self,
        *,
        show: PresenceShow | None = None,
        status: str | None = None,
        priority: int | None = None,
        to: JID | str | None = None,
    ) -> None:
        """Send available presence: broadcast (the first one is the initial
        presence, RFC 6121 §4.2; later ones update it, §4.4) or directed to
        ``to`` (§4.6). It carries the client's capabilities (XEP-0115 §4).
        ``priority`` is -128..127 (§4.7.2.3)."""
        if priority is not None and not -128 <= priority <= 127:
            raise ValueError("presence priority is -128..127 (RFC 6121 §4.7.2.3)")
        presence = make_presence(
            None if to is None else _jid(to), show=show, status=status, priority=priority
        )
        presence.append(self.services.disco.caps_element())
        await self._client.send(presence)

    async def send_unavailable(self, *, status: str | None = None) -> None:
        """Send unavailable presence (RFC 6121 §4.5): the user goes offline
        for contacts while the stream stays open."""
        await self._client.send(make_presence(type=PresenceType.UNAVAILABLE, status=status))

    # ------------------------------------------------------------------
    # disco and caps (XEP-0030, XEP-0115)

    async def disco_info(self, jid: JID | str, node: str | None = None) -> DiscoInfo:
        """Ask ``jid`` for its identities and features (XEP-0030 §3.1, §3.2
        for ``node``). Raises :class:`~xmpp_trio.client.IqErrorResponse`
        (e.g. ``item-not-found`` for an unknown node) or
        :class:`~xmpp_sansio.disco.DiscoError` for an invalid answer."""
        result = await self._client.request(
            _request(IqType.GET, info_query(node), _jid(jid)), timeout=self.timeout
        )
        query = result.find(_DISCO_INFO)
        if query is None:
            raise DiscoError("a disco#info result without <query/>")
        return parse_disco_info(query)

    async def disco_items(self, jid: JID | str, node: str | None = None) -> DiscoItems:
        """Ask ``jid`` for its items (XEP-0030 §4.1, §4.2 for ``node``)."""
        result = await self._client.request(
            _request(IqType.GET, items_query(node), _jid(jid)), timeout=self.timeout
        )
        query = result.find(_DISCO_ITEMS)
        if query is None:
            raise DiscoError("a disco#items result without <query/>")
        return parse_disco_items(query)

    async def caps_info(self, jid: JID | str) -> DiscoInfo:
        """What the resource ``jid`` supports.

        If its presence carried XEP-0115 capabilities, the answer cached for
        its ``ver`` is used, or fetched once from it with disco#info on
        ``node#ver`` (§6.2) and verified (§5.4): a verified answer serves
        every entity with the same ``ver``, and concurrent lookups of one
        ``ver`` share the query. Without capabilities, plain disco#info.
        """
        full = _jid(jid)
        caps = self.presence.caps(full)
        if caps is None:
            return await self.disco_info(full)
        key = CapsCache.key(full, caps)
        while True:
            cached = self.caps_cache.lookup(full, caps)
            if cached is not None:
                return cached
            pending = self._caps_pending.get(key)
            if pending is None:
                break
            await pending.wait()  # then look again: that query may have failed
        done = self._caps_pending[key] = trio.Event()
        try:
            info = await self.disco_info(full, caps.disco_node)
            if not self.caps_cache.store(full, caps, info):
                log.info("capabilities of %s do not verify %s", full, caps.ver)
            return info.with_node(None)
        finally:
            del self._caps_pending[key]
            done.set()

    # ------------------------------------------------------------------
    # vCard (XEP-0054)

    async def get_vcard(self, jid: JID | str | None = None) -> Element:
        """The vCard of ``jid`` (a bare JID, XEP-0054 §3.3), or the user's own
        (§3.1). An empty ``<vCard/>`` when the answer has none."""
        to = None if jid is None else _jid(jid)
        result = await self._client.request(
            _request(IqType.GET, Element(_VCARD), to), timeout=self.timeout
        )
        vcard = result.find(_VCARD)
        return vcard if vcard is not None else Element(_VCARD)

    async def set_vcard(self, vcard: Element) -> None:
        """Replace the user's vCard with ``vcard``, a ``<vCard
        xmlns='vcard-temp'/>`` (XEP-0054 §3.2)."""
        if vcard.tag != _VCARD:
            raise ValueError(f"not a vcard-temp <vCard/>: {vcard.tag!r}")
        await self._client.request(_request(IqType.SET, vcard), timeout=self.timeout)

    # ------------------------------------------------------------------
    # the dispatcher

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _emit(self, channel: trio.MemorySendChannel[_T], value: _T) -> None:
        try:
            channel.send_nowait(value)
        except trio.WouldBlock:
            log.warning("event buffer full, dropped %r", value)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # nobody listens any more

    async def _send_quietly(self, stanza: Element) -> None:
        """Send an answer; if the stream is going away, there is nobody to answer."""
        try:
            await self._client.send(stanza)
        except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError) as exc:
            log.debug("could not answer: %r", exc)

    async def _deliver(self, stanza: Element) -> None:
        # A closed stanzas() channel: the user is not interested.
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._stanzas_send.send(stanza)

    async def _dispatch(self, stanza: Element) -> None:
        kind = stanza_kind(stanza)
        if kind is StanzaKind.IQ and stanza.get("type") in (IqType.GET, IqType.SET):
            await self._on_request(stanza)
        elif kind is StanzaKind.PRESENCE:
            await self._on_presence(stanza)
        else:
            await self._deliver(stanza)

    async def _on_presence(self, stanza: Element) -> None:
        try:
            presence = Presence.from_element(stanza)
        except StanzaValueError:
            await self._deliver(stanza)
            return
        if self._presence_stanzas:
            if presence.type in (PresenceType.AVAILABLE, PresenceType.UNAVAILABLE):
                update = self.presence.handle(stanza)
                if update is not None and update.current is None:
                    self.caps_cache.forget(update.jid)
                self._notify()
            await self._deliver(stanza)
        elif presence.type is PresenceType.SUBSCRIBE and presence.from_ is not None:
            request = SubscriptionRequest(presence.from_.bare, presence.status, stanza)
            self._emit(self._requests_send, request)
        elif presence.type in (PresenceType.AVAILABLE, PresenceType.UNAVAILABLE):
            update = self.presence.handle(stanza)
            if update is not None:
                if update.current is None:
                    self.caps_cache.forget(update.jid)
                self._emit(self._updates_send, update)
                self._notify()
        else:
            await self._deliver(stanza)

    async def _on_request(self, stanza: Element) -> None:
        """An iq get/set for the client: exactly one answer (RFC 6120 §8.2.3)."""
        outcome = self.services.handle_iq(stanza)
        if outcome.pushed is not None:
            self._on_roster_push(outcome.pushed)
        elif (
            outcome.reply is not None
            and outcome.reply.get("type") == "error"
            and stanza.find(_ROSTER_QUERY) is not None
        ):
            log.warning("refused roster push from %s", stanza.get("from"))
        reply = outcome.reply
        if outcome.unhandled is not None:
            reply = await self._answer(outcome)
        if reply is not None:
            await self._send_quietly(reply)

    async def _answer(self, outcome: IqOutcome) -> Element:
        """A request :attr:`services` left to the application: the
        :data:`IqHandler`, else ``service-unavailable`` (RFC 6120 §8.4)."""
        iq = outcome.unhandled
        assert iq is not None and iq.payload is not None
        handler = self.iq_handler
        if handler is not None:
            try:
                reply = await handler(iq)
            except Exception:
                log.exception("the iq handler failed on %s", iq.payload.tag)
                return error_reply(iq.element, StanzaErrorCondition.INTERNAL_SERVER_ERROR)
            if reply is not None:
                return reply
        return service_unavailable(iq)
