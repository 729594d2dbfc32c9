"""Stream Management (XEP-0198) state and nonzas, sans I/O; XEP-0352 presence holding.

Theory of operation
-------------------
XEP-0198 §4 gives each side of a stream two counters: the stanzas it has
*sent*, and the stanzas it has received and *handled* (``h``). Both are
unsignedInt and wrap from 2**32 - 1 back to zero. A sender keeps every stanza
it sent in an *unacked queue* until the peer's ``<a h='...'/>`` says it was
handled; the queue is always exactly the last ``len(queue)`` stanzas sent, so
the peer's last acknowledged count is ``outbound - len(queue)`` (mod 2**32)
and needs no separate field. An ``h`` that acknowledges more stanzas than are
in the queue is the §6 ``handled-count-too-high`` error.

:class:`SMState` holds the counters, the queue, and what resumption needs (the
SM-ID, whether resumption is allowed, the bound full JID). It is owned by one
connection at a time but outlives it: when a transport breaks, the server's
I/O layer keeps the state (and keeps counting stanzas it would have sent into
its queue), and hands it to the new connection that resumes the session
(§5); a client passes the state of its dead connection to the next one. The
connections in :mod:`xmpp_sansio.stream.connection` drive it; this module
does no I/O and knows nothing of streams.

The nonzas (§3-§6) are typed frozen values with :func:`build_nonza` and
:func:`parse_nonza`. :class:`AckRequestPolicy` says when to send ``<r/>``
every N stanzas (§8.2 shows every 5), and whenever output is drained, which
is §8.2's advice to request acks "when an entity has other data to send" and
keeps an idle stream from holding stanzas unacknowledged.

:class:`PresenceHold` is the XEP-0352 §3.2 ("Server behaviour") optimisation
that servers use for inactive clients: presence updates are held, only the
latest from each sender is kept, and everything is flushed on ``<active/>``.
It lives here because it shares SM's concern, that nothing the client must
see is lost: only presence is ever held, never messages or IQs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from .jid import JID
from .stanza import StanzaKind, stanza_kind
from .xml import ns

__all__ = [
    "CSI_NS",
    "MODULUS",
    "NS",
    "Ack",
    "AckRequest",
    "AckRequestPolicy",
    "Enable",
    "Enabled",
    "Failed",
    "HandledCountTooHigh",
    "Nonza",
    "PresenceHold",
    "Resume",
    "Resumed",
    "SMParseError",
    "SMState",
    "build_nonza",
    "handled_count_too_high",
    "is_sm_element",
    "parse_nonza",
]

#: The XEP-0198 namespace (version 3).
NS: Final = ns.SM
#: The XEP-0352 namespace.
CSI_NS: Final = ns.CSI
#: XEP-0198 §4: counters are unsignedInt and wrap to zero at 2**32.
MODULUS: Final = 1 << 32

_PREFIX: Final = "{" + NS + "}"


class HandledCountTooHigh(Exception):
    """The peer acknowledged more stanzas than were sent (XEP-0198 §6).

    Attributes:
        h: the ``h`` the peer sent.
        send_count: our outbound counter (the highest valid ``h``).
    """

    def __init__(self, h: int, send_count: int) -> None:
        super().__init__(f"You acknowledged {h} stanzas, but I only sent you {send_count} so far.")
        self.h = h
        self.send_count = send_count


class SMParseError(ValueError):
    """A Stream Management element is malformed (a missing or invalid attribute)."""


@dataclass(slots=True, eq=False)
class SMState:
    """The state of one XEP-0198 session, which outlives its connection.

    Attributes:
        id: the SM-ID (§5); ``None`` when resumption is not possible.
        resume: whether the session may be resumed (§5).
        max: the resumption time in seconds the server announced (§3), if any.
        location: the server's preferred reconnection address (§3), if any.
        jid: the full JID the session is bound to.
        inbound: ``h``, the stanzas received and handled (mod 2**32).
        outbound: the stanzas sent (mod 2**32).
        queue: the unacknowledged stanzas, oldest first; the last
            ``len(queue)`` stanzas sent.
        sizes: the serialised size of each stanza in ``queue`` (0 when the
            caller did not say), in the same order.
        queued_bytes: the sum of ``sizes``.
        requested: ``outbound`` when we last sent ``<r/>``.
        receipts: opaque tokens the embedding attached to queued stanzas
            (:meth:`attach_receipt`), by the stanza's identity; each moves to
            ``confirmed`` when its stanza is acknowledged.
        confirmed: receipts of acknowledged stanzas, oldest first, until
            :meth:`take_confirmed`.
    """

    id: str | None = None
    resume: bool = False
    max: int | None = None
    location: str | None = None
    jid: JID | None = None
    inbound: int = 0
    outbound: int = 0
    queue: deque[Element] = field(default_factory=deque)
    requested: int = 0
    receipts: dict[int, Hashable] | None = None
    confirmed: list[Hashable] = field(default_factory=list)
    sizes: deque[int] = field(default_factory=deque)
    queued_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("inbound", "outbound", "requested"):
            value = getattr(self, name)
            if not 0 <= value < MODULUS:
                raise ValueError(f"{name} must be an unsignedInt (XEP-0198 §4)")
        if len(self.queue) >= MODULUS:  # pragma: no cover - memory would run out first
            raise ValueError("queue longer than the counter range")

    @property
    def acked(self) -> int:
        """The last ``h`` the peer acknowledged (mod 2**32)."""
        return (self.outbound - len(self.queue)) % MODULUS

    @property
    def unacked(self) -> tuple[Element, ...]:
        """The stanzas sent but not yet acknowledged, oldest first."""
        return tuple(self.queue)

    @property
    def unrequested(self) -> int:
        """Unacknowledged stanzas sent since our last ``<r/>``."""
        return min((self.outbound - self.requested) % MODULUS, len(self.queue))

    def count_inbound(self) -> int:
        """A stanza was received and handled: increment ``h`` (§4) and return it."""
        self.inbound = (self.inbound + 1) % MODULUS
        return self.inbound

    def record_outbound(self, stanza: Element, size: int = 0) -> int:
        """A stanza was sent (or, while detached, would have been): queue it until
        acknowledged and return its sequence number. ``size`` is its
        serialised size in bytes, counted in :attr:`queued_bytes`."""
        self.queue.append(stanza)
        self.sizes.append(size)
        self.queued_bytes += size
        self.outbound = (self.outbound + 1) % MODULUS
        return self.outbound

    def mark_requested(self) -> None:
        """We sent ``<r/>`` now."""
        self.requested = self.outbound

    def check_ack(self, h: int) -> int:
        """How many queued stanzas ``h`` acknowledges; the queue is not changed.

        Raises:
            HandledCountTooHigh: ``h`` acknowledges more than we sent (§6).
                An ``h`` below the previous acknowledgement is also "too high"
                once read modulo 2**32.
        """
        count = (h - self.acked) % MODULUS
        if not 0 <= h < MODULUS or count > len(self.queue):
            raise HandledCountTooHigh(h, self.outbound)
        return count

    def ack(self, h: int) -> tuple[Element, ...]:
        """Process ``<a h/>`` (or the ``h`` of ``<resume/>``/``<resumed/>``, §5):
        drop and return the stanzas it acknowledges.

        Raises:
            HandledCountTooHigh: see :meth:`check_ack`; the queue is unchanged.
        """
        count = self.check_ack(h)
        for _ in range(min(count, len(self.sizes))):
            self.queued_bytes -= self.sizes.popleft()
        acked = tuple(self.queue.popleft() for _ in range(count))
        if self.receipts:
            for stanza in acked:
                receipt = self.receipts.pop(id(stanza), None)
                if receipt is not None:
                    self.confirmed.append(receipt)
        return acked

    def attach_receipt(self, stanza: Element, receipt: Hashable) -> None:
        """Confirm ``receipt`` (see :meth:`take_confirmed`) once ``stanza``,
        which must be in the queue, is acknowledged. What is acknowledged is
        what the peer handled (§4): the embedding uses this to keep a stored
        stanza until then (e.g. an offline message, XEP-0160)."""
        if self.receipts is None:
            self.receipts = {}
        self.receipts[id(stanza)] = receipt

    def take_confirmed(self) -> list[Hashable]:
        """The receipts of the stanzas acknowledged since the last call."""
        confirmed, self.confirmed = self.confirmed, []
        return confirmed

    def take_receipt(self, stanza: Element) -> Hashable | None:
        """Detach and return the receipt of the queued (or just taken) ``stanza``,
        if it has one: its sender keeps it and need not have it routed again."""
        if not self.receipts:
            return None
        return self.receipts.pop(id(stanza), None)

    def take_unacked(self) -> tuple[Element, ...]:
        """Empty the queue and return what it held: the session is ending and the
        caller takes responsibility for these stanzas (§4: treat them as sent
        to an unavailable resource, or resend them)."""
        items = tuple(self.queue)
        self.queue.clear()
        self.sizes.clear()
        self.queued_bytes = 0
        return items


@dataclass(frozen=True, slots=True, kw_only=True)
class AckRequestPolicy:
    """When to send ``<r/>`` (XEP-0198 §4, §8.2).

    Attributes:
        every: request once this many stanzas were sent since the last request.
        on_flush: also request whenever output is drained while some stanzas
            sent since the last request are unacknowledged, so that an idle
            stream never keeps stanzas unacknowledged.
    """

    every: int = 5
    on_flush: bool = True

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be at least 1")

    def due(self, state: SMState, *, flushing: bool) -> bool:
        """Whether ``<r/>`` should be sent now."""
        # state.unrequested, inline: asked for every stanza sent and every flush
        pending = (state.outbound - state.requested) % MODULUS
        queued = len(state.queue)
        if queued < pending:
            pending = queued
        if pending == 0:
            return False
        return pending >= self.every or (flushing and self.on_flush)


# -- nonzas ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enable:
    """``<enable/>`` (§3): the client asks for SM, with resumption if ``resume``."""

    resume: bool = False
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Enabled:
    """``<enabled/>`` (§3, §5): SM is on; ``id`` and ``resume`` for resumption."""

    id: str | None = None
    resume: bool = False
    max: int | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """``<resume previd h/>`` (§5): resume the session ``previd``; ``h`` counts the
    stanzas the client handled on the old stream."""

    previd: str
    h: int


@dataclass(frozen=True, slots=True)
class Resumed:
    """``<resumed previd h/>`` (§5): resumed; ``h`` counts the client's stanzas the
    server handled."""

    previd: str
    h: int


@dataclass(frozen=True, slots=True)
class Failed:
    """``<failed/>`` (§3, §5, §6) with a stanza error condition (RFC 6120 §8.3.3)
    and, after a timed-out session, the server's ``h``."""

    condition: str | None = None
    h: int | None = None


@dataclass(frozen=True, slots=True)
class AckRequest:
    """``<r/>`` (§4): please acknowledge."""


@dataclass(frozen=True, slots=True)
class Ack:
    """``<a h/>`` (§4): ``h`` stanzas handled so far."""

    h: int


Nonza = Enable | Enabled | Resume | Resumed | Failed | AckRequest | Ack


def is_sm_element(el: Element) -> bool:
    """Whether ``el`` is in the XEP-0198 namespace."""
    return el.tag.startswith(_PREFIX)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def build_nonza(nonza: Nonza) -> Element:
    """The element for ``nonza`` (XEP-0198 §3-§6)."""
    match nonza:
        case Enable(resume=resume, max=max_):
            el = Element(_PREFIX + "enable")
            if resume:
                el.set("resume", _bool(resume))
            if max_ is not None:
                el.set("max", str(max_))
        case Enabled(id=id_, resume=resume, max=max_, location=location):
            el = Element(_PREFIX + "enabled")
            if id_ is not None:
                el.set("id", id_)
            if resume:
                el.set("resume", _bool(resume))
            if max_ is not None:
                el.set("max", str(max_))
            if location is not None:
                el.set("location", location)
        case Resume(previd=previd, h=h):
            el = Element(_PREFIX + "resume", {"previd": previd, "h": str(h)})
        case Resumed(previd=previd, h=h):
            el = Element(_PREFIX + "resumed", {"previd": previd, "h": str(h)})
        case Failed(condition=condition, h=h):
            el = Element(_PREFIX + "failed")
            if h is not None:
                el.set("h", str(h))
            if condition is not None:
                SubElement(el, "{" + ns.STANZA_ERRORS + "}" + condition)
        case AckRequest():
            el = Element(_PREFIX + "r")
        case Ack(h=h):
            el = Element(_PREFIX + "a", {"h": str(h)})
    return el


def handled_count_too_high(error: HandledCountTooHigh) -> Element:
    """The application-specific stream error condition of XEP-0198 §6."""
    return Element(
        _PREFIX + "handled-count-too-high",
        {"h": str(error.h), "send-count": str(error.send_count)},
    )


def _parse_h(el: Element, name: str = "h", *, required: bool = True) -> int | None:
    raw = el.get(name)
    if raw is None:
        if required:
            raise SMParseError(f"<{el.tag}/> needs an '{name}' attribute")
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) >= MODULUS:
        raise SMParseError(f"'{name}' must be an unsignedInt (XEP-0198 §4)")
    return int(raw)


def _parse_bool(el: Element, name: str) -> bool:
    raw = (el.get(name) or "false").strip()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise SMParseError(f"'{name}' must be an xs:boolean")


def _parse_max(el: Element) -> int | None:
    value = _parse_h(el, "max", required=False)
    return value if value else None


def parse_nonza(el: Element) -> Nonza:
    """Parse a XEP-0198 element.

    Raises:
        SMParseError: not a known SM element, or a malformed one.
    """
    if not is_sm_element(el):
        raise SMParseError(f"not a stream management element: {el.tag!r}")
    local = el.tag[len(_PREFIX) :]
    if local == "enable":
        return Enable(_parse_bool(el, "resume"), _parse_max(el))
    if local == "enabled":
        return Enabled(el.get("id"), _parse_bool(el, "resume"), _parse_max(el), el.get("location"))
    if local in ("resume", "resumed"):
        previd = el.get("previd")
        if not previd:
            raise SMParseError(f"<{local}/> needs a 'previd' attribute")
        h = _parse_h(el)
        assert h is not None
        return Resume(previd, h) if local == "resume" else Resumed(previd, h)
    if local == "failed":
        condition = None
        for child in el:
            if child.tag.startswith("{" + ns.STANZA_ERRORS + "}") and not child.tag.endswith(
                "}text"
            ):
                condition = child.tag.partition("}")[2]
                break
        return Failed(condition, _parse_h(el, required=False))
    if local == "r":
        return AckRequest()
    if local == "a":
        h = _parse_h(el)
        assert h is not None
        return Ack(h)
    raise SMParseError(f"unknown stream management element <{local}/>")


# -- XEP-0352 ----------------------------------------------------------------------


class PresenceHold:
    """Presence updates held for an inactive client (XEP-0352 §3.2: "Suppress
    presence updates until the client becomes active again. On becoming active,
    push the latest presence from each contact").

    Only presence *updates* (available or unavailable) are held, keyed by their
    ``from``; a newer one replaces the older. Any other stanza passes straight
    through: never a message or an IQ is delayed. A non-update presence (a
    subscription request, an error) from a sender first releases that sender's
    held update, so per-sender order is kept.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, Element] = {}

    def __len__(self) -> int:
        return len(self._held)

    @staticmethod
    def is_update(stanza: Element) -> bool:
        """Whether ``stanza`` is an available or unavailable presence."""
        return stanza_kind(stanza) is StanzaKind.PRESENCE and stanza.get("type") in (
            None,
            "unavailable",
        )

    def offer(self, stanza: Element) -> list[Element]:
        """Hold ``stanza`` if it is a presence update; return what to send now."""
        key = stanza.get("from") or ""
        if self.is_update(stanza):
            self._held.pop(key, None)  # the latest goes last: flush in update order
            self._held[key] = stanza
            return []
        if stanza_kind(stanza) is StanzaKind.PRESENCE and key in self._held:
            return [self._held.pop(key), stanza]
        return [stanza]

    def flush(self) -> list[Element]:
        """Release everything held, in the order of the latest updates."""
        held = list(self._held.values())
        self._held.clear()
        return held
