"""SQLite storage of the SASL2 clients of each account (XEP-0388 §2.3
user agents) and their FAST tokens (XEP-0484), encrypted at rest.

The HT mechanisms need the token itself (the HMAC key), so a token cannot
be stored as a hash: each is sealed with AES-256-GCM under a server key
kept in ``fast-token.key`` in the data directory (32 random bytes, created
mode 0600 on first use), with the account and client id as associated data
so a sealed token moved to another row does not open. Stealing the database
alone yields no token; stealing the key file too does.

Two slots per client, ``new`` and ``current`` (XEP-0484 §5.1): a new token
replaces an unused one in ``new``; its first use moves it to ``current``
(dropping the older). Rows go with their account (``ON DELETE CASCADE``).
Everything here runs on the event loop with one short statement or
transaction each, except the client list's logins: :meth:`FastTokenStore.seen`
keeps them in memory and :meth:`~FastTokenStore.flush` writes them behind in
one transaction (the server flushes about once a second and when it stops),
so a SASL2 login costs no commit on the loop (issue 24: 2-5 ms each). Every
read of the list writes them first, so ``xmpp-trio clients`` and the
``urn:xmpp:sasl:2#clients`` command see a login at once, and a revocation
drops the revoked client's; a crash loses at most the last second of "last
login" times.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xmpp_sansio.jid import JID
from xmpp_sansio.server.adhoc.clients import ClientInfo
from xmpp_sansio.server.effects import ClientRevoke, StoreOp
from xmpp_sansio.stream.answers import FastToken, FastTokensProvided
from xmpp_sansio.stream.events import FastTokenIssued, FastTokenUsed, UserAgent

from ._sql import transaction

__all__ = ["KEY_FILE", "ClientRecord", "FastTokenStore", "load_key"]

KEY_FILE: Final = "fast-token.key"
_NONCE: Final = 12

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS sasl2_clients (
        domain TEXT NOT NULL,
        local TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        software TEXT,
        device TEXT,
        last_login REAL NOT NULL,
        PRIMARY KEY (domain, local, agent_id),
        FOREIGN KEY (domain, local) REFERENCES accounts (domain, local) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS fast_tokens (
        domain TEXT NOT NULL,
        local TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        slot TEXT NOT NULL CHECK (slot IN ('new', 'current')),
        mechanism TEXT NOT NULL,
        sealed BLOB NOT NULL,
        expiry REAL NOT NULL,
        count INTEGER NOT NULL DEFAULT 0,
        last_used REAL,
        PRIMARY KEY (domain, local, agent_id, slot),
        FOREIGN KEY (domain, local) REFERENCES accounts (domain, local) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
)


def load_key(data_dir: Path) -> bytes:
    """The server's token key: read from ``data_dir/fast-token.key``, or
    created there (mode 0600, never readable by others) if missing."""
    path = Path(data_dir) / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path}: expected 32 bytes, found {len(key)}") from None
        return key
    key = AESGCM.generate_key(bit_length=256)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One SASL2 client of an account: what ``xmpp-trio clients`` lists."""

    agent_id: str
    software: str | None
    device: str | None
    last_login: float
    token_expiry: float | None  # the latest token's, None: no token


class FastTokenStore:
    """The ``sasl2_clients`` and ``fast_tokens`` tables of ``db`` (created if missing)."""

    def __init__(self, db: sqlite3.Connection, key: bytes) -> None:
        self._db = db
        self._aead = AESGCM(key)
        #: logins not written yet: (domain, local, agent id) -> (software, device, time)
        self._seen: dict[tuple[str, str, str], tuple[str | None, str | None, float]] = {}
        with transaction(db):
            for statement in _SCHEMA:
                db.execute(statement)

    def _ad(self, jid: JID, agent_id: str) -> bytes:
        return f"{jid.bare}\x00{agent_id}".encode()

    def seen(self, jid: JID, agent: UserAgent, now: float) -> None:
        """A SASL2 login of ``jid`` by client ``agent`` (with an id): kept to
        be written behind (:meth:`flush`)."""
        if agent.id is None or jid.local is None:
            return
        self._seen[(jid.domain, jid.local, agent.id)] = (agent.software, agent.device, now)

    def flush(self) -> None:
        """Write the logins kept since the last flush, in one transaction (kept
        until it commits); an account removed meanwhile gets none (``WHERE
        EXISTS``: no foreign key failure)."""
        if not self._seen:
            return
        rows = [(*key, *value, key[0], key[1]) for key, value in self._seen.items()]
        with transaction(self._db):
            self._db.executemany(
                "INSERT INTO sasl2_clients (domain, local, agent_id, software, device, last_login)"
                " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM accounts WHERE domain = ? AND local = ?)"
                " ON CONFLICT (domain, local, agent_id) DO UPDATE SET"
                " software = excluded.software, device = excluded.device,"
                " last_login = excluded.last_login",
                rows,
            )
        self._seen.clear()

    def _forget_seen(self, jid: JID, agent_id: str) -> bool:
        """A revoked client's login not written yet is not written; whether
        there was one."""
        if jid.local is None:
            return False
        return self._seen.pop((jid.domain, jid.local, agent_id), None) is not None

    def tokens(self, jid: JID, agent_id: str) -> FastTokensProvided:
        """The client's tokens, opened (none that fail to open)."""
        rows = self._db.execute(
            "SELECT slot, mechanism, sealed, expiry, count FROM fast_tokens"
            " WHERE domain = ? AND local = ? AND agent_id = ?",
            (jid.domain, jid.local, agent_id),
        ).fetchall()
        found = []
        for slot, mechanism, sealed, expiry, count in rows:
            sealed = bytes(sealed)
            try:
                secret = self._aead.decrypt(
                    sealed[:_NONCE], sealed[_NONCE:], self._ad(jid, agent_id)
                )
            except Exception:  # a wrong key or a tampered row: that token does not open
                continue
            found.append(FastToken(secret, mechanism, float(expiry), int(count), slot))
        return FastTokensProvided(tuple(found))

    def issued(self, event: FastTokenIssued, now: float) -> None:
        """Seal and keep a new token in the client's ``new`` slot (XEP-0484 §5.1)."""
        agent = event.user_agent
        assert agent.id is not None
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, event.token, self._ad(event.jid, agent.id))
        with transaction(self._db), suppress(sqlite3.IntegrityError):  # ANONYMOUS: no account
            self._db.execute(
                "INSERT OR REPLACE INTO fast_tokens"
                " (domain, local, agent_id, slot, mechanism, sealed, expiry, count)"
                " VALUES (?, ?, ?, 'new', ?, ?, ?, 0)",
                (
                    event.jid.domain,
                    event.jid.local,
                    agent.id,
                    event.mechanism,
                    sealed,
                    event.expiry,
                ),
            )

    def used(self, event: FastTokenUsed, now: float) -> None:
        """Record a token login: its count and time; ``invalidate`` deletes it
        (§3.5); a ``new`` token becomes ``current``, the older goes (§5.1)."""
        jid, key = event.jid, (event.jid.domain, event.jid.local, event.agent_id)
        with transaction(self._db):
            if event.invalidate:
                self._db.execute(
                    "DELETE FROM fast_tokens WHERE domain = ? AND local = ? AND agent_id = ?"
                    " AND slot = ?",
                    (*key, event.slot),
                )
                return
            if event.slot == "new":
                self._db.execute(
                    "DELETE FROM fast_tokens WHERE domain = ? AND local = ? AND agent_id = ?"
                    " AND slot = 'current'",
                    key,
                )
                self._db.execute(
                    "UPDATE fast_tokens SET slot = 'current' WHERE domain = ? AND local = ?"
                    " AND agent_id = ? AND slot = 'new'",
                    key,
                )
            self._db.execute(
                "UPDATE fast_tokens SET last_used = ?, count = MAX(count, ?) WHERE domain = ?"
                " AND local = ? AND agent_id = ? AND slot = 'current'",
                (now, event.count or 0, jid.domain, jid.local, event.agent_id),
            )

    def clients(self, jid: JID) -> list[ClientRecord]:
        """The SASL2 clients of ``jid``'s account, most recent login first."""
        self.flush()
        rows = self._db.execute(
            "SELECT c.agent_id, c.software, c.device, c.last_login,"
            " (SELECT MAX(t.expiry) FROM fast_tokens t WHERE t.domain = c.domain"
            "  AND t.local = c.local AND t.agent_id = c.agent_id)"
            " FROM sasl2_clients c WHERE c.domain = ? AND c.local = ?"
            " ORDER BY c.last_login DESC, c.agent_id",
            (jid.domain, jid.local),
        ).fetchall()
        return [
            ClientRecord(a, s, d, float(t), None if e is None else float(e))
            for a, s, d, t, e in rows
        ]

    def client_infos(self, jid: JID) -> list[ClientInfo]:
        """The clients as the user's ad-hoc command shows them."""
        return [ClientInfo(c.agent_id, c.software, c.device) for c in self.clients(jid)]

    def revoke(self, jid: JID, agent_id: str) -> bool:
        """Forget client ``agent_id`` of ``jid``'s account and delete its tokens:
        its next FAST login fails; whether there was such a client."""
        kept = self._forget_seen(jid, agent_id)
        with transaction(self._db):
            return self._revoke(jid, agent_id) or kept

    def write(self, op: StoreOp) -> None:
        """A ``Persist`` op, in the caller's transaction: :class:`ClientRevoke`."""
        assert isinstance(op, ClientRevoke)
        self._forget_seen(op.account, op.client_id)
        self._revoke(op.account, op.client_id)

    def _revoke(self, jid: JID, agent_id: str) -> bool:
        key = (jid.domain, jid.local, agent_id)
        tokens = self._db.execute(
            "DELETE FROM fast_tokens WHERE domain = ? AND local = ? AND agent_id = ?", key
        ).rowcount
        clients = self._db.execute(
            "DELETE FROM sasl2_clients WHERE domain = ? AND local = ? AND agent_id = ?", key
        ).rowcount
        return bool(tokens or clients)
