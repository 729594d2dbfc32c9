"""The server as a processor of its clients' entity capabilities (XEP-0115,
XEP-0390), for services that need to know what a connected resource supports
(e.g. PEP's ``+notify`` filtering, XEP-0163).

When a local session broadcasts presence carrying a capability hash the
server does not know yet, :class:`CapsService` sends the session one disco#info
query for the hash's node, from the server's domain (XEP-0115 §6.2, XEP-0390
§5.5), verifies the answer (XEP-0115 §5.4, XEP-0390 §4.4) and caches it,
globally and in memory, hash -> :class:`~xmpp_sansio.disco.DiscoInfo`
(XEP-0115 §8.2, XEP-0390 §6.2.1: only verified hashes are cached). Several
sessions advertising the same unknown hash cause one query; if the answer
fails verification, is an error, times out or its session ends, the next
session advertising that hash is asked (XEP-0115 §5.4 step 3.9).

Remote contacts (XEP-0163 §4.3.1 across servers): presence from a full JID
of another server reaching a local account (``PresenceReceived``) is read
the same way; an unknown hash is asked of that resource over the server
link, from the local domain the presence reached, verified and cached by
hash as above. The service remembers which local accounts each remote
resource sent available presence to (until its unavailable presence, at
most ``max_remote`` resources, the least recently seen forgotten first):
:meth:`CapsService.remote_resources` and :meth:`CapsService.remote_owners`
are what PEP sends ``+notify`` notifications by.

Only hashes that can be verified are used: the legacy XEP-0115 format
(without ``hash``, §13) and unsupported hash functions are ignored (§5.4
step 2 would allow keeping unverified info for the one JID; this service
does not). When a presence carries both, the XEP-0390 hash set is
preferred, as it is not open to XEP-0115's cache poisoning (XEP-0115 §9.3).

Pending queries older than ``query_timeout`` seconds (by the ``now`` of the
router call) are dropped at the timer stage (``next_deadline`` /
``handle_timer``) and, for an I/O layer that drives no timer, when the next
presence is processed.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final
from xml.etree.ElementTree import Element

from xmpp_sansio.disco import (
    CAPS_HASHES,
    NS_CAPS,
    NS_CAPS2,
    DiscoError,
    DiscoInfo,
    caps2_node,
    info_query,
    parse_caps,
    parse_caps2,
    parse_disco_info,
    verify_caps,
    verify_caps2,
)
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import Iq, IqType, make_iq
from xmpp_sansio.xml import ns

from .effects import Route
from .service import IqService
from .stages import (
    Context,
    Event,
    PresenceBroadcast,
    PresenceReceived,
    SessionUnbound,
    Stage,
)

if TYPE_CHECKING:
    from .effects import Outcome
    from .view import BoundSession

__all__ = ["CapsKey", "CapsService"]

_INFO_QUERY = f"{{{ns.DISCO_INFO}}}query"
_UNAVAILABLE = "unavailable"

#: XEP-0390 hash functions in order of preference (those XEP-0300 recommends first).
_CAPS2_PREFERENCE: Final = (
    "sha-256",
    "sha3-256",
    "blake2b-256",
    "sha-512",
    "sha3-512",
    "blake2b-512",
    "sha-384",
    "sha-224",
)


@dataclass(frozen=True, slots=True)
class CapsKey:
    """A capability hash: ``xep`` is 115 (``value`` is the ``ver``) or 390."""

    xep: int
    algo: str
    value: str


@dataclass(slots=True)
class _Pending:
    key: CapsKey
    jid: JID
    node: str
    sent: float
    tried: set[JID] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Entry:
    info: DiscoInfo
    features: frozenset[str]


def _advertised_key(element: Element) -> tuple[CapsKey, str] | None:
    """The verifiable capability hash in a presence and its disco node."""
    hashes = parse_caps2(element)
    for algo in (*_CAPS2_PREFERENCE, *sorted(hashes)):
        if algo in hashes and algo in CAPS_HASHES and hashes[algo]:
            return CapsKey(390, algo, hashes[algo]), caps2_node(algo, hashes[algo])
    caps = parse_caps(element)
    if caps is not None and caps.hash is not None and caps.hash in CAPS_HASHES:
        return CapsKey(115, caps.hash, caps.ver), caps.disco_node
    return None


class CapsService(IqService):
    """Discovers, verifies and caches the capabilities of local sessions and
    of remote contacts' resources.

    ``cache_size`` bounds the LRU cache of
    verified hashes; ``query_timeout`` is how long a query may stay
    unanswered; ``max_pending`` bounds the queries in flight (presences
    arriving beyond it are not queried; their next presence will be);
    ``max_remote`` bounds the remote resources remembered.

    Anywhere in the router's list works, as long as no earlier service
    consumes iq results addressed to the server.
    """

    server_features = (NS_CAPS, NS_CAPS2)

    def __init__(
        self,
        *,
        cache_size: int = 10_000,
        query_timeout: float = 60.0,
        max_pending: int = 1_000,
        max_remote: int = 10_000,
    ) -> None:
        if cache_size < 1 or max_pending < 1 or max_remote < 1:
            raise ValueError("cache_size, max_pending and max_remote must be positive")
        self._max_remote = max_remote
        # Remote full JID -> the local accounts (bare) it sent available presence
        # to, least recently seen first; and the local domain to ask it from.
        self._remote: OrderedDict[JID, set[JID]] = OrderedDict()
        self._via: dict[JID, str] = {}
        self._cache_size = cache_size
        self._query_timeout = query_timeout
        self._max_pending = max_pending
        self._cache: OrderedDict[CapsKey, _Entry] = OrderedDict()
        self._advertised: dict[JID, tuple[CapsKey, str]] = {}
        self._pending: dict[str, _Pending] = {}
        self._pending_by_key: dict[CapsKey, str] = {}
        self._ids = itertools.count(1)
        self._learned: list[Callable[[Context, JID], list[Outcome]]] = []

    def on_learned(self, listener: Callable[[Context, JID], list[Outcome]]) -> None:
        """Call ``listener(ctx, full_jid)`` for each session advertising a hash
        when that hash is verified (PEP's last items, XEP-0163 §4.3.2); its
        outcomes join the answer's."""
        self._learned.append(listener)

    # -- queries from other services ------------------------------------------------

    def remote_resources(self, owner: JID, contact: JID) -> list[JID]:
        """The full JIDs of the remote account ``contact`` (bare) that sent
        available presence to the local account ``owner`` (bare) and have
        not left (RFC 6121 §4.5.3)."""
        return [
            jid for jid, owners in self._remote.items() if jid.bare == contact and owner in owners
        ]

    def remote_owners(self, full_jid: JID) -> frozenset[JID]:
        """The local accounts the remote resource ``full_jid`` is available to."""
        return frozenset(self._remote.get(full_jid, ()))

    def advertised(self, full_jid: JID) -> CapsKey | None:
        """The capability hash the session ``full_jid`` last advertised, if any."""
        found = self._advertised.get(full_jid)
        return None if found is None else found[0]

    def caps_for(self, full_jid: JID) -> DiscoInfo | None:
        """The verified disco#info of the session ``full_jid``, or ``None`` if it
        advertised no verifiable hash or the hash is not known (yet)."""
        entry = self._entry(full_jid)
        return None if entry is None else entry.info

    def features_of(self, full_jid: JID) -> frozenset[str]:
        """The verified features of the session ``full_jid`` (empty if unknown:
        XEP-0115 §8.3, assume no support until caps are known)."""
        entry = self._entry(full_jid)
        return frozenset() if entry is None else entry.features

    def known(self, key: CapsKey) -> DiscoInfo | None:
        """The cached disco#info for ``key``, if it was verified."""
        entry = self._cache.get(key)
        return None if entry is None else entry.info

    def _entry(self, full_jid: JID) -> _Entry | None:
        found = self._advertised.get(full_jid)
        if found is None:
            return None
        entry = self._cache.get(found[0])
        if entry is not None:
            self._cache.move_to_end(found[0])
        return entry

    # -- stages -------------------------------------------------------------------

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.TIMER})
    observes: ClassVar[tuple[type[Event], ...]] = (
        PresenceBroadcast,
        PresenceReceived,
        SessionUnbound,
    )

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case PresenceBroadcast():
                return self._presence_broadcast(event.session, event.element, ctx.now)
            case PresenceReceived():
                return self._presence_received(event, ctx.now)
            case SessionUnbound():
                return self._session_unbound(event.session, ctx.now)
        return []

    # -- handle and timer ----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the oldest pending query times out."""
        if not self._pending:
            return None
        return min(p.sent for p in self._pending.values()) + self._query_timeout

    def handle_timer(self, ctx: Context) -> list[Outcome]:
        """Drop the queries that timed out and ask the next advertiser."""
        return self._expire(ctx.now)

    def _presence_broadcast(
        self, session: BoundSession, element: Element, now: float
    ) -> list[Outcome]:
        effects = self._expire(now)
        jid = session.jid
        if element.get("type") == _UNAVAILABLE:
            # The presence session is over (RFC 6121 §4.5); a new one will
            # advertise its caps again.
            self._advertised.pop(jid, None)
            return effects
        effects.extend(self._advertise(jid, element, now))
        return effects

    def _presence_received(self, event: PresenceReceived, now: float) -> list[Outcome]:
        """A remote resource's presence reached a local account: remember
        it for that account and learn its caps as a local session's."""
        effects = self._expire(now)
        jid, owner = event.sender, event.recipient
        owners = self._remote.get(jid)
        if event.element.get("type") == _UNAVAILABLE:
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    self._forget_remote(jid)
            return effects
        if owners is None:
            if len(self._remote) >= self._max_remote:
                self._forget_remote(next(iter(self._remote)))  # the least recently seen
            owners = self._remote[jid] = set()
        else:
            self._remote.move_to_end(jid)
        owners.add(owner)
        self._via[jid] = owner.domain
        effects.extend(self._advertise(jid, event.element, now))
        return effects

    def _forget_remote(self, jid: JID) -> None:
        self._remote.pop(jid, None)
        self._via.pop(jid, None)
        self._advertised.pop(jid, None)

    def _advertise(self, jid: JID, element: Element, now: float) -> list[Outcome]:
        """``jid`` sent available ``element``: record its hash and ask for
        the disco#info behind it if unknown (XEP-0115 §6.2)."""
        advertised = _advertised_key(element)
        if advertised is None:
            if parse_caps(element) is not None or parse_caps2(element):
                # Unverifiable (legacy or unknown hash): forget the old hash.
                self._advertised.pop(jid, None)
            # No <c/> at all: keep the last one (XEP-0115 §8.4, XEP-0390 §6.3:
            # clients may omit unchanged caps).
            return []
        self._advertised[jid] = advertised
        key, node = advertised
        if key in self._cache:
            self._cache.move_to_end(key)
            return []
        if key in self._pending_by_key or len(self._pending) >= self._max_pending:
            return []
        return self._query(key, jid, node, set(), now)

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        if to is not None or iq.is_request:
            return None
        pending = self._pending.get(iq.id)
        if pending is None or iq.from_ != pending.jid:
            return None
        self._forget(iq.id)
        payload = iq.payload
        if iq.type is IqType.RESULT and payload is not None and payload.tag == _INFO_QUERY:
            try:
                info = parse_disco_info(payload).with_node(None)
            except DiscoError:
                info = None
            if info is not None and self._verify(pending.key, info):
                self._store(pending.key, info)
                learned: list[Outcome] = []
                for listener in self._learned:
                    for jid, (key, _) in list(self._advertised.items()):
                        if key == pending.key:
                            learned.extend(listener(ctx, jid))
                return learned
        # An error, or an answer that does not verify: ask someone else.
        return self._retry(pending, ctx.now)

    def _session_unbound(self, session: BoundSession, now: float) -> list[Outcome]:
        self._advertised.pop(session.jid, None)
        effects: list[Outcome] = []
        for query_id, pending in list(self._pending.items()):
            if pending.jid == session.jid:
                self._forget(query_id)
                effects.extend(self._retry(pending, now))
        return effects

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _verify(key: CapsKey, info: DiscoInfo) -> bool:
        if key.xep == 390:
            return verify_caps2(info, key.algo, key.value)
        return verify_caps(info, key.value, key.algo)

    def _store(self, key: CapsKey, info: DiscoInfo) -> None:
        self._cache[key] = _Entry(info, frozenset(info.features))
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _query(
        self, key: CapsKey, jid: JID, node: str, tried: set[JID], now: float
    ) -> list[Outcome]:
        """Send the disco#info query for ``node`` to ``jid`` (XEP-0115 §6.2)."""
        query_id = f"caps-{next(self._ids)}"
        tried.add(jid)
        self._pending[query_id] = _Pending(key, jid, node, now, tried)
        self._pending_by_key[key] = query_id
        # A remote resource is asked from the local domain its presence reached.
        from_ = self._via.get(jid, jid.domain)
        iq = make_iq(IqType.GET, query_id, info_query(node), to=jid, from_=from_)
        return [Route(iq)]

    def _forget(self, query_id: str) -> None:
        pending = self._pending.pop(query_id)
        if self._pending_by_key.get(pending.key) == query_id:
            del self._pending_by_key[pending.key]

    def _retry(self, failed: _Pending, now: float) -> list[Outcome]:
        """Ask the next session advertising the failed hash (XEP-0115 §5.4
        step 3.9), if any has not been asked yet."""
        if failed.key in self._cache or failed.key in self._pending_by_key:
            return []
        for jid, (key, node) in self._advertised.items():
            if key == failed.key and jid not in failed.tried:
                return self._query(key, jid, node, failed.tried, now)
        return []

    def _expire(self, now: float) -> list[Outcome]:
        deadline = now - self._query_timeout
        effects: list[Outcome] = []
        for query_id, pending in list(self._pending.items()):
            if pending.sent <= deadline and query_id in self._pending:
                self._forget(query_id)
                effects.extend(self._retry(pending, now))
        return effects
