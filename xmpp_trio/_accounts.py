"""Login and account policy at the server's edge: the authentication back-off
per address and per account, the rate-limited login log, PBKDF2 in worker
threads, and the rates of in-band registrations and password changes
(XEP-0077). The stream decides what SASL and XEP-0077 mean; this decides how
often a peer may try, and does the slow work off the event loop."""

from __future__ import annotations

import logging
import os
from typing import Any

import trio

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.sasl.credentials import HASHES, derive_scram_credentials, salted_password
from xmpp_sansio.server.register import PasswordChange
from xmpp_sansio.stream.answers import FastTokensProvided, UpgradeTasksNeeded
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.stream.events import (
    AuthenticationFailed,
    CredentialsRequested,
    CredentialsUpgradable,
    CredentialsUpgraded,
    DerivationRequested,
    FastTokenIssued,
    FastTokensRequested,
    FastTokenUsed,
    RegistrationRequested,
    UpgradeTasksRequested,
)

from .config import ServerConfig
from .limits import AuthBackoff, LogLimiter, peer_address
from .storage import AccountExists, AccountNotFound, AccountStore
from .stores.fast import FastTokenStore

__all__ = ["Accounts"]

log = logging.getLogger("xmpp_trio.server")

#: credentials PLAIN and SCRAM fall back to when the asked hash is missing
_FALLBACK_HASHES = ("sha256", "sha512", "sha1")


def _derive(password: str, hash_name: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2 for a PLAIN check (run in a worker thread, never on the event loop)."""
    return salted_password(password, hash_name, salt, iterations)


def _ip_key(peer: str) -> str:
    return "ip:" + peer_address(peer)


def _account_key(username: str, domain: str | None) -> str | None:
    """The back-off key of an account: its PRECIS-prepared localpart (RFC 7622
    §3.3, so case and width variants share it), or None for a username that
    can name no account."""
    try:
        jid = JID.from_parts(username, domain or "localhost", None)
    except InvalidJID:
        return None
    return f"account:{jid.local}@{domain or ''}"


class Accounts:
    """The account store, behind the limits on how peers use it."""

    def __init__(self, config: ServerConfig, store: AccountStore) -> None:
        self.config = config
        self.store = store
        limits = config.limits
        self.auth_backoff = AuthBackoff(
            free=limits.auth_failures_before_backoff, max_entries=limits.auth_backoff_max_entries
        )
        self._auth_log = LogLimiter(limits.auth_log_lines_per_minute)
        #: PBKDF2 runs in worker threads, at most one per CPU at once
        self.derivation_limiter = trio.CapacityLimiter(max(1, os.cpu_count() or 1))
        self._registrations: dict[str, list[float]] = {}  # peer address -> times
        self._password_changes: dict[str, list[float]] = {}  # account -> times
        #: PBKDF2 runs (PLAIN checks, upgrades) and FAST token look-ups, counted
        self.derivations = 0
        self.fast_lookups = 0

    def exists(self, local: str, domain: str) -> bool:
        return self.store.exists(local, domain)

    def blocked_for(self, peer: str, domain: str | None, username: str) -> float:
        """Seconds ``peer`` must still wait before authenticating again (0: go ahead).

        The address's own back-off always applies. The account's back-off (keyed
        on the PRECIS-prepared localpart) applies only to addresses that have
        failures on record: a client from a clean address always gets its
        password checked, so guessing from elsewhere cannot lock the real user
        out, and each fresh address of a distributed guesser gets one guess
        before the account's back-off holds it too.
        """
        now = trio.current_time()
        address = _ip_key(peer)
        wait = self.auth_backoff.blocked_for(address, now)
        account = _account_key(username, domain)
        if account is not None and self.auth_backoff.has_failures(address, now):
            wait = max(wait, self.auth_backoff.blocked_for(account, now))
        return wait

    def succeeded(self, jid: JID) -> None:
        account = _account_key(jid.local or "", jid.domain)
        if account is not None:
            self.auth_backoff.succeeded(account)

    def failed(self, peer: str, domain: str | None, event: AuthenticationFailed) -> None:
        """Count a failed login toward the back-off. Only a credential that was
        checked and found wrong is a guess (not an abort, an unknown mechanism,
        a malformed request, a channel binding problem, or the back-off's own
        temporary-auth-failure)."""
        if not event.credentials_checked:
            return
        now = trio.current_time()
        self.auth_backoff.failed(_ip_key(peer), now)
        account = _account_key(event.username or "", domain)
        if account is not None:
            self.auth_backoff.failed(account, now)

    def log(self, message: str, *args: object) -> None:
        """A warning about a failed or refused login, at most
        ``auth_log_lines_per_minute`` of them (peers choose how many)."""
        if not self._auth_log.allow(trio.current_time()):
            return
        suppressed = self._auth_log.take_suppressed()
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        log.warning(message, *args)

    def credentials(self, domain: str | None, event: CredentialsRequested) -> Any:
        """The stored SCRAM credentials of ``event.username`` for
        ``event.hash_name``, else those of another hash the account has
        (SHA-256, SHA-512, SHA-1): the mechanism tells a missing hash from a
        missing account (PLAIN verifies with any hash, SCRAM fails without
        counting). None: no such account."""
        assert domain is not None
        try:
            jid = JID.from_parts(event.username, domain, None)
        except InvalidJID:
            return None
        assert jid.local is not None
        if self.store.is_disabled(jid.local, jid.domain):
            return None  # disabled by an administrator (XEP-0133 §4.3): not-authorized
        for hash_name in (event.hash_name, *_FALLBACK_HASHES):
            found = self.store.credentials(jid.local, jid.domain, hash_name)
            if found is not None:
                return found
        return None

    def fast(
        self,
        conn: ServerConnection,
        peer: str,
        store: FastTokenStore,
        event: FastTokensRequested | FastTokenUsed | FastTokenIssued,
        now: float,
    ) -> None:
        """FAST (XEP-0484) at the edge: answer a token login with the client's
        tokens (none while the peer backs off, or for a disabled or unknown
        account: the login then fails like a wrong password), record a use,
        keep a new token. No PBKDF2 anywhere: the check is one HMAC."""
        if isinstance(event, FastTokenUsed):
            store.used(event, now)
            return
        if isinstance(event, FastTokenIssued):
            store.issued(event, now)
            return
        domain = conn.domain or ""
        found = FastTokensProvided()
        try:
            jid = JID.from_parts(event.username, domain, None)
        except InvalidJID:
            jid = None
        if (
            jid is not None
            and self.blocked_for(peer, domain, event.username) <= 0
            and not self.store.is_disabled(jid.local or "", jid.domain)
        ):
            found = store.tokens(jid, event.agent_id)
        self.fast_lookups += 1
        conn.send(found)

    def upgrade_task(
        self, conn: ServerConnection, event: UpgradeTasksRequested | CredentialsUpgraded
    ) -> None:
        """XEP-0480 at the edge: which requested hashes the account lacks, and
        storing the credentials a task produced (no PBKDF2 here: the client
        derived the SaltedPassword)."""
        local, domain = event.jid.local or "", event.jid.domain
        if isinstance(event, UpgradeTasksRequested):
            missing = tuple(
                h for h in event.hashes if self.store.credentials(local, domain, h) is None
            )
            conn.send(UpgradeTasksNeeded(missing))
            return
        try:
            self.store.add_credentials(local, domain, [event.credentials])
        except AccountNotFound:  # deleted meanwhile (or ANONYMOUS): nothing to upgrade
            return
        log.info(
            "upgraded the credentials of %s with %s (XEP-0480)",
            event.jid,
            event.credentials.hash_name,
        )

    async def upgrade(self, event: CredentialsUpgradable) -> None:
        """Add the hashes ``event.jid`` lacks, derived from the password PLAIN
        just verified (in a worker thread, at ``scram_iterations``)."""
        local, domain = event.jid.local or "", event.jid.domain
        missing = [h for h in HASHES if self.store.credentials(local, domain, h) is None]
        if not missing:
            return
        iterations, password = self.config.scram_iterations, event.password
        self.derivations += 1
        derived = await trio.to_thread.run_sync(
            lambda: [
                derive_scram_credentials(password, h, salt=os.urandom(16), iterations=iterations)
                for h in missing
            ],
            limiter=self.derivation_limiter,
        )
        try:
            self.store.add_credentials(local, domain, derived)
        except AccountNotFound:  # deleted meanwhile: nothing to upgrade
            return
        log.info("upgraded the credentials of %s with %s", event.jid, ", ".join(missing))

    async def derive(self, event: DerivationRequested) -> bytes:
        """Run a PLAIN derivation in a worker thread (bounded by the limiter)."""
        self.derivations += 1
        return await trio.to_thread.run_sync(
            _derive,
            event.password,
            event.hash_name,
            event.salt,
            event.iterations,
            limiter=self.derivation_limiter,
        )

    async def register(
        self, session_id: int, peer: str, domain: str | None, event: RegistrationRequested
    ) -> StanzaErrorCondition | None:
        """Create an account for in-band registration (XEP-0077 §3.1), at most
        ``registrations_per_ip_per_hour`` per peer address; over that the answer is
        ``not-acceptable``, as XEP-0077 §3.1 ("Registration with a Server") allows
        for an entity that "attempts to register too many times"."""
        assert domain is not None
        address = peer.rsplit(":", 1)[0]
        now = trio.current_time()
        recent = [t for t in self._registrations.get(address, []) if now - t < 3600]
        self._registrations[address] = recent
        if len(recent) >= self.config.limits.registrations_per_ip_per_hour:
            self.log("session %d: registration rate limit for %s", session_id, address)
            return StanzaErrorCondition.NOT_ACCEPTABLE
        # The name first: a taken name costs no PBKDF2, and counts as an attempt
        # (each probe of an existing name uses up the address's allowance).
        recent.append(now)
        if self.store.exists(event.local, domain):
            return StanzaErrorCondition.CONFLICT
        iterations = self.config.scram_iterations
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.create(
                    event.local, domain, event.password, iterations=iterations
                ),
                limiter=self.derivation_limiter,
            )
        except AccountExists:  # created meanwhile
            return StanzaErrorCondition.CONFLICT
        log.info("session %d: registered %s@%s from %s", session_id, event.local, domain, address)
        return None

    async def change_password(self, change: PasswordChange) -> StanzaErrorCondition | None:
        """Carry out a password change (XEP-0077 §3.3) in a worker thread, at most
        ``password_changes_per_hour`` per account; over that the answer is
        ``resource-constraint`` (RFC 6120 §8.3.3.18, type wait)."""
        account = str(change.account)
        now = trio.current_time()
        recent = [t for t in self._password_changes.get(account, []) if now - t < 3600]
        self._password_changes[account] = recent
        if len(recent) >= self.config.limits.password_changes_per_hour:
            log.warning("password change rate limit for %s", account)
            return StanzaErrorCondition.RESOURCE_CONSTRAINT
        recent.append(now)
        local, domain = change.account.local or "", change.account.domain
        iterations = self.config.scram_iterations
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.set_password(
                    local, domain, change.password, iterations=iterations
                ),
                limiter=self.derivation_limiter,
            )
        except AccountNotFound:
            return StanzaErrorCondition.REGISTRATION_REQUIRED
        except ValueError:
            return StanzaErrorCondition.NOT_ACCEPTABLE
        return None
