"""What the routing core and its services produce: effects and outcomes.

An *effect* is for the I/O layer to carry out (:class:`Deliver` an element to
a session, :class:`Disconnect` one, :class:`Persist` a store operation); the union :data:`Effect` is what every
public :class:`~xmpp_sansio.server.router.Router` method returns, and the I/O
layer matches it exhaustively.

An *outcome* is what a service returns from a stage: effects, plus requests
to the router itself: route a stanza the service originated (:class:`Route`),
send a server reply (:class:`Reply`), answer with an error (:class:`Bounce`),
end an account's sessions (:class:`EndSessions`). The router turns outcomes
into effects by draining them in order, depth first, without recursion; a
service never holds the router.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition, StreamErrorCondition
from ..jid import JID
from .muc.store import MucOp

__all__ = [
    "Bounce",
    "Deliver",
    "Disconnect",
    "Effect",
    "EndSessions",
    "OfflineDelete",
    "OfflinePush",
    "Outcome",
    "Persist",
    "Reply",
    "Route",
    "SessionId",
    "StoreOp",
]

#: A session's id, chosen by the I/O layer (unique among live sessions).
SessionId = int


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``element`` to the client of ``session``.

    ``receipt``, if given, asks the caller to keep the stanza's handover in
    view: once the stanza is handed over (written to the peer, or
    acknowledged when the stream has XEP-0198 on) the caller passes the
    receipt back to :meth:`Router.handed_over`. A stanza that never is (the
    connection broke first) is not routed again by the caller: the service
    that sent it still holds it (e.g. an offline message, XEP-0160).
    """

    session: SessionId
    element: Element
    receipt: Hashable | None = None


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close ``session`` with the stream error ``condition``.

    The router has already unbound the session; the caller need not call
    :meth:`Router.unbind` for it (doing so is harmless).
    """

    session: SessionId
    condition: StreamErrorCondition


@dataclass(frozen=True, slots=True)
class OfflinePush:
    """Store the serialised message ``stanza`` for ``user`` (bare) under the
    id ``id``, chosen by the service, received at ``stamp`` (XEP-0160 §2)."""

    user: JID
    id: int
    stanza: bytes
    stamp: float


@dataclass(frozen=True, slots=True)
class OfflineDelete:
    """Remove ``user``'s stored messages whose id is at most ``upto``."""

    user: JID
    upto: int


#: A store operation, as data (one per store and kind of write).
StoreOp = OfflinePush | OfflineDelete | MucOp


@dataclass(frozen=True, slots=True)
class Persist:
    """Commit ``op``. The I/O layer commits the ``Persist`` effects of one
    batch of input in one transaction, before it writes that batch's output
    (so a XEP-0198 ``<a h/>`` counting a stanza follows its write), and
    reports the result to :meth:`Router.persisted`. ``stanza``, if given, is
    the stanza whose sender is answered with an error if the commit fails
    (its message is then not stored)."""

    op: StoreOp
    stanza: Element | None = None


#: What the I/O layer carries out.
Effect = Deliver | Disconnect | Persist


@dataclass(frozen=True, slots=True)
class Route:
    """Route ``element``, which carries its ``from``, by the local delivery
    rules as if it had just arrived (RFC 6121 §8): a roster push, a probe
    answer, a carbon. Copies for the sessions in ``skip`` are dropped."""

    element: Element
    skip: frozenset[SessionId] = frozenset()


@dataclass(frozen=True, slots=True)
class Reply:
    """Send a server-generated reply (a result or an error) to its ``to``: the
    bound session with that full JID, else by the usual inbound rules."""

    element: Element


@dataclass(frozen=True, slots=True)
class Bounce:
    """Answer ``element`` with the stanza error ``condition``, routed back to
    its sender, unless it must not be (RFC 6120 §8.3.1: never an error in
    reply to an error or to a result)."""

    element: Element
    condition: StanzaErrorCondition


@dataclass(frozen=True, slots=True)
class EndSessions:
    """End the sessions of the account ``account`` (bare) with the stream
    error ``condition``, except ``keep``: each is unbound (its unavailable
    presence broadcast to the others, none to the sessions ending) and
    disconnected. With ``removed``, the account is gone: then every
    observer of :class:`~xmpp_sansio.server.stages.AccountRemoved` runs
    (XEP-0077 §3.2)."""

    account: JID
    condition: StreamErrorCondition
    keep: SessionId | None = None
    removed: bool = False


#: What a service's stage returns.
Outcome = Deliver | Disconnect | Persist | Route | Reply | Bounce | EndSessions
