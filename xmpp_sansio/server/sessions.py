"""The session lifecycle, sans-IO: bound, detached and resumable c2s sessions.

:class:`SessionManager` is the layer above the
:class:`~xmpp_sansio.server.router.Router`. It owns the one session table
(every bound session, attached to its stream or detached from it) and the
session timers, and answers for the policy that used to live in the I/O layer:

* Stream management (XEP-0198 §5): when a resumable stream's transport breaks,
  the session is *detached*: it stays bound (and available) in the router,
  stanzas for it wait in its :class:`~xmpp_sansio.sm.SMState` queue, presence
  updates held the latest per sender (as for an inactive client, XEP-0352 §3.2).
  A client of the same account (§10) that resumes it with the SM-ID gets the
  queue retransmitted once, then the held presence; a stream still attached
  to the session loses it with a ``conflict`` stream error (§5).
* Expiry: a detached session not resumed within the shorter of
  ``resume_timeout`` and the ``max`` agreed in ``<enabled/>``, or holding more
  than ``max_unacked`` stanzas or ``max_unacked_bytes``, is unbound for good,
  and its unacknowledged stanzas are routed again (XEP-0198 §4; see
  :meth:`SessionManager.end`).
* Idle streams: no input for half ``idle_timeout`` gets an XEP-0199 ping (§4.2),
  none for all of it a ``connection-timeout`` stream error (RFC 6120 §4.9.3.4).

Time is an input (``now``): the I/O layer asks :meth:`SessionManager.next_deadline`
when to call :meth:`SessionManager.handle_timer`. Every method returns effects
for the I/O layer (:data:`SessionEffect`), which it matches exhaustively.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement

from ..errors import StreamErrorCondition
from ..jid import JID
from ..sm import PresenceHold, SMState
from ..stanza import StanzaKind, stanza_kind
from ..stream.connection import ServerConnection, State
from ..stream.events import ResumeRequested, StreamManagementEnabled
from ..xml import ns
from ..xml.writer import serialize
from .effects import Deliver, Disconnect, Effect, SessionId
from .router import Router

__all__ = [
    "CloseStream",
    "Reroute",
    "Resumed",
    "SessionEffect",
    "SessionManager",
]

_CARBONS_PREFIX = "{urn:xmpp:carbons:2}"
_PING = f"{{{ns.PING}}}ping"


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close the stream carrying ``session`` with the stream error ``condition``
    (and ``text``); the session itself is not unbound by this (it ends, or is
    detached, when its transport is gone: :meth:`SessionManager.transport_lost`)."""

    session: SessionId
    condition: StreamErrorCondition
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Resumed:
    """The transport known as ``transport`` now carries the resumed session
    ``session`` (XEP-0198 §5): the I/O layer files it under that id. Follows
    the :class:`CloseStream` of the stream it replaces, if any."""

    transport: SessionId
    session: SessionId


@dataclass(frozen=True, slots=True)
class Reroute:
    """Route ``element``, an unacknowledged stanza of a session that ended, again
    as if it had just arrived (XEP-0198 §4), with
    :meth:`~xmpp_sansio.server.router.Router.route_inbound`. It is an effect, not
    a call, because routing may store it (offline messages): the I/O layer
    answers a storage failure with a bounce."""

    session: SessionId
    element: Element


#: What :class:`SessionManager` asks the I/O layer to carry out.
SessionEffect = Effect | CloseStream | Resumed | Reroute


@dataclass(eq=False, slots=True)
class _Entry:
    """One bound session: attached to ``conn``, or detached (``conn`` is None)."""

    id: SessionId
    jid: JID
    conn: ServerConnection | None
    last_input: float
    sm: SMState | None = None
    pinged: bool = False
    held: PresenceHold | None = None  # presence held while detached
    expires_at: float = 0.0  # when a detached session ends
    due: float | None = None  # the time of its live timer entry
    sm_ids: list[str] = field(default_factory=list)


def serialized_size(element: Element) -> int:
    """The bytes ``element`` takes on the wire, for ``max_unacked_bytes`` (0 if
    it cannot be serialised: it will never be sent either)."""
    try:
        return len(serialize(element))
    except ValueError:
        return 0


class SessionManager:
    """Bound sessions, their detachment, resumption, expiry and idle timers.

    Args:
        router: the routing core; the manager binds and unbinds sessions in it.
        resume_timeout: seconds a detached session stays resumable (XEP-0198 §5).
        max_unacked: the most stanzas a detached session keeps.
        max_unacked_bytes: the most bytes of those.
        idle_timeout: seconds without input before ``connection-timeout``; a
            ping goes out at half of it (XEP-0199 §4.2).
        size: the wire size of a stanza (for ``max_unacked_bytes``).
    """

    def __init__(
        self,
        router: Router,
        *,
        resume_timeout: float,
        max_unacked: int,
        max_unacked_bytes: int,
        idle_timeout: float,
        size: Callable[[Element], int] = serialized_size,
    ) -> None:
        self.router = router
        self.resume_timeout = resume_timeout
        self.max_unacked = max_unacked
        self.max_unacked_bytes = max_unacked_bytes
        self.idle_timeout = idle_timeout
        self._size = size
        self._table: dict[SessionId, _Entry] = {}
        self._by_sm_id: dict[str, SessionId] = {}  # an index into the table
        self._timers: list[tuple[float, int, SessionId]] = []
        self._seq = 0
        self._ping_id = 0
        self._closing = False

    # -- queries -------------------------------------------------------------------

    def __contains__(self, session: SessionId) -> bool:
        return session in self._table

    def is_detached(self, session: SessionId) -> bool:
        """Whether ``session`` is bound but has no stream (waits for a resumption)."""
        entry = self._table.get(session)
        return entry is not None and entry.conn is None

    def detached(self) -> list[SessionId]:
        """The detached sessions."""
        return [e.id for e in self._table.values() if e.conn is None]

    def may_detach(self, session: SessionId) -> bool:
        """Whether losing its transport now would detach ``session`` rather than
        end it (XEP-0198 §5: resumption was granted, the stream did not end)."""
        entry = self._table.get(session)
        if entry is None or entry.conn is None or self._closing:
            return False
        return entry.conn.sm_resumable

    def may_bind(self, jid: JID, max_sessions: int) -> bool:
        """Whether the account may bind ``jid`` without exceeding ``max_sessions``.
        A session already bound to the same full JID does not count: the
        conflict policy replaces it (RFC 6120 §7.7.2.2)."""
        others = [bound for bound, _ in self.router.resources(jid.bare) if bound != jid]
        return len(others) < max_sessions

    # -- the stream's lifecycle ----------------------------------------------------------

    def bind(
        self, session: SessionId, conn: ServerConnection, jid: JID, now: float
    ) -> list[SessionEffect]:
        """``conn`` bound the full JID ``jid`` (RFC 6120 §7) as ``session``: bind
        it in the router (which may replace an older session of that JID) and
        start its idle timer."""
        entry = _Entry(session, jid, conn, now)
        self._table[session] = entry
        self._schedule(entry, now + self.idle_timeout / 2)
        return list(self.router.bind(session, jid))

    def stream_management_enabled(self, session: SessionId, event: StreamManagementEnabled) -> None:
        """XEP-0198 §3 is on for ``session``; with an SM-ID (§5) the session may
        be resumed by its account."""
        entry = self._table.get(session)
        if entry is None or entry.conn is None:
            return
        entry.sm = entry.conn.sm
        if event.id is not None and entry.sm is not None:
            self._by_sm_id[event.id] = session
            entry.sm_ids.append(event.id)

    def received(self, session: SessionId, now: float) -> None:
        """Input arrived on ``session``'s stream: its idle timer starts again."""
        entry = self._table.get(session)
        if entry is not None:
            entry.last_input = now
            entry.pinged = False

    def sent(self, session: SessionId, element: Element, receipt: Hashable) -> bool:
        """``element`` (with ``receipt``, see :class:`Deliver`) was queued on the
        stream: under XEP-0198 its receipt is confirmed when the client acks
        it (True), otherwise the I/O layer confirms it once written (False)."""
        entry = self._table.get(session)
        sm = None if entry is None or entry.conn is None else entry.conn.sm
        if sm is None:
            return False
        if sm.queue and sm.queue[-1] is element:
            sm.attach_receipt(element, receipt)
        return True

    def keep(self, session: SessionId, element: Element, receipt: Hashable | None) -> None:
        """A stanza for ``session`` whose stream is ending: under XEP-0198 the
        session goes on (§4), so keep it with its queue, to be sent on
        resumption or routed again; otherwise it is dropped."""
        entry = self._table.get(session)
        sm = None if entry is None or entry.conn is None else entry.conn.sm
        if sm is not None:
            sm.record_outbound(element, self._size(element))
            if receipt is not None:
                sm.attach_receipt(element, receipt)

    def take_confirmed(self, session: SessionId) -> list[Hashable]:
        """Receipts of stanzas the client acknowledged (XEP-0198 §4) since last asked."""
        entry = self._table.get(session)
        sm = None if entry is None or entry.conn is None else entry.conn.sm
        if sm is None or not sm.confirmed:
            return []
        return sm.take_confirmed()

    def resume(
        self, session: SessionId, conn: ServerConnection, event: ResumeRequested, now: float
    ) -> list[SessionEffect]:
        """Answer ``<resume/>`` on ``conn`` (XEP-0198 §5): find the session by its
        SM-ID, check that it belongs to the authenticated account (§10), and
        move it to ``conn``; a stream still attached to it gets ``conflict``."""
        target = self._by_sm_id.get(event.previd)
        entry = None if target is None else self._table.get(target)
        if entry is None or entry.jid.bare != event.jid.bare or entry.sm is None:
            conn.resume_failed()
            return []
        old = entry.conn
        if old is not None and (old.sm is not entry.sm or not old.sm_resumable):
            conn.resume_failed()  # ended cleanly: about to be unbound
            return []
        conn.resume_accepted(entry.sm)
        if conn.state is not State.READY:  # h too high: the stream failed, nothing moved
            return []
        effects: list[SessionEffect] = []
        held = entry.held or PresenceHold()
        if old is not None:
            for stanza in old.take_held_presences():
                held.offer(stanza)
            effects.append(
                CloseStream(
                    entry.id, StreamErrorCondition.CONFLICT, "the session was resumed elsewhere"
                )
            )
        effects.append(Resumed(session, entry.id))
        entry.conn = conn
        entry.held = None
        entry.last_input = now
        entry.pinged = False
        self._schedule(entry, now + self.idle_timeout / 2)
        # XEP-0352 §5.2: a resumed stream is active.
        effects.extend(Deliver(entry.id, stanza) for stanza in held.flush())
        return effects

    def transport_lost(self, session: SessionId, now: float) -> list[SessionEffect]:
        """The transport of ``session`` is gone. Keep the session for
        resumption if its client may resume it (XEP-0198 §5, §7), else end it."""
        entry = self._table.get(session)
        if entry is None or entry.conn is None:
            return []
        conn = entry.conn
        state = conn.sm
        if (
            state is None
            or state.id is None
            or not conn.sm_resumable
            or self._closing
            or self._by_sm_id.get(state.id) != session
        ):
            return self.end(session)
        held = PresenceHold()
        for stanza in conn.take_held_presences():
            held.offer(stanza)
        entry.conn = None
        entry.sm = state
        entry.held = held
        timeout = self.resume_timeout if state.max is None else min(self.resume_timeout, state.max)
        entry.expires_at = now + timeout
        self._schedule(entry, entry.expires_at)
        if self._over_bound(state):
            return self.end(session)
        return []

    def undeliverable(self, effect: Deliver | Disconnect) -> list[SessionEffect]:
        """A router effect for a session without a stream. For a detached
        session, a stanza is kept for the resumption (presence updates held,
        the latest per sender) and a disconnection (replaced by a new session,
        or its account's sessions ended) ends it; anything else is dropped."""
        entry = self._table.get(effect.session)
        if entry is None or entry.conn is not None:
            return []
        if isinstance(effect, Disconnect):
            return self.end(entry.id)
        state, held = entry.sm, entry.held
        assert state is not None and held is not None
        element = effect.element
        for stanza in held.offer(element):
            state.record_outbound(stanza, self._size(stanza))
            if effect.receipt is not None and stanza is element:
                state.attach_receipt(stanza, effect.receipt)
        if self._over_bound(state):
            return self.end(entry.id)
        return []

    def _over_bound(self, state: SMState) -> bool:
        return len(state.queue) > self.max_unacked or state.queued_bytes > self.max_unacked_bytes

    def end(self, session: SessionId) -> list[SessionEffect]:
        """End ``session`` for good (idempotent): unbind it, then route its
        unacknowledged stanzas again as if they had just arrived for a resource
        that is gone (XEP-0198 §4): a message goes to another resource or
        offline storage, an IQ request gets an error. Skipped: stanzas with a
        receipt (their sender still holds them, e.g. stored offline messages),
        presence (RFC 6121 §8.5.3.2.2: the other resources had their own
        copies) and carbon copies (XEP-0280: the original went to its own
        recipient)."""
        entry = self._table.pop(session, None)
        if entry is None:
            return []
        for sm_id in entry.sm_ids:
            if self._by_sm_id.get(sm_id) == session:
                del self._by_sm_id[sm_id]
        state = entry.sm if entry.conn is None else entry.conn.sm
        effects: list[SessionEffect] = list(self.router.unbind(session))
        if state is None:
            return effects
        for stanza in state.take_unacked():
            if state.take_receipt(stanza) is not None:
                continue
            if stanza_kind(stanza) is StanzaKind.PRESENCE or any(
                child.tag.startswith(_CARBONS_PREFIX) for child in stanza
            ):
                continue
            effects.append(Reroute(session, stanza))
        return effects

    def end_sessions(
        self,
        account: JID,
        condition: StreamErrorCondition,
        *,
        keep: SessionId | None = None,
        removed: bool = False,
    ) -> list[SessionEffect]:
        """Kick: end every session of ``account`` but ``keep`` with the stream
        error ``condition`` (RFC 6120 §4.9.3: ``not-authorized`` for a removed
        account, ``reset`` after a password change, ``policy-violation`` for an
        administrator's kick). Attached sessions get a :class:`Disconnect`;
        detached ones end at once. See
        :meth:`~xmpp_sansio.server.router.Router.end_sessions`."""
        effects: list[SessionEffect] = []
        for effect in self.router.end_sessions(account, condition, keep=keep, removed=removed):
            if isinstance(effect, Disconnect) and self.is_detached(effect.session):
                effects.extend(self.end(effect.session))
            else:
                effects.append(effect)
        return effects

    def close(self) -> list[SessionEffect]:
        """The server shuts down: end the detached sessions; from now on a lost
        transport ends its session (nobody could resume it)."""
        self._closing = True
        effects: list[SessionEffect] = []
        for session in self.detached():
            effects.extend(self.end(session))
        return effects

    # -- timers ------------------------------------------------------------------------

    def _schedule(self, entry: _Entry, when: float) -> None:
        """Make ``when`` the entry's timer (an older heap entry goes stale)."""
        self._seq += 1
        entry.due = when
        heapq.heappush(self._timers, (when, self._seq, entry.id))

    def _deadline(self, entry: _Entry) -> float | None:
        """When the entry's timer really fires: expiry, idle ping or idle close."""
        if entry.conn is None:
            return entry.expires_at
        if entry.conn.should_close:
            return None
        return entry.last_input + (self.idle_timeout if entry.pinged else self.idle_timeout / 2)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` should be called next (it may find that
        nothing is due yet: input postpones idle timers lazily)."""
        timers = self._timers
        while timers:
            when, _, session = timers[0]
            entry = self._table.get(session)
            if entry is not None and entry.due == when:
                return when
            heapq.heappop(timers)  # stale
        return None

    def handle_timer(self, now: float) -> list[SessionEffect]:
        """Fire what is due at ``now``: expiries, idle pings and idle closes."""
        effects: list[SessionEffect] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, session = heapq.heappop(timers)
            entry = self._table.get(session)
            if entry is None or entry.due != when:
                continue  # stale
            entry.due = None
            due = self._deadline(entry)
            if due is None:
                continue
            if due > now:
                self._schedule(entry, due)
                continue
            effects.extend(self._fire(entry, now))
        return effects

    def _fire(self, entry: _Entry, now: float) -> list[SessionEffect]:
        if entry.conn is None:
            return self.end(entry.id)  # not resumed in time
        if not entry.pinged:
            # XEP-0199 §4.2: a server-to-client ping.
            entry.pinged = True
            self._ping_id += 1
            ping = Element(
                f"{{{ns.CLIENT}}}iq",
                {
                    "type": "get",
                    "id": f"idle-ping-{self._ping_id}",
                    "from": entry.jid.domain,
                    "to": str(entry.jid),
                },
            )
            SubElement(ping, _PING)
            self._schedule(entry, entry.last_input + self.idle_timeout)
            return [Deliver(entry.id, ping)]
        # RFC 6120 §4.9.3.4: "the entity has not generated any traffic".
        return [CloseStream(entry.id, StreamErrorCondition.CONNECTION_TIMEOUT, "no input")]
