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
from typing import cast, get_args
from xml.etree.ElementTree import Element

from xmpp_sansio.disco import Identity
from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.roster import PRE_APPROVAL_FEATURE, ROSTER_VER_FEATURE, Subscription
from xmpp_sansio.server import Router, Service
from xmpp_sansio.server.adhoc.clients import clients_command
from xmpp_sansio.server.adhoc.muc_admin import destroy_room_command
from xmpp_sansio.server.blocking import BlockingService
from xmpp_sansio.server.caps import CapsService
from xmpp_sansio.server.carbons import CarbonsService
from xmpp_sansio.server.disco import DiscoService
from xmpp_sansio.server.echo import EchoService
from xmpp_sansio.server.effects import (
    AccountDelete,
    BlockAdd,
    BlockClear,
    BlockRemove,
    ClientRevoke,
    DirectoryListing,
    LastForget,
    LastSet,
    LoadQuery,
    OfflineDelete,
    OfflinePage,
    OfflinePush,
    OfflineRemove,
    Persist,
    PrivateDelete,
    PrivatePut,
    RosterDelete,
    RosterPut,
    StoreOp,
    UploadSlot,
    VCardDelete,
    VCardPut,
)
from xmpp_sansio.server.hosts import HostService
from xmpp_sansio.server.info import TimeService, VersionService
from xmpp_sansio.server.last import LastActivityService
from xmpp_sansio.server.mam.service import MamService
from xmpp_sansio.server.mam.store import ArchivePut, MamOp, MamQuery
from xmpp_sansio.server.muc.service import MucService
from xmpp_sansio.server.muc.store import MucOp
from xmpp_sansio.server.offline import OfflineService
from xmpp_sansio.server.presence import PresenceService
from xmpp_sansio.server.private import PrivateService
from xmpp_sansio.server.pubsub.bookmarks import BookmarksCompat
from xmpp_sansio.server.pubsub.config import AccessModel, NodeConfig
from xmpp_sansio.server.pubsub.engine import PubSubEngine, PubSubLimits
from xmpp_sansio.server.pubsub.host import PubSubHost
from xmpp_sansio.server.pubsub.pep import PEPService
from xmpp_sansio.server.pubsub.store import PubSubOp
from xmpp_sansio.server.register import RegistrationService
from xmpp_sansio.server.roster import RosterService
from xmpp_sansio.server.search import DirectoryIndex, DirectoryIndexer, DirectoryService
from xmpp_sansio.server.upload import UploadPolicy, UploadService
from xmpp_sansio.server.vcard import VCardService

from .admin_commands import build_adhoc
from .archive_writer import ArchiveWriter, BatchFloor, database_file
from .config import ServerConfig
from .storage import AccountStore, delete_account
from .stores._sql import transaction
from .stores.accounts import AccountDirectoryAdapter
from .stores.blocking import SqliteBlockStorage
from .stores.directory import SqliteDirectoryStorage
from .stores.fast import FastTokenStore, load_key
from .stores.last import SqliteLastActivityStorage
from .stores.mam import SqliteArchiveStorage
from .stores.muc import SqliteMucStorage
from .stores.offline import SqliteOfflineStorage
from .stores.private import SqlitePrivateStorage
from .stores.pubsub import RosterContacts, SqlitePubSubStorage
from .stores.roster import SqliteRosterStorage
from .stores.upload import SqliteUploadStorage
from .stores.vcard import SqliteVCardStorage

__all__ = ["ServerServices", "build_services", "open_database"]

#: Seconds a connection waits for SQLite's write lock (the busy timeout).
_BUSY_TIMEOUT = 5.0


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


def subscribed_predicate(roster: RosterService) -> Callable[[JID, JID], bool]:
    """``is_subscribed(contact, user)``: the contact receives the user's presence
    (the user's roster has the contact with ``from`` or ``both``, RFC 6121 §2.1.2.5),
    as the roster service reads it (its pending writes included)."""

    def is_subscribed(contact: JID, user: JID) -> bool:
        stored = roster.stored(user.bare, contact.bare)
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
        *,
        archive_writer: bool = False,
    ) -> None:
        limits = config.limits
        #: The clock the router gives the services as ``now`` (Router(clock=...)).
        self.clock = clock
        self._db = db
        roster_storage = SqliteRosterStorage(db)
        self.roster = RosterService(
            roster_storage,
            max_items=limits.max_roster_items,
            max_groups_per_item=limits.max_roster_groups_per_item,
            max_roster_size=limits.max_roster_size,
        )
        is_subscribed = subscribed_predicate(self.roster)
        self._last_storage = SqliteLastActivityStorage(db)
        offline = SqliteOfflineStorage(db)
        vcards = SqliteVCardStorage(db)
        private = SqlitePrivateStorage(db)
        blocks = SqliteBlockStorage(db)
        #: XEP-0280; Bind 2 enables it for a session at bind (XEP-0386 §3.2)
        self.carbons = CarbonsService()
        #: SASL2 clients and their FAST tokens (XEP-0388, XEP-0484), sealed at rest
        self.fast_tokens = FastTokenStore(db, load_key(config.data_dir))
        # Password changes derive PBKDF2: the server runs them off the event loop.
        self.registration = RegistrationService(
            AccountDirectoryAdapter(accounts, config.scram_iterations),
            defer_password_changes=True,
        )
        # Publish-subscribe (XEP-0060) at pubsub.DOMAIN and PEP (XEP-0163),
        # written only through commit() (Persist effects); see docs/pubsub.md.
        pubsub = config.pubsub
        self._pubsub_storage = SqlitePubSubStorage(db)
        contacts = RosterContacts(roster_storage)
        pubsub_limits = PubSubLimits(
            max_item_size=pubsub.max_item_size,
            max_items=pubsub.max_items,
            max_nodes=pubsub.max_nodes,
            max_subscriptions=pubsub.max_subscriptions,
        )
        host_engine = PubSubEngine(self._pubsub_storage, contacts, limits=pubsub_limits)
        caps = CapsService()
        pep_services: list[Service] = []
        compat_services: list[Service] = []
        if pubsub.pep:
            pep = PEPService(
                PubSubEngine(
                    self._pubsub_storage,
                    contacts,
                    limits=pubsub_limits,
                    defaults=NodeConfig(access_model=AccessModel.PRESENCE, max_items=1),
                    pep=True,
                ),
                contacts,
                caps.features_of,
                remote_resources=caps.remote_resources,  # +notify across servers
                remote_owners=caps.remote_owners,
                also_forget=(host_engine,),
            )
            caps.on_learned(pep.caps_learned)
            pep_services.append(pep)
            # XEP-0402 #compat: bookmarks in step with private XML (before PrivateService).
            compat_services.append(BookmarksCompat(pep, private))
        self.disco = DiscoService(
            presence_authorized=lambda requester, account: is_subscribed(requester, account),
            account_identities=(Identity("pubsub", "pep"),) if pubsub.pep else (),
        )
        self.adhoc, admin_store = build_adhoc(config, accounts, db)
        #: Set when either defers work (xmpp_trio/admin_jobs.py takes it).
        self.deferred = self.adhoc.deferred = self.registration.deferred
        # The user directory (XEP-0055) at vjud.DOMAIN, indexed from the vCards at start.
        directory_storage = SqliteDirectoryStorage(db)
        directory_services: list[Service] = []
        self.directory: DirectoryService | None = None
        if config.directory_domain is not None:
            index = DirectoryIndex(
                listed_by_default=config.directory.listed_by_default,
                max_results=config.directory.max_results,
            )
            index.load(directory_storage.vcards(), directory_storage.choices())
            directory_services.append(DirectoryIndexer(index))
            self.directory = DirectoryService(index)
        # Message archives (XEP-0313) and stanza ids (XEP-0359); see docs/mam.md.
        self.archive = SqliteArchiveStorage(db, merge_every=config.mam_writer.merge_every)
        #: Commits the archived copies kept behind on a thread of its own
        #: (``archive_writer``: the server's; not for a database in memory).
        self._writer: ArchiveWriter[ArchivePut] | None = None
        #: Archived copies kept behind before they are committed / handed to
        #: the writer (``[mam]`` ``loop_batch``, ``writer_batch`` to
        #: ``writer_batch_max``, ``writer_backlog``).
        behind = config.mam_writer
        self._loop_batch, self._backlog = behind.loop_batch, behind.backlog
        self._floor = BatchFloor(behind.batch, behind.batch_max)
        path = database_file(db) if archive_writer else None
        if path is not None:
            self._writer = ArchiveWriter(
                path,
                self.archive.write_batch,
                timeout=_BUSY_TIMEOUT,
                checkpoint=behind.checkpoint,
                keep_failed=behind.keep_failed,
                nice=config.runtime.writer_nice,  # docs/runtime.md
            )
            self.archive.attach(self._writer)
        mam_services: list[MamService] = []
        if config.mam.enabled:
            mam_services.append(
                MamService(
                    self.archive,
                    lambda owner, peer: self.roster.stored(owner, peer) is not None,
                    config.mam,
                )
            )
        blocking = BlockingService(blocks, is_subscribed)
        self.services: list[Service] = [
            blocking,
            self.roster,
            PresenceService(
                self.roster,
                max_directed=limits.max_directed_presence,
                max_pending_requests=limits.max_pending_subscriptions,
                max_subscription_status=limits.max_subscription_status,
            ),
            VCardService(vcards, max_size=limits.max_vcard_size),
            *compat_services,
            PrivateService(
                private,
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
            caps,
            *pep_services,
            *mam_services,
            self.carbons,
            OfflineService(offline, max_per_user=limits.max_offline_messages),
            self.adhoc,
            *directory_services,
            self.disco,
        ]
        # The service hosts (the hosts table's subdomains), by domain.
        self.hosts: dict[str, HostService] = {}
        if config.echo_domain is not None:
            self.hosts[config.echo_domain] = EchoService()
        #: HTTP File Upload (XEP-0363) at upload.<first domain>, with [http] upload
        self.upload: UploadService | None = None
        self.upload_storage = SqliteUploadStorage(db)
        if config.http.upload:
            self.upload = build_upload(config, self.upload_storage)
            self.hosts[f"upload.{config.domains[0]}"] = self.upload
        if self.directory is not None and config.directory_domain is not None:
            self.hosts[config.directory_domain] = self.directory
        if config.pubsub_domain is not None:
            self.hosts[config.pubsub_domain] = PubSubHost(host_engine)
        # Multi-user chat (XEP-0045); persistent rooms in SQLite, read at start.
        self._muc_storage = SqliteMucStorage(db)
        self.muc: MucService | None = None
        if config.muc_domain is not None:
            # Room archives (XEP-0313 §5.1.2) in the same store, with the user archives.
            room_archive = mam_services[0] if mam_services else None
            self.muc = MucService(
                config.muc.settings,
                self._muc_storage,
                archive=room_archive,
                blocks=blocking,  # XEP-0191 in rooms (docs/muc.md)
            )
            self.hosts[config.muc_domain] = self.muc
            admins = config.admin.admins
            self.adhoc.engine.add(destroy_room_command(self.muc, lambda jid: jid in admins))
        hosted = frozenset(config.domains)  # listed to users with SASL2 clients only
        #: The live sessions of a SASL2 client (set by the server: admin_jobs.py).
        self.client_sessions: Callable[[JID, str], list[int]] = lambda account, client: []
        self.adhoc.engine.add(
            clients_command(
                self.fast_tokens.client_infos,
                lambda jid: jid.domain in hosted,
                lambda account, client: self.client_sessions(account, client),
            )
        )

        #: Which store writes each kind of op (``Persist`` effects): a new
        #: store (MUC, pubsub) adds its op types here, one line each.
        self.writers: dict[type[StoreOp], Callable[[StoreOp], None]] = {
            OfflinePush: offline.write,
            OfflineDelete: offline.write,
            OfflineRemove: offline.write,
            VCardPut: vcards.write,
            VCardDelete: vcards.write,
            PrivatePut: private.write,
            PrivateDelete: private.write,
            LastSet: self._last_storage.write,
            LastForget: self._last_storage.write,
            BlockAdd: blocks.write,
            BlockRemove: blocks.write,
            BlockClear: blocks.write,
            RosterPut: roster_storage.write,
            RosterDelete: roster_storage.write,
            AccountDelete: self._delete_account,
            ClientRevoke: self.fast_tokens.write,
            **admin_store.writers(),
            DirectoryListing: directory_storage.write,
            UploadSlot: self.upload_storage.write,
            **dict.fromkeys(get_args(PubSubOp), self._pubsub_storage.write),
            **dict.fromkeys(get_args(MucOp), self._muc_storage.write),
            **dict.fromkeys(get_args(MamOp), self.archive.write),
        }
        #: Which store answers each kind of long read (``Load`` effects):
        #: archive pages and pubsub items add theirs here.
        self.readers: dict[type[LoadQuery], Callable[[LoadQuery], object]] = {
            OfflinePage: offline.load,
            **dict.fromkeys(get_args(MamQuery), self.archive.load),
        }

    def load(self, query: LoadQuery) -> object:
        """Read what a ``Load`` effect asks (see :attr:`readers`)."""
        return self.readers[type(query)](query)

    def _delete_account(self, op: StoreOp) -> None:
        # On the services' connection, in the batch's transaction: the
        # account database is the same file (ServerConfig.database_path).
        assert isinstance(op, AccountDelete) and op.account.local is not None
        delete_account(self._db, op.account.local, op.account.domain)

    def keep_behind(self, ops: list[StoreOp]) -> bool:
        """Move the ops the services wrote behind (``Router.behind``: archived
        copies, ``ArchivePut``) onto the archive's queue, in order, and empty
        ``ops``: written as :meth:`write_behind` keeps them. Returns
        :meth:`behind_full` (one call a batch, not two)."""
        for op in ops:
            if type(op) is not ArchivePut:
                raise TypeError(f"{type(op).__name__} is not written behind")
        queue = self.archive.behind
        queue.extend(cast("list[ArchivePut]", ops))  # every op checked above
        ops.clear()
        if self._writer is None:  # behind_full, inline
            return len(queue) >= self._loop_batch
        if len(queue) < self._floor.rows:
            return False
        return self.behind_full()

    def write_behind(self, persists: Sequence[Persist]) -> list[Persist]:
        """Keep the archived copies among ``persists`` that hold nothing (no
        ``then``, no stanza to answer if the write fails) to be written behind
        (docs/mam.md, "Cost"): they take no part in the batch's transaction
        and its ``Router.persisted`` report. Returns the others."""
        behind = self.archive.behind
        keep: list[Persist] = []
        for persist in persists:
            op = persist.op
            if type(op) is ArchivePut and not persist.then and persist.stanza is None:
                behind.append(op)
            else:
                keep.append(persist)
        return keep

    def behind_full(self) -> bool:
        """Whether the archived copies kept behind should be committed (or
        handed to the writer) now."""
        n = len(self.archive.behind)
        writer = self._writer
        if writer is None:
            return n >= self._loop_batch
        if n < self._floor.rows:
            return False
        if writer.busy:
            self._floor.lagging()
            return n >= self._backlog
        return True

    def commit(self, ops: Sequence[StoreOp]) -> None:
        """Commit the store operations of one batch (the ``Persist`` effects
        of the services), each by the store :attr:`writers` names for its
        type, in ONE transaction; raises ``sqlite3.Error`` having written
        none of them. A batch of logout times only (``LastSet``, which the
        store writes behind, see :meth:`flush`) opens no transaction."""
        writers = self.writers
        archive = self.archive
        if all(type(op) in (LastSet, ArchivePut) for op in ops):
            # Archived copies of messages delivered live are written behind
            # (docs/mam.md): no commit of their own on the message path.
            for op in ops:
                if type(op) is ArchivePut:
                    archive.write_behind(op)
                else:
                    writers[LastSet](op)
            if self.behind_full():
                self._floor.handed()
                archive.hand_off(block=True)  # without a writer: flush
            return
        archive.wait_writer()  # its batch is older than what is kept behind
        with transaction(self._db):
            archive.write_pending()
            for op in ops:
                writers[type(op)](op)

    def flush(self) -> None:
        """Write what stores keep behind (logout times, archived copies, SASL2
        clients' logins); the server calls this about once a second. With the
        archive's writer, the archived copies are handed to it if it is idle
        (else they wait for the next flush), not waited for."""
        self._last_storage.flush()
        if self._writer is None:
            self.archive.flush_or_merge()
        else:
            if len(self.archive.behind) < self._floor.low:
                self._floor.quiet()
            self.archive.hand_off()
        self.fast_tokens.flush()

    def close(self) -> None:
        """Write everything kept behind and end the archive's writer (the
        server calls this when it stops)."""
        try:
            self._last_storage.flush()
            self.archive.flush()  # after the writer's batch in flight
            self.fast_tokens.flush()
        finally:
            if self._writer is not None:
                self._writer.close()

    def post_auth_features(self) -> tuple[Element, ...]:
        """Stream features offered after authentication: roster versioning (RFC 6121
        §2.6.1), subscription pre-approval (§3.4.1) and the server's entity
        capabilities (XEP-0115 §6.3)."""
        return (
            Element(ROSTER_VER_FEATURE),
            Element(PRE_APPROVAL_FEATURE),
            self.disco.caps_element(),
        )


def build_upload(config: ServerConfig, storage: SqliteUploadStorage) -> UploadService:
    """The XEP-0363 service, with the HMAC key of ``<data_dir>/upload/key``
    (made on first use, so URLs stay valid across restarts)."""
    http = config.http
    directory = config.data_dir / "upload"
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_bytes(secrets.token_bytes(32))
    policy = UploadPolicy(
        key=key_file.read_bytes(),
        max_file_size=http.upload_max_file_size,
        allowed_types=http.upload_allowed_types,
        quota_per_user=http.upload_quota_per_user,
        slot_lifetime=http.upload_slot_lifetime,
        file_lifetime=http.upload_file_lifetime,
    )
    return UploadService(storage, policy, base_url=http.upload_url.rstrip("/"))


def build_services(
    config: ServerConfig,
    accounts: AccountStore,
    db: sqlite3.Connection,
    *,
    archive_writer: bool = False,
) -> ServerServices:
    """The services for ``config`` (``archive_writer``: the archive's writes
    on a thread of their own, the server's setting; :meth:`ServerServices.close`)."""
    return ServerServices(config, accounts, db, archive_writer=archive_writer)


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
        effects = router.end_sessions(account, StreamErrorCondition.NOT_AUTHORIZED, removed=True)
        # The observers' writes are Persist effects: commit them (and what they held).
        while persists := [e for e in effects if isinstance(e, Persist)]:
            services.commit([p.op for p in persists])
            effects = router.persisted(persists)
        services.flush()
    finally:
        db.close()
