"""The sans-IO stanza routing core of the server (RFC 6120 §10, RFC 6121 §8).

:class:`Router` keeps the table of bound sessions (full JID, availability,
priority) and turns each stanza received from a bound client session into a
list of effects: :class:`Deliver` an element to a session, or
:class:`Disconnect` a session with a stream error. It is pure and synchronous;
the only outside knowledge it uses is the injected ``account_exists``
predicate. Session ids are chosen by the caller (any ints, unique among the
live sessions).

Rules not yet implemented (rosters, offline storage, federation, presence
probes) sit behind small overridable methods, documented as hooks:
:meth:`Router._presence_to_contacts`, :meth:`Router._no_resource_for_message`,
:meth:`Router._handle_probe`, :meth:`Router._handle_server_iq`,
:meth:`Router._handle_account_iq` and :meth:`Router._route_remote`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    Message,
    MessageType,
    Presence,
    PresenceType,
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

__all__ = [
    "AvailableResource",
    "BoundSession",
    "Deliver",
    "Disconnect",
    "Effect",
    "Router",
    "SessionId",
]

SessionId = int


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``element`` to the client of ``session``."""

    session: SessionId
    element: Element


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close ``session`` with the stream error ``condition``.

    The router has already unbound the session; the caller need not call
    :meth:`Router.unbind` for it (doing so is harmless).
    """

    session: SessionId
    condition: StreamErrorCondition


Effect = Deliver | Disconnect


class AvailableResource(NamedTuple):
    """A bound session that has sent available presence, with its priority."""

    jid: JID
    session: SessionId
    priority: int


@dataclass(slots=True)
class BoundSession:
    """The router's record of a bound session, passed to the hook methods.

    ``available`` is true once the session has sent available presence
    without ``to`` (and until unavailable presence); ``priority`` is from that
    presence (RFC 6121 §4.7.2.3). Treat it as read-only outside the router.
    """

    id: SessionId
    jid: JID
    available: bool = False
    priority: int = 0


_PING_TAG = f"{{{ns.PING}}}ping"


class Router:
    """Routes stanzas between the bound sessions of the local domains.

    ``domains`` are the domains this server hosts; ``account_exists(local,
    domain)`` says whether an account exists (RFC 6121 §8.5.1). The stream
    layer must have validated the stream (and answered unknown top-level
    elements with ``unsupported-stanza-type``) before calling :meth:`route`.
    """

    def __init__(
        self, domains: Iterable[str], *, account_exists: Callable[[str, str], bool]
    ) -> None:
        self._domains = frozenset(JID.parse(domain).domain for domain in domains)
        self._account_exists = account_exists
        self._sessions: dict[SessionId, BoundSession] = {}
        self._by_full: dict[JID, BoundSession] = {}
        # bare JID -> its sessions in bind order (dicts keep insertion order)
        self._by_bare: dict[JID, dict[SessionId, BoundSession]] = {}

    # ------------------------------------------------------------------
    # session table

    @property
    def domains(self) -> frozenset[str]:
        """The local domains (normalised)."""
        return self._domains

    def is_local(self, domain: str) -> bool:
        """Whether ``domain`` (normalised) is served by this router."""
        return domain in self._domains

    def bind(self, session: SessionId, jid: JID) -> list[Effect]:
        """Record that ``session`` is bound to the full JID ``jid`` (RFC 6120 §7).

        Resource conflicts follow the RFC 6120 §7.7.2.2 "override" policy: a
        session already bound to the same full JID is unbound and gets
        ``Disconnect(old, CONFLICT)`` (followed by the effects of its
        :meth:`unbind`).
        """
        if jid.is_bare:
            raise LocalProtocolError(f"bind needs a full JID, got {jid}")
        if jid.domain not in self._domains:
            raise LocalProtocolError(f"{jid.domain} is not a local domain")
        if session in self._sessions:
            raise LocalProtocolError(f"session {session} is already bound")
        effects: list[Effect] = []
        old = self._by_full.get(jid)
        if old is not None:
            effects.append(Disconnect(old.id, StreamErrorCondition.CONFLICT))
            effects.extend(self.unbind(old.id))
        entry = BoundSession(session, jid)
        self._sessions[session] = entry
        self._by_full[jid] = entry
        self._by_bare.setdefault(jid.bare, {})[session] = entry
        return effects

    def unbind(self, session: SessionId) -> list[Effect]:
        """Forget ``session`` (it ended for any reason); unknown ids are ignored.

        If the session was available, its unavailable presence goes to the
        account's other available resources (RFC 6121 §4.5.2: the server
        broadcasts unavailable presence when a session ends) and to
        :meth:`_presence_to_contacts`.
        """
        entry = self._sessions.pop(session, None)
        if entry is None:
            return []
        del self._by_full[entry.jid]
        siblings = self._by_bare[entry.jid.bare]
        del siblings[session]
        if not siblings:
            del self._by_bare[entry.jid.bare]
        if not entry.available:
            return []
        unavailable = make_presence(type=PresenceType.UNAVAILABLE, from_=entry.jid)
        effects = self._broadcast_to_own_resources(unavailable, self._available(entry.jid.bare))
        effects.extend(self._presence_to_contacts(entry, unavailable))
        return effects

    def session_jid(self, session: SessionId) -> JID | None:
        """The full JID ``session`` is bound to, or ``None``."""
        entry = self._sessions.get(session)
        return None if entry is None else entry.jid

    def resources(self, bare: JID) -> list[tuple[JID, SessionId]]:
        """All bound sessions of the account ``bare`` (in bind order)."""
        return [(s.jid, s.id) for s in self._by_bare.get(bare.bare, {}).values()]

    def available_resources(self, bare: JID) -> list[AvailableResource]:
        """The sessions of ``bare`` that sent available presence, with priorities."""
        return [AvailableResource(s.jid, s.id, s.priority) for s in self._available(bare.bare)]

    def _available(self, bare: JID) -> list[BoundSession]:
        return [s for s in self._by_bare.get(bare, {}).values() if s.available]

    # ------------------------------------------------------------------
    # routing

    def route(self, session: SessionId, element: Element) -> list[Effect]:
        """Route a stanza received from the bound ``session``.

        The ``from`` address is always stamped with the session's full JID
        (RFC 6120 §8.1.2.1; a client-supplied ``from`` is overwritten). An
        invalid stanza is answered with the error its
        :class:`~xmpp_sansio.stanza.StanzaValueError` names (``jid-malformed``
        for a bad ``to``), unless it may not be answered with an error.

        Raises :class:`~xmpp_sansio.errors.LocalProtocolError` if ``session``
        is not bound and :class:`~xmpp_sansio.stanza.UnknownStanza` if
        ``element`` is not a message, presence or iq.
        """
        sender = self._sessions.get(session)
        if sender is None:
            raise LocalProtocolError(f"session {session} is not bound")
        if stanza_kind(element) is None:
            raise UnknownStanza(f"not a stanza: {element.tag!r}")
        stamped = with_attrs(element, from_=str(sender.jid))
        try:
            stanza = parse_stanza(stamped)
        except StanzaValueError as exc:
            bounced = stamped
            if exc.condition is StanzaErrorCondition.JID_MALFORMED:
                # Do not echo the malformed address as the reply's 'from'.
                bounced = with_attrs(stamped, to=None)
            return self._bounce(sender, bounced, exc.condition)
        if isinstance(stanza, Message):
            return self._route_message(sender, stanza)
        if isinstance(stanza, Presence):
            return self._route_presence(sender, stanza)
        return self._route_iq(sender, stanza)

    # -- messages ------------------------------------------------------

    def _route_message(self, sender: BoundSession, msg: Message) -> list[Effect]:
        to = msg.to
        element = msg.element
        if to is None:
            # RFC 6120 §10.3.1: as if addressed to the sender's bare JID.
            to = sender.jid.bare
            element = with_attrs(element, to=str(to))
        if to.domain not in self._domains:
            return self._route_remote(sender, element)
        if to.local is None:
            return self._message_to_server(sender, element, msg.type)
        if not to.is_bare:
            target = self._by_full.get(to)
            if target is not None:
                # RFC 6121 §8.5.3.1: deliver to the matching resource.
                return [Deliver(target.id, element)]
        if not self._account_exists(to.local, to.domain):
            # RFC 6121 §8.5.1: no such user.
            return self._bounce(sender, element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        if not to.is_bare and msg.type is MessageType.GROUPCHAT:
            # RFC 6121 §8.5.3.2.1: no matching resource.
            return self._bounce(sender, element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        # RFC 6121 §8.5.2 (and §8.5.3.2.1 for chat/normal/headline to an
        # unavailable full JID, which this server treats like the bare JID).
        return self._message_to_bare(sender, element, msg.type, to.bare)

    def _message_to_bare(
        self, sender: BoundSession, element: Element, type_: MessageType, bare: JID
    ) -> list[Effect]:
        """RFC 6121 §8.5.2.1.1 / §8.5.2.2.1: a message for an existing account.

        chat/normal go to every available resource sharing the highest
        non-negative priority; headline to all non-negative ones; groupchat is
        refused with ``service-unavailable``; error is dropped. Resources with
        negative priority never get these (RFC 6121 §8.5.2.1.1); when no
        resource qualifies, chat/normal go to :meth:`_no_resource_for_message`
        and headline is dropped.
        """
        if type_ is MessageType.ERROR:
            return []
        if type_ is MessageType.GROUPCHAT:
            return self._bounce(sender, element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        candidates = [s for s in self._available(bare) if s.priority >= 0]
        if type_ is MessageType.HEADLINE:
            return [Deliver(s.id, element) for s in candidates]
        if not candidates:
            return self._no_resource_for_message(sender, element, bare)
        top = max(s.priority for s in candidates)
        return [Deliver(s.id, element) for s in candidates if s.priority == top]

    def _message_to_server(
        self, sender: BoundSession, element: Element, type_: MessageType
    ) -> list[Effect]:
        """A message addressed to a local domain (RFC 6120 §10.4 / RFC 6121 §8.4).

        The server has no messaging service of its own: anything but an error
        is answered with ``service-unavailable`` (RFC 6120 §8.4).
        """
        if type_ is MessageType.ERROR:
            return []
        return self._bounce(sender, element, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    def _no_resource_for_message(
        self, sender: BoundSession, element: Element, bare: JID
    ) -> list[Effect]:
        """Hook: a chat/normal message for an existing account with no resource
        of non-negative priority (RFC 6121 §8.5.2.2.1).

        The RFC lets the server store it offline or answer
        ``service-unavailable``; offline storage comes later, so for now the
        message is bounced.
        """
        return self._bounce(sender, element, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    # -- presence ------------------------------------------------------

    def _route_presence(self, sender: BoundSession, pres: Presence) -> list[Effect]:
        to = pres.to
        element = pres.element
        type_ = pres.type
        if to is None:
            return self._presence_broadcast(sender, pres)
        if to.domain not in self._domains:
            return self._route_remote(sender, element)
        if to.local is None:
            # Presence to the server itself: nothing handles it yet.
            return self._handle_probe(sender, element, to) if type_ is PresenceType.PROBE else []
        if not to.is_bare:
            target = self._by_full.get(to)
            if target is not None and type_ in (
                PresenceType.AVAILABLE,
                PresenceType.UNAVAILABLE,
                PresenceType.ERROR,
            ):
                # RFC 6121 §8.5.3.1: deliver to the matching resource.
                return [Deliver(target.id, element)]
        if not self._account_exists(to.local, to.domain):
            # RFC 6121 §8.5.1: presence to no such user is silently ignored.
            return []
        if type_ is PresenceType.PROBE:
            return self._handle_probe(sender, element, to)
        if type_.is_subscription:
            # RFC 6121 §8.5.2.1.2, §8.5.3 and §3: subscription stanzas are for
            # the account, whatever resource they name.
            return self._subscription_presence(sender, element, to.bare)
        if not to.is_bare:
            # RFC 6121 §8.5.3.2.2: no matching resource: silently ignore.
            return []
        if type_ in (PresenceType.AVAILABLE, PresenceType.UNAVAILABLE):
            # RFC 6121 §8.5.2.1.2: directed presence to the bare JID goes to all
            # available resources; 'to' is left as the bare JID.
            return [Deliver(s.id, element) for s in self._available(to)]
        return []  # presence errors to a bare JID

    def _presence_broadcast(self, sender: BoundSession, pres: Presence) -> list[Effect]:
        """Presence without ``to`` (RFC 6120 §10.3.2, RFC 6121 §4.2.2, §4.4.2, §4.5.2).

        Available presence records the session as available with its
        priority; unavailable presence records it as unavailable. Either is
        sent to all of the account's available resources, *including* the
        sender (RFC 6121 §4.2.2: an entity is implicitly subscribed to its own
        presence), each copy addressed to the recipient's full JID, and handed
        to :meth:`_presence_to_contacts` for the roster-based broadcast. Other
        types without ``to`` are dropped.
        """
        if pres.type is PresenceType.AVAILABLE:
            sender.available = True
            sender.priority = pres.priority
            recipients = self._available(sender.jid.bare)
        elif pres.type is PresenceType.UNAVAILABLE:
            recipients = [s for s in self._available(sender.jid.bare) if s is not sender]
            recipients.append(sender)
            sender.available = False
            sender.priority = 0
        else:
            return []
        effects = self._broadcast_to_own_resources(pres.element, recipients)
        effects.extend(self._presence_to_contacts(sender, pres.element))
        return effects

    def _broadcast_to_own_resources(
        self, element: Element, recipients: Iterable[BoundSession]
    ) -> list[Effect]:
        return [Deliver(s.id, with_attrs(element, to=str(s.jid))) for s in recipients]

    def _presence_to_contacts(self, sender: BoundSession, element: Element) -> list[Effect]:
        """Hook: broadcast the sender's presence to its subscribed contacts
        (RFC 6121 §4.2.2, §4.4.2, §4.5.2). No rosters yet: nothing to do."""
        return []

    def _subscription_presence(
        self, sender: BoundSession, element: Element, bare: JID
    ) -> list[Effect]:
        """Hook: a subscription-management presence for a local account
        (RFC 6121 §3). Until rosters exist it is delivered unchanged to all
        available resources of the account (RFC 6121 §3.1.3)."""
        return [Deliver(s.id, element) for s in self._available(bare)]

    def _handle_probe(self, sender: BoundSession, element: Element, to: JID) -> list[Effect]:
        """Hook: a presence probe, answered by the server itself (RFC 6121 §4.3).
        Needs rosters; dropped for now."""
        return []

    # -- iq --------------------------------------------------------------

    def _route_iq(self, sender: BoundSession, iq: Iq) -> list[Effect]:
        to = iq.to
        element = iq.element
        if to is None:
            # RFC 6120 §10.3.3: processed by the server on behalf of the account.
            return self._handle_server_iq(sender, iq)
        if to.domain not in self._domains:
            return self._route_remote(sender, element)
        if to.local is None:
            return self._handle_server_iq(sender, iq)
        if not to.is_bare:
            target = self._by_full.get(to)
            if target is not None:
                # RFC 6121 §8.5.3.1: deliver to the matching resource.
                return [Deliver(target.id, element)]
        if not self._account_exists(to.local, to.domain):
            # RFC 6121 §8.5.1: no such user.
            return self._iq_unavailable(sender, iq)
        if not to.is_bare:
            # RFC 6121 §8.5.3.2.3: no matching resource.
            return self._iq_unavailable(sender, iq)
        # RFC 6121 §8.5.2.1.3 / §8.5.2.2.3: the server answers for the account.
        return self._handle_account_iq(sender, iq, to)

    def _handle_server_iq(self, sender: BoundSession, iq: Iq) -> list[Effect]:
        """Hook: an iq to a local domain or without ``to`` (RFC 6120 §10.3.3).

        Answers XEP-0199 pings; other requests get ``service-unavailable``
        (RFC 6120 §8.4); results and errors are dropped (RFC 6120 §8.2.3).
        """
        if iq.type is IqType.GET and iq.payload is not None and iq.payload.tag == _PING_TAG:
            return [Deliver(sender.id, iq_result(iq.element))]
        return self._iq_unavailable(sender, iq)

    def _handle_account_iq(self, sender: BoundSession, iq: Iq, account: JID) -> list[Effect]:
        """Hook: an iq to the bare JID of an existing local account (the
        sender's own or another's). RFC 6121 §8.5.2.1.3: the server replies on
        the user's behalf and never delivers it to a resource; with no
        namespace understood yet the answer is ``service-unavailable``."""
        return self._iq_unavailable(sender, iq)

    def _iq_unavailable(self, sender: BoundSession, iq: Iq) -> list[Effect]:
        if not iq.is_request:
            return []
        return self._bounce(sender, iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    # -- other domains -------------------------------------------------

    def _route_remote(self, sender: BoundSession, element: Element) -> list[Effect]:
        """Hook: a stanza for a domain this server does not host (RFC 6120
        §10.4). No federation yet: ``remote-server-not-found``."""
        return self._bounce(sender, element, StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND)

    # -- errors ----------------------------------------------------------

    def _bounce(
        self, sender: BoundSession, element: Element, condition: StanzaErrorCondition
    ) -> list[Effect]:
        """Answer ``element`` with a stanza error, unless it must not be
        (RFC 6120 §8.3.1: never an error in reply to an error)."""
        if not can_reply_with_error(element):
            return []
        return [Deliver(sender.id, error_reply(element, condition))]
