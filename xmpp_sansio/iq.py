"""IQ request/response tracking (RFC 6120 §8.2.3), sans I/O.

An entity that sends an IQ get or set must get exactly one result or error
back with the same ``id``, from the entity it asked. :class:`IqTracker` hands
out ids, remembers what is pending, matches responses on ``(id, from)`` and
reports what timed out. Clock and randomness are the caller's.

Matching ``from`` (RFC 6120 §8.2.3, §10.3.3): a response to a request sent to
a JID must come from that JID. A request sent without ``to`` (to the user's
own account) may be answered without ``from``, or from the user's bare JID or
domain; both forms are accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from .jid import JID, InvalidJID
from .stanza import StanzaError, parse_error

__all__ = ["IqError", "IqResult", "IqTimeout", "IqTracker"]


@dataclass(frozen=True, slots=True)
class IqResult:
    """The request ``id`` was answered with a result."""

    id: str
    element: Element

    @property
    def payload(self) -> Element | None:
        """The result's child element, if any."""
        return self.element[0] if len(self.element) else None


@dataclass(frozen=True, slots=True)
class IqError:
    """The request ``id`` was answered with an error."""

    id: str
    element: Element
    error: StanzaError


@dataclass(frozen=True, slots=True)
class IqTimeout:
    """No answer to the request ``id`` before its deadline."""

    id: str


IqOutcome = IqResult | IqError


@dataclass(slots=True)
class _Pending:
    to: JID | None
    deadline: float


class IqTracker:
    """Pending IQ requests of one entity."""

    def __init__(self, *, rng: Callable[[int], bytes]) -> None:
        self._rng = rng
        self._pending: dict[str, _Pending] = {}
        self.own_jid: JID | None = None  #: set once bound, for matching ``from``

    def __len__(self) -> int:
        return len(self._pending)

    def request(self, iq: Element, *, now: float, timeout: float) -> str:
        """Register an outgoing get/set ``iq``; give it an id if it has none.

        Returns the id. Raises ValueError for an iq that is not a request.
        """
        if iq.get("type") not in ("get", "set"):
            raise ValueError("only iq get/set are requests")
        iq_id = iq.get("id")
        if not iq_id:
            iq_id = self._rng(8).hex()
            iq.set("id", iq_id)
        if iq_id in self._pending:
            raise ValueError(f"iq id {iq_id!r} is already pending")
        to = iq.get("to")
        self._pending[iq_id] = _Pending(JID.parse(to) if to else None, now + timeout)
        return iq_id

    def cancel(self, iq_id: str) -> None:
        """Forget a pending request (an answer arriving later is not matched)."""
        self._pending.pop(iq_id, None)

    def handle(self, iq: Element) -> IqOutcome | None:
        """Match an incoming iq result/error; ``None`` if it answers nothing pending."""
        kind = iq.get("type")
        iq_id = iq.get("id")
        if kind not in ("result", "error") or iq_id is None:
            return None
        pending = self._pending.get(iq_id)
        if pending is None or not self._from_matches(pending.to, iq.get("from")):
            return None
        del self._pending[iq_id]
        if kind == "result":
            return IqResult(iq_id, iq)
        return IqError(iq_id, iq, parse_error(iq))

    def _from_matches(self, to: JID | None, sender: str | None) -> bool:
        try:
            sender_jid = JID.parse(sender) if sender else None
        except InvalidJID:
            return False
        if to is None:
            own = self.own_jid
            return sender_jid is None or (
                own is not None and sender_jid in (own.bare, JID(None, own.domain), own)
            )
        if sender_jid is None:
            # A request to our own bare JID may be answered without 'from'.
            return self.own_jid is not None and to == self.own_jid.bare
        return sender_jid == to

    def next_deadline(self) -> float | None:
        """The earliest deadline among pending requests."""
        return min((p.deadline for p in self._pending.values()), default=None)

    def handle_timer(self, now: float) -> list[IqTimeout]:
        """Report (and forget) every request whose deadline has passed."""
        expired = [i for i, p in self._pending.items() if p.deadline <= now]
        for iq_id in expired:
            del self._pending[iq_id]
        return [IqTimeout(i) for i in expired]
