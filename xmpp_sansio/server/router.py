"""The sans-IO stanza routing core of the server (RFC 6120 §10, RFC 6121 §8).

:class:`Router` keeps the table of bound sessions (full JID, availability,
priority) and turns each stanza received from a bound client session into a
list of effects: :class:`Deliver` an element to a session, or
:class:`Disconnect` a session with a stream error. It is pure and synchronous;
the only outside knowledge it uses is the injected ``account_exists``
predicate. Session ids are chosen by the caller (any ints, unique among the
live sessions).

Everything beyond the delivery rules (rosters, subscriptions, offline
storage, blocking, carbons, disco...) is done by the
:class:`~xmpp_sansio.server.service.Service` objects given to the router,
whose stages it runs (see :mod:`xmpp_sansio.server.stages`). A service sees the
router only as a read-only :class:`~xmpp_sansio.server.view.ServerView`; what
it wants done it returns as outcomes (:mod:`xmpp_sansio.server.effects`:
stanzas to route, replies, bounces, sessions to end), which the router drains
into effects before any public method returns. Stanzas for other domains
become :class:`RouteRemote` effects with ``federation`` on (else
``remote-server-not-found``); :meth:`Router.route_from_remote` takes theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import assert_never
from xml.etree.ElementTree import Element

from xmpp_sansio.disco import DiscoItem
from xmpp_sansio.errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    Message,
    MessageType,
    Presence,
    PresenceType,
    StanzaKind,
    StanzaValueError,
    UnknownStanza,
    can_reply_with_error,
    error_reply,
    iq_result,
    make_presence,
    parse_stanza,
    stanza_kind,
    with_attrs,
)
from xmpp_sansio.xml import ns

from .effects import (
    Bounce,
    Deliver,
    Disconnect,
    Effect,
    EndSessions,
    Load,
    Outcome,
    Persist,
    Reply,
    Route,
    RouteRemote,
    SessionId,
    StoreOp,
)
from .hosts import AccountHost, Hosts, HostService
from .pipeline import StageTables
from .presence_routes import PresenceRoutes
from .remote import inbound_is_hosted, remote_route
from .service import Service
from .stages import (
    Abandoned,
    AccountRemoved,
    Committed,
    Context,
    Event,
    HandedOver,
    IqReceived,
    Loaded,
    MessageDelivered,
    MessageSent,
    PresenceBroadcast,
    Request,
    SessionBound,
    SessionUnbound,
    Undeliverable,
)
from .view import AvailableResource, BoundSession

__all__ = [
    "AvailableResource",
    "BoundSession",
    "Deliver",
    "Disconnect",
    "Effect",
    "Router",
    "SessionId",
]

_PING_TAG = f"{{{ns.PING}}}ping"
# Members read for every message, as globals: in Python 3.11 ``MessageType.ERROR``
# goes through ``EnumType.__getattr__``'s slot (~1,000 instructions), a global ~100.
_MESSAGE_KIND = StanzaKind.MESSAGE
_ERROR, _GROUPCHAT, _HEADLINE = MessageType.ERROR, MessageType.GROUPCHAT, MessageType.HEADLINE


class Router(PresenceRoutes, StageTables):
    """Routes stanzas between the bound sessions of the local domains.

    ``domains`` are the domains this server hosts; ``account_exists(local,
    domain)`` says whether an account exists (RFC 6121 §8.5.1); ``services``
    run, in order, at each stage they join. ``hosts`` are the service
    hosts (:class:`~xmpp_sansio.server.hosts.HostService` by domain): with the
    account domains they make the hosts table that chooses each stanza's
    handler by its ``to`` domain first (:mod:`xmpp_sansio.server.hosts`). The stream layer must have
    validated the stream (and answered unknown top-level elements with
    ``unsupported-stanza-type``) before calling :meth:`route`.

    ``clock`` returns UNIX seconds: the ``now`` of every stage a public method
    runs, unless the call passes ``now=`` itself (the default clock stands
    still at 0.0, for tests that do not care about time; a server passes its
    own). ``rng(n)`` returns ``n`` unpredictable bytes for the services
    (required: a server passes :func:`secrets.token_bytes`). ``federation``:
    see :mod:`~xmpp_sansio.server.remote`.
    """

    def __init__(
        self,
        domains: Iterable[str | AccountHost],
        *,
        account_exists: Callable[[str, str], bool],
        services: Sequence[Service] = (),
        hosts: Mapping[str, HostService] | None = None,
        clock: Callable[[], float] | None = None,
        rng: Callable[[int], bytes],
        federation: bool = False,
    ) -> None:
        self.hosts = Hosts.build(domains, hosts)
        self._federation = federation
        self._domains = self.hosts.account_domains
        self._service_hosts = self.hosts.services
        self._account_exists = account_exists
        self._sessions: dict[SessionId, BoundSession] = {}
        self._by_full: dict[JID, BoundSession] = {}
        # bare JID -> its sessions in bind order (dicts keep insertion order)
        self._by_bare: dict[JID, dict[SessionId, BoundSession]] = {}
        self.services: tuple[Service, ...] = tuple(services)
        self._clock = _stopped_clock if clock is None else clock
        # One context, started again by each public method (``begin``): the
        # router is never re-entered (services act only through outcomes).
        self._ctx = Context(None, rng, clock=self._clock)
        #: The store ops the services wrote behind (``Context.behind``), in
        #: order: the I/O layer takes them (and empties the list) when it
        #: commits a batch; a call that raised has none here once
        #: :meth:`abandoned` is called (docs/mam.md "Cost").
        self.behind = self._ctx.behind
        # The last stanza routed with owned=True and its children before routing.
        self._handed: Element | None = None
        self._handed_children = 0
        # One tuple of services per stage, request and event type (.pipeline).
        self._build_stage_tables()
        for service in self.services:
            service.attach(self)
        for domain, host in self._service_hosts.items():
            host.attach(self, domain)

    # ------------------------------------------------------------------
    # session table

    @property
    def domains(self) -> frozenset[str]:
        """The local domains (normalised)."""
        return self._domains

    def is_local(self, domain: str) -> bool:
        """Whether ``domain`` (normalised) is served by this router."""
        return domain in self._domains

    def account_exists(self, account: JID) -> bool:
        """Whether ``account`` (any JID; its bare part counts) is a local account."""
        return (
            account.local is not None
            and account.domain in self._domains
            and self._account_exists(account.local, account.domain)
        )

    # ------------------------------------------------------------------
    # entry points: each returns effects, the services' outcomes drained

    def bind(self, session: SessionId, jid: JID, *, now: float | None = None) -> list[Effect]:
        """Record that ``session`` is bound to the full JID ``jid`` (RFC 6120 §7).

        Resource conflicts follow the RFC 6120 §7.7.2.2 "override" policy: a
        session already bound to the same full JID is unbound and gets
        ``Disconnect(old, CONFLICT)`` (followed by the effects of its
        :meth:`unbind`).
        """
        self._ctx.begin(now)
        return self._drain(self._bind(session, jid))

    def unbind(self, session: SessionId, *, now: float | None = None) -> list[Effect]:
        """Forget ``session`` (it ended for any reason); unknown ids are ignored.

        If the session was available, its unavailable presence goes to the
        account's other available resources and to the services' presence
        broadcast (RFC 6121 §4.5.2: the server broadcasts unavailable presence
        when a session ends). Then the observers of ``SessionUnbound`` run.
        """
        self._ctx.begin(now)
        return self._drain(self._unbind(session))

    def handed_over(
        self, session: SessionId, receipt: Hashable, *, now: float | None = None
    ) -> list[Effect]:
        """The stanza delivered to ``session`` with ``receipt`` (see
        :class:`Deliver`) was handed over: each observer of ``HandedOver`` runs
        (the one that issued the receipt acts on it). ``session`` need not be
        bound any more."""
        self._ctx.begin(now)
        return self._drain(self._handed_over_outcomes(session, receipt))

    def persisted(
        self,
        persists: Sequence[Persist],
        failed: StanzaErrorCondition | None = None,
        *,
        now: float | None = None,
    ) -> list[Effect]:
        """The I/O layer committed one batch's ``persists`` or, ``failed``, could not
        (``resource-constraint``: disk full, RFC 6120 §8.3.3.18; else ``internal-server-error``,
        §8.3.3.6): ``Committed`` observers run, then what each write held (``then``) is
        carried out or, after a failure, each stored stanza's sender gets ``failed``."""
        self._ctx.begin(now)
        outcomes = self._observe(Committed(tuple(p.op for p in persists), failed is not None))
        if failed is None:
            outcomes.extend(outcome for persist in persists for outcome in persist.then)
            return self._drain(outcomes)
        outcomes.extend(Bounce(p.stanza, failed) for p in persists if p.stanza is not None)
        return self._drain(outcomes)

    def abandoned(self, pending: Sequence[StoreOp], *, now: float | None = None) -> list[Effect]:
        """A call raised (a store read failed; the caller dropped its effects):
        the ops it wrote behind are dropped from :attr:`behind`, and
        ``Abandoned`` observers forget the writes of that call, keeping
        ``pending``, the ops the I/O layer holds and has not reported. Call it
        next, before any other call: the call that raised is the last one."""
        self._ctx.drop_call()
        self._ctx.begin(now)
        return self._drain(self._observe(Abandoned(tuple(pending))))

    def loaded(
        self, request_id: Hashable, result: object, *, now: float | None = None
    ) -> list[Effect]:
        """The I/O layer read what the :class:`Load` ``request_id`` asked:
        ``result``, or ``None`` if the read failed. ``Loaded`` observers run
        (the service that asked goes on from the answer)."""
        self._ctx.begin(now)
        return self._drain(self._observe(Loaded(request_id, result)))

    def route(
        self,
        session: SessionId,
        element: Element,
        *,
        now: float | None = None,
        owned: bool = False,
    ) -> list[Effect]:
        """Route a stanza received from the bound ``session``.

        The ``from`` address is always stamped with the session's full JID
        (RFC 6120 §8.1.2.1; a client-supplied ``from`` is overwritten): on a
        copy, or with ``owned`` (the caller hands ``element`` over and keeps no
        reference to it, as a stream's reader does) on ``element`` itself. An
        invalid stanza is answered with the error its
        :class:`~xmpp_sansio.stanza.StanzaValueError` names (``jid-malformed``
        for a bad ``to``), unless it may not be answered with an error.

        Raises :class:`~xmpp_sansio.errors.LocalProtocolError` if ``session``
        is not bound and :class:`~xmpp_sansio.stanza.UnknownStanza` if
        ``element`` is not a message, presence or iq.
        """
        ctx = self._ctx  # Context.begin, inline: once per stanza (the router has a clock)
        ctx._now = now
        ctx._mark = len(ctx.behind)
        outcomes = self._route(session, element, owned)
        for outcome in outcomes:  # _drain's common case, inline: one call less a stanza
            kind = type(outcome)
            if kind is not Deliver and kind is not Disconnect:
                return self._drain(outcomes)
        return outcomes  # type: ignore[return-value]

    def route_inbound(self, element: Element, *, now: float | None = None) -> list[Effect]:
        """Route a stanza that already carries its ``from`` (one a service
        originates, or later one from another server) to its local recipient,
        with the same delivery rules as :meth:`route`. Invalid stanzas are
        dropped."""
        self._ctx.begin(now)
        return self._drain(self._route_inbound(element, transform=True))

    def route_from_remote(
        self, element: Element, origin: str, *, now: float | None = None
    ) -> list[Effect]:
        """Route a stanza from an s2s stream authenticated for ``origin`` by the
        rules of :meth:`route_inbound`; not relayed to a third domain
        (``item-not-found``). Checks: :func:`~.remote.inbound_is_hosted`."""
        self._ctx.begin(now)
        if not inbound_is_hosted(element, origin, self.hosts):
            return self._drain(self._bounce(element, StanzaErrorCondition.ITEM_NOT_FOUND))
        return self._drain(self._route_inbound(element, transform=True))

    def reply(self, element: Element, *, now: float | None = None) -> list[Effect]:
        """Send a server-generated reply (a result or error) to its ``to``: the
        bound session with that full JID, else by the usual inbound rules. A
        reply to a stanza that had no ``to`` has no ``from``, so it cannot go
        through :meth:`route_inbound` alone."""
        self._ctx.begin(now)
        return self._drain(self._reply(element))

    def bounce(
        self, element: Element, condition: StanzaErrorCondition, *, now: float | None = None
    ) -> list[Effect]:
        """Answer ``element`` with a stanza error routed back to its sender,
        unless it must not be (RFC 6120 §8.3.1: never an error in reply to an
        error)."""
        self._ctx.begin(now)
        return self._drain(self._bounce(element, condition))

    def end_sessions(
        self,
        account: JID,
        condition: StreamErrorCondition,
        *,
        keep: SessionId | None = None,
        removed: bool = False,
        now: float | None = None,
    ) -> list[Effect]:
        """End every session of ``account`` but ``keep`` with the stream error
        ``condition``; with ``removed`` the account is gone and every
        observer of ``AccountRemoved`` runs too (see :class:`EndSessions`).
        The one operation behind account deletion (in-band, XEP-0077 §3.2, or
        by an administrator), a password change and a kick."""
        self._ctx.begin(now)
        return self._end_sessions(EndSessions(account.bare, condition, keep, removed))

    def drain(self, outcomes: list[Outcome], *, now: float | None = None) -> list[Effect]:
        """Carry out outcomes a service produced outside a stage (e.g. the
        answer to a request the I/O layer completed later): the effects."""
        self._ctx.begin(now)
        return self._drain(outcomes)

    def next_deadline(self) -> float | None:
        """The earliest time (UNIX seconds, the clock's) at which a service
        has time-based work: call :meth:`handle_timer` then. ``None``: never."""
        deadlines = [d for s in self._timed if (d := s.next_deadline()) is not None]
        return min(deadlines, default=None)

    def handle_timer(self, *, now: float | None = None) -> list[Effect]:
        """Run the timer stage of every service with time-based work due by
        ``now`` (default: the clock): e.g. disco#info queries that timed out
        (XEP-0115 §5.4 step 3.9). Calling it early or often is harmless."""
        self._ctx.begin(now)
        ctx = self._ctx
        outcomes: list[Outcome] = []
        for service in self._timed:
            deadline = service.next_deadline()
            if deadline is not None and deadline <= ctx.now:
                outcomes.extend(service.handle_timer(ctx))
        return self._drain(outcomes)

    def _drain(self, outcomes: list[Outcome]) -> list[Effect]:
        """Turn outcomes into effects, in order: each request to the router
        (:class:`Route`, :class:`Reply`, :class:`Bounce`, :class:`EndSessions`)
        is replaced by what it produces, depth first, without recursion (a
        ``skip`` set drains its own route first). A :class:`Persist` holding outcomes
        holds the rest of the drain too: the order is kept (RFC 6121 §3.1.6)."""
        for outcome in outcomes:
            kind = type(outcome)
            if kind is Deliver or kind is Disconnect:
                continue
            # an archived message's write (docs/mam.md "Cost"): holds nothing
            if kind is Persist and isinstance(outcome, Persist) and not outcome.then:
                continue
            break
        else:  # the common case: effects only (no typing.cast call: ~800 instructions)
            return outcomes  # type: ignore[return-value]
        effects: list[Effect] = []
        stack = outcomes[::-1]
        while stack:
            outcome = stack.pop()
            match outcome:
                case Persist(then=then) if then and stack:
                    effects.append(Persist(outcome.op, outcome.stanza, (*then, *stack[::-1])))
                    stack.clear()
                    continue
                case Deliver() | Disconnect() | Persist() | Load() | RouteRemote():
                    effects.append(outcome)
                    continue
                case Route(element=element, skip=skip):
                    more = self._route_inbound(element)
                    if skip:
                        effects.extend(
                            e
                            for e in self._drain(more)
                            if not (isinstance(e, Deliver) and e.session in skip)
                        )
                        continue
                case Reply(element=element):
                    more = self._reply(element)
                case Bounce(element=element, condition=condition):
                    more = self._bounce(element, condition)
                case EndSessions():
                    effects.extend(self._end_sessions(outcome))
                    continue
                case _:
                    assert_never(outcome)
            stack.extend(reversed(more))
        return effects

    def _end_sessions(self, request: EndSessions) -> list[Effect]:
        """Carry out :class:`EndSessions`: disconnect and unbind each session
        of the account (but ``keep``), then, for a removed account, run every
        observer of ``AccountRemoved``. What this sends to the sessions that
        are ending (their own unavailable presence) is dropped."""
        ending = [s.id for s in self.sessions_of(request.account) if s.id != request.keep]
        effects: list[Effect] = [Disconnect(sid, request.condition) for sid in ending]
        after: list[Outcome] = []
        for sid in ending:
            after.extend(self._unbind(sid))
        if request.removed:
            after.extend(self._observe(AccountRemoved(request.account.bare)))
        closing = frozenset(ending)
        effects.extend(
            e for e in self._drain(after) if not (isinstance(e, Deliver) and e.session in closing)
        )
        return effects

    # ------------------------------------------------------------------
    # what services see (ServerView)

    def service_items(self) -> tuple[DiscoItem, ...]:
        """The service hosts, as the server's disco#items (XEP-0030 §4)."""
        return self.hosts.service_items()

    def server_features(self) -> frozenset[str]:
        """The disco#info features of every service, for the server (XEP-0030)."""
        return frozenset(f for service in self.services for f in service.server_features)

    def account_features(self) -> frozenset[str]:
        """The disco#info features of every service, for an account's bare JID."""
        return frozenset(f for service in self.services for f in service.account_features)

    def inbound_filtered(
        self, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        """What the inbound filters make of ``element`` (``None``: let it through)."""
        ctx = self._ctx  # _inbound_filtered, inline: once per contact of a broadcast
        for service in self._inbound_by_kind[stanza_kind(element)]:
            stopped = service.filter_inbound(ctx, element, sender, recipient)
            if stopped is not None:
                return stopped
        return None

    def _bind(self, session: SessionId, jid: JID) -> list[Outcome]:
        if jid.is_bare:
            raise LocalProtocolError(f"bind needs a full JID, got {jid}")
        if jid.domain not in self._domains:
            raise LocalProtocolError(f"{jid.domain} is not a local domain")
        if session in self._sessions:
            raise LocalProtocolError(f"session {session} is already bound")
        effects: list[Outcome] = []
        old = self._by_full.get(jid)
        if old is not None:
            effects.append(Disconnect(old.id, StreamErrorCondition.CONFLICT))
            effects.extend(self._unbind(old.id))
        entry = BoundSession(session, jid)
        self._sessions[session] = entry
        self._by_full[jid] = entry
        self._by_bare.setdefault(jid.bare, {})[session] = entry
        if self._observers[SessionBound]:
            effects.extend(self._observe(SessionBound(entry)))
        return effects

    def _unbind(self, session: SessionId) -> list[Outcome]:
        entry = self._sessions.pop(session, None)
        if entry is None:
            return []
        del self._by_full[entry.jid]
        siblings = self._by_bare[entry.jid.bare]
        del siblings[session]
        if not siblings:
            del self._by_bare[entry.jid.bare]
        effects: list[Outcome] = []
        if entry.available:
            unavailable = make_presence(type=PresenceType.UNAVAILABLE, from_=entry.jid)
            effects = self._broadcast_to_own_resources(unavailable, self._available(entry.jid.bare))
            effects.extend(self._observe(PresenceBroadcast(entry, unavailable, False)))
        effects.extend(self._observe(SessionUnbound(entry)))
        return effects

    def _handed_over_outcomes(self, session: SessionId, receipt: Hashable) -> list[Outcome]:
        return self._observe(HandedOver(session, self._sessions.get(session), receipt))

    def _observe(self, event: Event) -> list[Outcome]:
        """The observe stage: every observer of ``event``'s type, in order."""
        ctx = self._ctx
        outcomes: list[Outcome] = []
        for service in self._observers[type(event)]:
            outcomes.extend(service.observe(ctx, event))
        return outcomes

    def _handle(self, request: Request) -> list[Outcome] | None:
        """The handle stage: the first handler of ``request``'s type that
        takes it, ``None`` if none does."""
        ctx = self._ctx
        for service in self._handlers[type(request)]:
            taken = service.handle(ctx, request)
            if taken is not None:
                return taken
        return None

    def session(self, session: SessionId) -> BoundSession | None:
        """The router's record of ``session`` (read-only), or ``None``."""
        return self._sessions.get(session)

    def session_jid(self, session: SessionId) -> JID | None:
        """The full JID ``session`` is bound to, or ``None``."""
        entry = self._sessions.get(session)
        return None if entry is None else entry.jid

    def session_by_jid(self, full: JID) -> BoundSession | None:
        """The session bound to the full JID ``full``, or ``None``."""
        return self._by_full.get(full)

    def sessions_of(self, bare: JID) -> list[BoundSession]:
        """All bound sessions of the account ``bare`` (in bind order; read-only)."""
        return list(self._by_bare.get(bare.bare, {}).values())

    def resources(self, bare: JID) -> list[tuple[JID, SessionId]]:
        """All bound sessions of the account ``bare`` (in bind order)."""
        return [(s.jid, s.id) for s in self._by_bare.get(bare.bare, {}).values()]

    def available_resources(self, bare: JID) -> list[AvailableResource]:
        """The sessions of ``bare`` that sent available presence, with priorities."""
        # Once per contact of a presence broadcast: a loop (a comprehension is
        # a call in 3.11), the named tuples built by tuple.__new__ (theirs is a
        # Python function).
        found: list[AvailableResource] = []
        for s in self._by_bare.get(bare.bare, _NO_SESSIONS).values():
            if s.available:
                found.append(_new_tuple(AvailableResource, (s.jid, s.id, s.priority)))
        return found

    def _exists(self, to: JID) -> bool:
        """Whether the account of ``to`` (which has a localpart) exists: it does
        if it has a session, so storage is asked only for accounts offline."""
        return to.bare in self._by_bare or self._account_exists(to.local or "", to.domain)

    def _available(self, bare: JID) -> list[BoundSession]:
        return [s for s in self._by_bare.get(bare, {}).values() if s.available]

    # ------------------------------------------------------------------
    # routing

    def _route(self, session: SessionId, element: Element, owned: bool = False) -> list[Outcome]:
        sender = self._sessions.get(session)
        if sender is None:
            raise LocalProtocolError(f"session {session} is not bound")
        kind = stanza_kind(element)
        if kind is None:
            raise UnknownStanza(f"not a stanza: {element.tag!r}")
        if owned:
            element.set("from", sender.stamp)
            stamped = element
            # The transform stage may append to it: failed() answers with what came.
            self._handed = element
            self._handed_children = len(element)
        else:
            stamped = with_attrs(element, from_=sender.stamp)
        try:
            if kind is _MESSAGE_KIND:  # the commonest: one kind lookup, not three
                stanza: Message | Presence | Iq = Message.from_element(stamped, sender.jid)
            else:
                stanza = parse_stanza(stamped, sender.jid)
        except StanzaValueError as exc:
            bounced = stamped
            if exc.condition is StanzaErrorCondition.JID_MALFORMED:
                # Do not echo the malformed address as the reply's 'from'.
                bounced = with_attrs(stamped, to=None)
            if not can_reply_with_error(bounced):
                return []
            return [Deliver(sender.id, error_reply(bounced, exc.condition))]
        ctx = self._ctx
        for service in self._outbound_by_kind[kind]:
            stopped = service.filter_outbound(ctx, sender, stanza.element, stanza.to)
            if stopped is not None:
                return stopped
        if isinstance(stanza, Message):
            if self._transform:
                stanza = self._transformed(stanza)
            effects = self._route_message(stanza)
            if self._message_sent:  # inlined _observe: once per message
                sent = MessageSent(sender, stanza.element)
                for service in self._message_sent:
                    effects.extend(service.observe(ctx, sent))
            return effects
        if isinstance(stanza, Presence):
            return self._presence_from_session(sender, stanza)
        return self._route_iq(stanza)

    def _route_inbound(self, element: Element, *, transform: bool = False) -> list[Outcome]:
        """Route a stanza with its ``from``; ``transform``: it comes from outside
        (not from a service), so messages go through the transform stage first."""
        try:
            stanza = parse_stanza(element)
        except (StanzaValueError, UnknownStanza):
            return []
        if stanza.from_ is None:
            return []
        if isinstance(stanza, Message):
            msg = self._transformed(stanza, False) if transform and self._transform else stanza
            return self._route_message(msg)
        if isinstance(stanza, Presence):
            return self._route_presence(stanza)
        return self._route_iq(stanza)

    def _transformed(self, msg: Message, owned: bool = True) -> Message:
        """The transform stage (XEP-0359 stanza ids, archives); a new element is validated
        again, ``Appended`` children go unparsed on the router's own copy (``owned``)."""
        sender, ctx, element, to = msg.from_, self._ctx, msg.element, msg.to
        assert sender is not None  # checked by the callers (no typing.cast call per message)
        for service in self._transform:
            out = service.transform(ctx, element, sender, to)
            if isinstance(out, tuple):  # Appended
                mine = owned or element is not msg.element
                (element := element if mine else with_attrs(element)).extend(out)
            elif out is not element:  # a new element: the next stage gets its ``to``
                element = out
                to = JID.parse_or_none(out.get("to"))
        if element is msg.element:
            return msg
        transformed = parse_stanza(element)
        if not isinstance(transformed, Message) or transformed.from_ != sender:
            raise LocalProtocolError("a transform must keep the message and its sender")
        return transformed

    def _inbound_filtered(
        self, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        ctx = self._ctx
        for service in self._inbound_by_kind[stanza_kind(element)]:
            stopped = service.filter_inbound(ctx, element, sender, recipient)
            if stopped is not None:
                return stopped
        return None

    # -- messages ------------------------------------------------------

    def _route_message(self, msg: Message) -> list[Outcome]:
        to = msg.to
        element = msg.element
        sender = msg.from_
        assert sender is not None
        if to is None:
            # RFC 6120 §10.3.1: as if addressed to the sender's bare JID.
            to = sender.bare
            element = with_attrs(element, to=str(to))
        if to.domain not in self._domains:
            return self._route_elsewhere(msg)  # to was given: element is msg's
        if to.local is None:
            return self._message_to_server(element, msg.type)
        bare = to.bare
        sessions = self._by_bare.get(bare)  # one lookup for _exists and the delivery
        if sessions is None and not self._account_exists(to.local, to.domain):
            # RFC 6121 §8.5.1: no such user (_exists, inline).
            return self._bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        ctx = self._ctx
        for service in self._inbound_messages:  # _inbound_filtered, inline
            stopped = service.filter_inbound(ctx, element, sender, bare)
            if stopped is not None:
                return stopped
        if to.resource is not None:
            target = self._by_full.get(to)
            if target is not None:
                # RFC 6121 §8.5.3.1: deliver to the matching resource.
                effects: list[Outcome] = [Deliver(target.id, element)]
                observers = (
                    self._delivered_local
                    if sender.domain in self._domains
                    else self._message_delivered
                )
                if observers:
                    delivered = MessageDelivered(element, bare, [target.id])
                    for service in observers:
                        effects.extend(service.observe(ctx, delivered))
                return effects
            if msg.type is MessageType.GROUPCHAT:
                # RFC 6121 §8.5.3.2.1: no matching resource.
                return self._bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        # RFC 6121 §8.5.2 (and §8.5.3.2.1 for chat/normal/headline to an
        # unavailable full JID, which this server treats like the bare JID).
        local = sender.domain in self._domains
        return self._message_to_bare(element, msg.type, bare, sessions, local)

    def _message_to_bare(
        self,
        element: Element,
        type_: MessageType,
        bare: JID,
        sessions: dict[SessionId, BoundSession] | None,
        local: bool,
    ) -> list[Outcome]:
        """RFC 6121 §8.5.2.1.1 / §8.5.2.2.1: a message for an existing account.

        chat/normal go to every available resource sharing the highest
        non-negative priority; headline to all non-negative ones; groupchat is
        refused with ``service-unavailable``; error is dropped. Resources with
        negative priority never get these (RFC 6121 §8.5.2.1.1); when no
        resource qualifies, chat/normal go to the services'
        ``Undeliverable`` handlers (offline storage) and are bounced if no
        service takes them; headline is dropped. ``sessions``: the account's
        bound sessions, as the caller looked them up (``None``: none);
        ``local``: whether the sender is of a local domain (``remote_observes``).
        """
        if type_ is _ERROR:
            return []
        if type_ is _GROUPCHAT:
            return self._bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        # One pass over the account's sessions (usually one): the available
        # ones of non-negative priority, only the highest for chat/normal.
        ids: list[SessionId] = []
        headline = type_ is _HEADLINE
        top = 0
        for s in (_NO_SESSIONS if sessions is None else sessions).values():
            if not s.available or s.priority < 0:
                continue
            if headline or (ids and s.priority == top):
                ids.append(s.id)
            elif not ids or s.priority > top:
                ids = [s.id]
                top = s.priority
        if not ids:
            if headline:
                return []
            taken = self._handle(Undeliverable(element, bare))
            if taken is not None:
                return taken
            return self._bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        if len(ids) == 1:  # one resource (the commonest): no comprehension
            effects: list[Outcome] = [Deliver(ids[0], element)]
        else:
            effects = [Deliver(i, element) for i in ids]
        # its observers (carbons, archives), once per message
        observers = self._delivered_local if local else self._message_delivered
        if observers:
            ctx = self._ctx
            event = MessageDelivered(element, bare, ids)
            for service in observers:
                effects.extend(service.observe(ctx, event))
        return effects

    def _message_to_server(self, element: Element, type_: MessageType) -> list[Outcome]:
        """A message addressed to a local domain (RFC 6120 §10.4 / RFC 6121 §8.4).

        The server has no messaging service of its own: anything but an error
        is answered with ``service-unavailable`` (RFC 6120 §8.4).
        """
        if type_ is MessageType.ERROR:
            return []
        return self._bounce(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    # -- iq --------------------------------------------------------------

    def _route_iq(self, iq: Iq) -> list[Outcome]:
        to = iq.to
        element = iq.element
        sender = iq.from_
        assert sender is not None
        if to is None or (to.local is None and to.resource is None and to.domain in self._domains):
            # RFC 6120 §10.3.3: processed by the server on behalf of the account.
            return self._handle_iq(iq, None)
        if to.domain not in self._domains:
            return self._route_elsewhere(iq)
        if to.local is None:
            return self._iq_unavailable(iq)
        if not self._exists(to):
            # RFC 6121 §8.5.1: no such user.
            return self._iq_unavailable(iq)
        stopped = self._inbound_filtered(element, sender, to.bare)
        if stopped is not None:
            return stopped
        if not to.is_bare:
            target = self._by_full.get(to)
            if target is not None:
                # RFC 6121 §8.5.3.1: deliver to the matching resource.
                return [Deliver(target.id, element)]
            # RFC 6121 §8.5.3.2.3: no matching resource.
            return self._iq_unavailable(iq)
        # RFC 6121 §8.5.2.1.3 / §8.5.2.2.3: the server answers for the account.
        return self._handle_iq(iq, to)

    def _handle_iq(self, iq: Iq, to: JID | None) -> list[Outcome]:
        """An iq for the server (``to`` None) or an account: the services'
        ``IqReceived`` handlers; XEP-0199 pings of the server; otherwise
        ``service-unavailable`` for requests (RFC 6120 §8.4) and nothing for
        results and errors (RFC 6120 §8.2.3)."""
        handled = self._handle(IqReceived(iq, to))
        if handled is not None:
            return handled
        if (
            to is None
            and iq.type is IqType.GET
            and iq.payload is not None
            and iq.payload.tag == _PING_TAG
        ):
            return self._reply(iq_result(iq.element))
        return self._iq_unavailable(iq)

    def _iq_unavailable(self, iq: Iq) -> list[Outcome]:
        if not iq.is_request:
            return []
        return self._bounce(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    # -- other domains -------------------------------------------------

    def _route_elsewhere(self, stanza: Message | Presence | Iq) -> list[Outcome]:
        """A stanza for a domain without accounts here: the service host for
        that domain, if the hosts table has one, else the remote route."""
        assert stanza.to is not None
        host = self._service_hosts.get(stanza.to.domain)
        if host is not None:
            return host.handle(self._ctx, stanza)
        return self._route_remote(stanza.element)

    def _route_remote(self, element: Element) -> list[Outcome]:
        """A stanza for a domain this server does not host (RFC 6120 §10.4.3):
        the remote route with federation on, else ``remote-server-not-found``."""
        route = remote_route(element) if self._federation else None
        if route is None:
            return self._bounce(element, StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND)
        return [route]

    # -- errors ----------------------------------------------------------

    def failed(
        self, session: SessionId, element: Element, condition: StanzaErrorCondition
    ) -> list[Effect]:
        """Routing ``element``, received from ``session``, failed outside the
        router (storage full or broken): answer the sender with ``condition``
        (``resource-constraint``, RFC 6120 §8.3.3.18, or
        ``internal-server-error``, §8.3.3.6), unless it must not be answered.
        Nothing else of that route takes place: the caller drops its effects."""
        sender = self._sessions.get(session)
        if sender is None:
            return []
        stamped = with_attrs(element, from_=str(sender.jid))
        if element is self._handed:  # routed with owned: drop what the transform appended
            del stamped[self._handed_children :]
        if stanza_kind(stamped) is None or not can_reply_with_error(stamped):
            return []
        return [Deliver(sender.id, error_reply(stamped, condition))]

    def _bounce(self, element: Element, condition: StanzaErrorCondition) -> list[Outcome]:
        if not can_reply_with_error(element):
            return []
        return self._reply(error_reply(element, condition))

    def _reply(self, element: Element) -> list[Outcome]:
        to = element.get("to")
        if to is None:
            return []
        try:
            target = self._by_full.get(JID.parse(to))
        except InvalidJID:
            return []
        if target is not None:
            return [Deliver(target.id, element)]
        return self._route_inbound(element)


_NO_SESSIONS: dict[SessionId, BoundSession] = {}
_new_tuple = tuple.__new__


def _stopped_clock() -> float:
    """The default clock: time stands still (tests that do not care about time)."""
    return 0.0
