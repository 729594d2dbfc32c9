"""The server's ad-hoc commands (XEP-0050) and XEP-0133 administration over
the SQLite stores: the facts the commands read (registered accounts, rosters,
last logouts), the message of the day (table ``motd``), and the writers of
the admin store ops (``AccountCreate``, ``AccountPassword``,
``AccountDisable``, ``MotdSet``), committed in the batch's transaction by
``ServerServices.commit``. See docs/admin.md."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from xmpp_sansio.jid import JID
from xmpp_sansio.server.adhoc import AdhocEngine, AdhocService, AdminCommands
from xmpp_sansio.server.effects import (
    AccountCreate,
    AccountDisable,
    AccountPassword,
    MotdSet,
    StoreOp,
)

from .config import ServerConfig
from .storage import AccountStore, create_account, set_credentials, set_disabled
from .stores.last import SqliteLastActivityStorage
from .stores.roster import SqliteRosterStorage

__all__ = ["AdminStore", "StoreFacts", "build_adhoc"]

_MOTD_SCHEMA = """
CREATE TABLE IF NOT EXISTS motd (
    domain TEXT NOT NULL PRIMARY KEY,
    text TEXT NOT NULL
) WITHOUT ROWID
"""


class StoreFacts:
    """:class:`~xmpp_sansio.server.adhoc.AdminFacts` over the stores."""

    def __init__(
        self,
        accounts: AccountStore,
        roster: SqliteRosterStorage,
        last: SqliteLastActivityStorage,
    ) -> None:
        self._accounts = accounts
        self._roster = roster
        self._last = last

    def registered(self, domain: str) -> list[JID]:
        return [JID(local, dom, None) for local, dom in self._accounts.list_accounts(domain)]

    def last_logout(self, account: JID) -> float | None:
        last = self._last.get(account)
        return None if last is None else last.stamp

    def roster(self, account: JID) -> list[tuple[str, str, str]]:
        _, stored = self._roster.get(account)
        return [
            (str(s.item.jid), s.item.name or "", s.item.subscription.value)
            for s in stored
            if s.in_roster
        ]


class AdminStore:
    """Writes the admin ops on the services' connection (in the batch's
    transaction) and reads the messages of the day at start."""

    def __init__(self, db: sqlite3.Connection, iterations: int) -> None:
        self._db = db
        self._iterations = iterations
        with db:
            db.execute(_MOTD_SCHEMA)

    def motd(self) -> dict[str, str]:
        return {str(d): str(t) for d, t in self._db.execute("SELECT domain, text FROM motd")}

    def write(self, op: StoreOp) -> None:
        match op:
            case AccountCreate(account=account, password=password, credentials=credentials):
                # XEP-0133 "Add User": the server derives the credentials in a
                # worker thread first (xmpp_trio/admin_jobs.py); others derive here.
                assert account.local is not None
                create_account(
                    self._db, account.local, account.domain, password, self._iterations, credentials
                )
            case AccountPassword(account=account, password=password, credentials=credentials):
                assert account.local is not None
                set_credentials(
                    self._db, account.local, account.domain, password, self._iterations, credentials
                )
            case AccountDisable(account=account, disabled=disabled):
                assert account.local is not None
                set_disabled(self._db, account.local, account.domain, disabled)
            case MotdSet(domain=domain, text=None):
                self._db.execute("DELETE FROM motd WHERE domain = ?", (domain,))
            case MotdSet(domain=domain, text=str(text)):
                self._db.execute(
                    "INSERT INTO motd (domain, text) VALUES (?, ?) "
                    "ON CONFLICT (domain) DO UPDATE SET text = excluded.text",
                    (domain, text),
                )
            case _:
                raise TypeError(f"not an admin op: {op!r}")

    def writers(self) -> dict[type[StoreOp], Callable[[StoreOp], None]]:
        """This store's lines of ``ServerServices.writers``."""
        return dict.fromkeys((AccountCreate, AccountPassword, AccountDisable, MotdSet), self.write)


def build_adhoc(
    config: ServerConfig, accounts: AccountStore, db: sqlite3.Connection
) -> tuple[AdhocService, AdminStore]:
    """The server's ad-hoc commands: XEP-0133 for ``[admin] admins``."""
    admins = config.admin.admins
    store = AdminStore(db, config.scram_iterations)
    holder: list[AdhocService] = []
    domains = frozenset(config.domains)
    commands = AdminCommands(
        lambda jid: jid in admins,
        lambda: holder[0].online,
        lambda jid: accounts.exists(jid.local or "", jid.domain),
        lambda: domains,
        StoreFacts(accounts, SqliteRosterStorage(db), SqliteLastActivityStorage(db)),
        store.motd(),
    )
    engine = AdhocEngine(
        commands.commands(),
        session_lifetime=config.admin.command_session_lifetime,
        max_sessions=config.admin.max_command_sessions,
    )
    # PBKDF2 of add-user/change-user-password in worker threads (admin_jobs.py)
    holder.append(AdhocService(engine, commands, defer_derivations=True))
    return holder[0], store
