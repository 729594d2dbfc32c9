"""What the routing core and its services produce: effects and outcomes.

An *effect* is for the I/O layer to carry out (:class:`Deliver` an element to
a session, :class:`Disconnect` one, :class:`Persist` a store operation, :class:`Load` a
long read); the union :data:`Effect` is what every
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition, StreamErrorCondition
from ..jid import JID
from ..sasl.credentials import ScramCredentials
from .mam.store import MamOp, MamQuery
from .muc.store import MucOp
from .pubsub.store import PubSubOp

if TYPE_CHECKING:
    from .records import StoredItem

__all__ = [
    "AccountCreate",
    "AccountDelete",
    "AccountDisable",
    "AccountPassword",
    "BlockAdd",
    "BlockClear",
    "BlockRemove",
    "Bounce",
    "ClientRevoke",
    "Deliver",
    "DirectoryListing",
    "Disconnect",
    "Effect",
    "EndSessions",
    "LastForget",
    "LastSet",
    "Load",
    "LoadQuery",
    "MotdSet",
    "OfflineDelete",
    "OfflinePage",
    "OfflinePush",
    "OfflineRemove",
    "Outcome",
    "Persist",
    "PrivateDelete",
    "PrivatePut",
    "Reply",
    "RosterDelete",
    "RosterPut",
    "Route",
    "RouteRemote",
    "SessionId",
    "StoreOp",
    "UploadSlot",
    "VCardDelete",
    "VCardPut",
    "after_writes",
]

#: A session's id, chosen by the I/O layer (unique among live sessions).
SessionId = int


@dataclass(slots=True, unsafe_hash=True)
class Deliver:
    """Send ``element`` to the client of ``session``.

    ``receipt``, if given, asks the caller to keep the stanza's handover in
    view: once the stanza is handed over (written to the peer, or
    acknowledged when the stream has XEP-0198 on) the caller passes the
    receipt back to :meth:`Router.handed_over`. A stanza that never is (the
    connection broke first) is not routed again by the caller: the service
    that sent it still holds it (e.g. an offline message, XEP-0160).

    Not frozen, but never changed once built (hashable as if it were): one
    is built per delivered stanza, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` a field) costs several times a plain one's.
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


@dataclass(frozen=True, slots=True)
class OfflineRemove:
    """Remove ``user``'s stored message ``id`` only (a retracted original,
    XEP-0424 Business Rules; nothing if it is gone already)."""

    user: JID
    id: int


@dataclass(frozen=True, slots=True)
class UploadSlot:
    """Record an HTTP upload slot given to ``user`` (XEP-0363 §4): usable
    for a PUT until ``expires``, the file kept until ``file_expires``."""

    slot: str
    user: JID
    filename: str
    size: int
    content_type: str
    expires: float
    file_expires: float


@dataclass(frozen=True, slots=True)
class RosterPut:
    """Create or replace ``user``'s record ``item`` (RFC 6121 §2) and set the
    roster version to ``version``, chosen by the service (§2.6: a new one
    for each change, never reused)."""

    user: JID
    item: StoredItem
    version: str


@dataclass(frozen=True, slots=True)
class RosterDelete:
    """Delete ``user``'s record for ``contact`` and set the roster version to
    ``version``."""

    user: JID
    contact: JID
    version: str


@dataclass(frozen=True, slots=True)
class BlockAdd:
    """Add ``jids`` to ``user``'s block list (XEP-0191 §3.3)."""

    user: JID
    jids: tuple[JID, ...]


@dataclass(frozen=True, slots=True)
class BlockRemove:
    """Remove ``jids`` from ``user``'s block list (XEP-0191 §3.4)."""

    user: JID
    jids: tuple[JID, ...]


@dataclass(frozen=True, slots=True)
class BlockClear:
    """Empty ``user``'s block list (XEP-0191 §3.5, account removal)."""

    user: JID


@dataclass(frozen=True, slots=True)
class VCardPut:
    """Store ``user``'s serialised vCard ``data`` (XEP-0054 §3.2)."""

    user: JID
    data: bytes


@dataclass(frozen=True, slots=True)
class VCardDelete:
    """Delete ``user``'s vCard (account removal)."""

    user: JID


@dataclass(frozen=True, slots=True)
class PrivatePut:
    """Store ``user``'s private XML ``items``, ``(namespace, local name,
    serialised element)`` each, all or nothing (XEP-0049 §2.2)."""

    user: JID
    items: tuple[tuple[str, str, bytes], ...]


@dataclass(frozen=True, slots=True)
class PrivateDelete:
    """Delete everything ``user`` stored as private XML (account removal)."""

    user: JID


@dataclass(frozen=True, slots=True)
class LastSet:
    """``user``'s last session ended at ``stamp`` with ``status`` (XEP-0012
    §3). A backend may write it behind (see the store contract)."""

    user: JID
    stamp: float
    status: str | None


@dataclass(frozen=True, slots=True)
class LastForget:
    """Forget ``user``'s last logout (account removal)."""

    user: JID


@dataclass(frozen=True, slots=True)
class ClientRevoke:
    """Forget the SASL2 client ``client_id`` of ``account`` and delete its FAST
    tokens (XEP-0388 §2.3, XEP-0484)."""

    account: JID
    client_id: str


@dataclass(frozen=True, slots=True)
class AccountDelete:
    """Delete the account ``account`` (bare) and its credentials (XEP-0077 §3.2)."""

    account: JID


@dataclass(frozen=True, slots=True)
class AccountCreate:
    """Create the account ``account`` (bare) with ``password`` (XEP-0133 §4.1
    "Add User"); the store derives the SCRAM credentials unless
    ``credentials`` holds them already (derived off the event loop)."""

    account: JID
    password: str = field(repr=False)
    credentials: tuple[ScramCredentials, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AccountPassword:
    """Replace the password of ``account`` (bare), XEP-0133 §4.7; the store
    derives the SCRAM credentials unless ``credentials`` holds them."""

    account: JID
    password: str = field(repr=False)
    credentials: tuple[ScramCredentials, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AccountDisable:
    """Disable ``account`` (bare): it cannot log in (XEP-0133 §4.3), or
    re-enable it (``disabled`` false, §4.4)."""

    account: JID
    disabled: bool


@dataclass(frozen=True, slots=True)
class MotdSet:
    """Set the message of the day of ``domain`` (XEP-0133 §4.24), or delete
    it (``text`` ``None``, §4.26)."""

    domain: str
    text: str | None


@dataclass(frozen=True, slots=True)
class DirectoryListing:
    """``account`` (bare) chose to be ``listed`` in the user directory, or
    not (XEP-0055, :mod:`xmpp_sansio.server.search`); ``None``: forget the
    choice (account removal)."""

    account: JID
    listed: bool | None


#: A store operation, as data (one per store and kind of write).
StoreOp = (
    AccountDelete
    | ClientRevoke
    | AccountCreate
    | AccountPassword
    | AccountDisable
    | MotdSet
    | DirectoryListing
    | OfflinePush
    | OfflineDelete
    | OfflineRemove
    | RosterPut
    | RosterDelete
    | BlockAdd
    | BlockRemove
    | BlockClear
    | VCardPut
    | VCardDelete
    | PrivatePut
    | PrivateDelete
    | LastSet
    | LastForget
    | UploadSlot
    | PubSubOp
    | MucOp
    | MamOp
)


@dataclass(frozen=True, slots=True)
class Persist:
    """Commit ``op``. The I/O layer commits the ``Persist`` effects of one
    batch of input in one transaction, before it writes that batch's output
    (so a XEP-0198 ``<a h/>`` counting a stanza follows its write), and
    reports the result to :meth:`Router.persisted`. ``stanza``, if given, is
    the stanza whose sender is answered with an error if the commit fails
    (its message is then not stored, its request not carried out).

    ``then``: what follows the write and must not happen unless it was
    committed (the result of a roster set and its pushes, RFC 6121 §2.1.5,
    §2.1.6): :meth:`Router.persisted` carries it out after a successful
    commit, and drops it after a failed one."""

    op: StoreOp
    stanza: Element | None = None
    then: tuple[Outcome, ...] = ()


@dataclass(frozen=True, slots=True)
class OfflinePage:
    """Read ``user``'s oldest ``limit`` stored messages whose id is above
    ``after_id`` (:meth:`OfflineStorage.peek`): a list of ``StoredMessage``."""

    user: JID
    after_id: int
    limit: int


#: A long read, as data (one per store and kind of read: archive pages and
#: pubsub items add theirs).
LoadQuery = OfflinePage | MamQuery


@dataclass(frozen=True, slots=True)
class Load:
    """Read ``query`` and answer with :meth:`Router.loaded` (``request_id``,
    the result). The I/O layer answers once the batch's writes are committed
    (so the read sees them), off the service's call: a long read does not
    hold the router. ``request_id`` is the service's (it recognises its own
    answers by it, as receipts); the answer is ``None`` if the read failed."""

    request_id: Hashable
    query: LoadQuery


#: What the I/O layer carries out.
@dataclass(frozen=True, slots=True)
class RouteRemote:
    """Send ``element`` (with its ``from``) to the server of the remote
    ``domain`` over a server-to-server stream (RFC 6120 §10.4.3, §13): only
    from a router built with ``federation=True``; the I/O layer bounces it
    with ``remote-server-not-found``/``remote-server-timeout`` when that
    server cannot be reached (§8.3.3.16, §8.3.3.17)."""

    element: Element
    domain: str


Effect = Deliver | Disconnect | Persist | Load | RouteRemote


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
Outcome = Deliver | Disconnect | Persist | Load | RouteRemote | Route | Reply | Bounce | EndSessions


def after_writes(outcomes: list[Outcome]) -> list[Outcome]:
    """``outcomes`` with what follows the first :class:`Persist` moved into
    the ``then`` of the last one (their order kept): a service's answers
    that report or follow a write go out only once it is committed, and
    none of them if it fails. What comes before the first write is not
    held. The writes themselves stay in order, in one batch."""
    first = next((i for i, o in enumerate(outcomes) if type(o) is Persist), None)
    if first is None:
        return outcomes
    writes: list[Persist] = []
    rest: list[Outcome] = []
    for outcome in outcomes[first:]:
        if type(outcome) is Persist:
            writes.append(Persist(outcome.op, outcome.stanza) if outcome.then else outcome)
            rest.extend(outcome.then)
        else:
            rest.append(outcome)
    if rest:
        last = writes[-1]
        writes[-1] = Persist(last.op, last.stanza, tuple(rest))
    return [*outcomes[:first], *writes]
