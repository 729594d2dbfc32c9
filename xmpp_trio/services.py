"""The bundled server's list of services: xmpp_sansio services over SQLite stores.

This is the one place that decides which protocols the server speaks and in
which order their stages run (see :mod:`xmpp_sansio.server.stages`):

1. blocking, first, so that nothing from a blocked JID reaches any other service;
2. roster, then presence (presence uses the roster);
3. vCard, private storage, registration, last activity, version, time, caps;
4. carbons, then offline storage, last, so stored messages are delivered after
   the presence handling of the login that flushes them;
5. disco, which reports the features of everything before it.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import PRE_APPROVAL_FEATURE, ROSTER_VER_FEATURE, Subscription
from xmpp_sansio.server import Router, Service
from xmpp_sansio.server.blocking import BlockingService
from xmpp_sansio.server.caps import CapsService
from xmpp_sansio.server.carbons import CarbonsService
from xmpp_sansio.server.disco import DiscoService
from xmpp_sansio.server.echo import EchoService
from xmpp_sansio.server.effects import StoreOp
from xmpp_sansio.server.hosts import HostService
from xmpp_sansio.server.info import TimeService, VersionService
from xmpp_sansio.server.last import LastActivityService
from xmpp_sansio.server.muc.service import MucService
from xmpp_sansio.server.muc.store import MucAffiliationPut, MucRoomDelete, MucRoomPut
from xmpp_sansio.server.offline import OfflineService
from xmpp_sansio.server.presence import PresenceService
from xmpp_sansio.server.private import PrivateService
from xmpp_sansio.server.register import RegistrationService
from xmpp_sansio.server.roster import RosterService, RosterStorage
from xmpp_sansio.server.vcard import VCardService

from .config import ServerConfig
from .storage import AccountStore
from .stores.accounts import AccountDirectoryAdapter
from .stores.blocking import SqliteBlockStorage
from .stores.last import SqliteLastActivityStorage
from .stores.muc import SqliteMucStorage
from .stores.offline import SqliteOfflineStorage
from .stores.private import SqlitePrivateStorage
from .stores.roster import SqliteRosterStorage
from .stores.vcard import SqliteVCardStorage

__all__ = ["ServerServices", "build_services", "open_database"]


def _version() -> str:
    try:
        return version("xmpp-trio")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "0"


def open_database(config: ServerConfig) -> sqlite3.Connection:
    """The connection every store shares: WAL, so readers never block the writer,
    and ``synchronous=FULL`` so a committed message survives a power cut too."""
    conn = sqlite3.connect(config.database_path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def subscribed_predicate(storage: RosterStorage) -> Callable[[JID, JID], bool]:
    """``is_subscribed(contact, user)``: the contact receives the user's presence
    (the user's roster has the contact with ``from`` or ``both``, RFC 6121 §2.1.2.5)."""

    def is_subscribed(contact: JID, user: JID) -> bool:
        stored = storage.item(user.bare, contact.bare)
        return stored is not None and stored.item.subscription in (
            Subscription.FROM,
            Subscription.BOTH,
        )

    return is_subscribed


class ServerServices:
    """The services of one server and the stream features they add."""

    def __init__(
        self,
        config: ServerConfig,
        accounts: AccountStore,
        db: sqlite3.Connection,
        clock: Callable[[], float] = time.time,
    ) -> None:
        limits = config.limits
        #: The clock the router gives the services as ``now`` (Router(clock=...)).
        self.clock = clock
        roster_storage = SqliteRosterStorage(db)
        is_subscribed = subscribed_predicate(roster_storage)
        self.roster = RosterService(
            roster_storage,
            max_items=limits.max_roster_items,
            max_groups_per_item=limits.max_roster_groups_per_item,
            max_roster_size=limits.max_roster_size,
        )
        self._last_storage = SqliteLastActivityStorage(db)
        # Written only through commit() (Persist effects), once per batch.
        self._offline_storage = SqliteOfflineStorage(db)
        # Password changes derive PBKDF2: the server runs them off the event loop.
        self.registration = RegistrationService(
            AccountDirectoryAdapter(accounts, config.scram_iterations),
            defer_password_changes=True,
        )
        self.disco = DiscoService(
            presence_authorized=lambda requester, account: is_subscribed(requester, account)
        )
        self.services: list[Service] = [
            BlockingService(SqliteBlockStorage(db), is_subscribed),
            self.roster,
            PresenceService(
                self.roster,
                max_directed=limits.max_directed_presence,
                max_pending_requests=limits.max_pending_subscriptions,
                max_subscription_status=limits.max_subscription_status,
            ),
            VCardService(SqliteVCardStorage(db), max_size=limits.max_vcard_size),
            PrivateService(
                SqlitePrivateStorage(db),
                max_size=limits.max_private_size,
                max_items=limits.max_private_items,
                max_total=limits.max_private_total,
            ),
            self.registration,
            LastActivityService(
                self._last_storage,
                lambda requester, user: is_subscribed(requester, user),
                started=clock(),
            ),
            VersionService(_version()),
            TimeService(),
            CapsService(),
            CarbonsService(),
            OfflineService(self._offline_storage, max_per_user=limits.max_offline_messages),
            self.disco,
        ]
        # The service hosts (the hosts table's subdomains), by domain.
        self.hosts: dict[str, HostService] = {}
        if config.echo_domain is not None:
            self.hosts[config.echo_domain] = EchoService()
        # Multi-user chat (XEP-0045); persistent rooms in SQLite, read at start.
        self._muc_storage = SqliteMucStorage(db)
        self.muc: MucService | None = None
        if config.muc_domain is not None:
            self.muc = MucService(config.muc.settings, self._muc_storage)
            self.hosts[config.muc_domain] = self.muc

    def commit(self, ops: Sequence[StoreOp]) -> None:
        """Commit the store operations of one batch (the ``Persist`` effects
        of the services) in one transaction; raises ``sqlite3.Error`` having
        written none of them. Only offline messages are written this way so
        far; the other stores still commit each write as it is made. The
        rooms' writes (XEP-0045) go first, in a transaction of their own: if
        the offline one then fails, they stay written (they put the rooms'
        current state, so that is what a restart loads)."""
        muc_ops = [
            op for op in ops if isinstance(op, MucRoomPut | MucRoomDelete | MucAffiliationPut)
        ]
        if muc_ops:
            self._muc_storage.apply(muc_ops)
        self._offline_storage.apply(ops)

    def flush(self) -> None:
        """Write what stores keep behind (logout times); the server calls this
        about once a second and when it stops."""
        self._last_storage.flush()

    def post_auth_features(self) -> tuple[Element, ...]:
        """Stream features offered after authentication: roster versioning (RFC 6121
        §2.6.1), subscription pre-approval (§3.4.1) and the server's entity
        capabilities (XEP-0115 §6.3)."""
        return (
            Element(ROSTER_VER_FEATURE),
            Element(PRE_APPROVAL_FEATURE),
            self.disco.caps_element(),
        )


def build_services(
    config: ServerConfig, accounts: AccountStore, db: sqlite3.Connection
) -> ServerServices:
    """The services for ``config``."""
    return ServerServices(config, accounts, db)


def remove_account_data(config: ServerConfig, accounts: AccountStore, account: JID) -> None:
    """Forget everything the services keep for a deleted ``account`` (roster,
    offline messages, blocklist, last activity, vCard, private XML) and cancel
    its subscriptions in local contacts' rosters: the same ``AccountRemoved``
    observers an in-band removal (XEP-0077 §3.2) runs, for accounts deleted
    outside the server (``xmpp-trio deluser``). A running server sees the
    contacts' rosters change (their versions change) but does not push the
    change to their sessions."""
    db = open_database(config)
    try:
        services = ServerServices(config, accounts, db)
        # A router with no sessions: what the observers route (the cancelled
        # subscriptions, RFC 6121 §2.5.2) updates local contacts' rosters;
        # deliveries have no session to reach here and are dropped.
        router = Router(
            config.domains,
            rng=secrets.token_bytes,
            account_exists=lambda local, domain: accounts.exists(local, domain),
            services=services.services,
            clock=services.clock,
        )
        router.end_sessions(account, StreamErrorCondition.NOT_AUTHORIZED, removed=True)
        services.flush()
    finally:
        db.close()
