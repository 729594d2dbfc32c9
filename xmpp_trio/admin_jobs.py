"""What the services hand to the server to run off the event loop, and the
live-session lookups the ad-hoc commands need from it.

* XEP-0077 §3.3 password changes (the registration service defers them) and
  XEP-0133 §4.1 add-user / §4.7 change-user-password (the ad-hoc service holds
  their writes, :meth:`~xmpp_sansio.server.adhoc.AdhocService.take_derivations`):
  PBKDF2 runs in a worker thread under the login's derivation limiter, so one
  command does not stall every client for tens of milliseconds; the write
  (and the command's answer) follows in a batch of its own.
* :func:`client_sessions`: the sessions a SASL2 client (XEP-0388 §2.3 user
  agent) has open, which the ``urn:xmpp:sasl:2#clients`` command ends when it
  revokes that client, as ``xmpp-trio revoke`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from xmpp_sansio.jid import JID
from xmpp_sansio.sasl.credentials import ScramCredentials
from xmpp_sansio.server import Router
from xmpp_sansio.server.effects import AccountCreate, AccountPassword, Persist
from xmpp_sansio.server.register import PasswordChange
from xmpp_sansio.server.sessions import SessionEffect, SessionManager

from .storage import derive_credentials

if TYPE_CHECKING:
    from ._accounts import Accounts
    from ._session import Session
    from .config import ServerConfig
    from .services import ServerServices

__all__ = ["client_sessions", "start_deferred"]


class _Server(Protocol):
    """What these jobs use of :class:`xmpp_trio.server.XMPPServer`."""

    config: ServerConfig
    accounts: Accounts
    router: Router
    manager: SessionManager
    services: ServerServices
    sessions: dict[int, Session]
    nursery: trio.Nursery | None

    def apply(self, effects: Sequence[SessionEffect]) -> None: ...
    async def _change_password(self, change: PasswordChange) -> None: ...


def start_deferred(server: _Server) -> None:
    """Start the work the services deferred since the last call, each in a
    task of the server's nursery (the server calls it when
    ``services.deferred.pending`` says there is some)."""
    nursery = server.nursery
    if nursery is None:
        return
    server.services.deferred.pending = False
    for change in server.services.registration.take_password_changes():
        nursery.start_soon(server._change_password, change)
    adhoc = server.services.adhoc
    if adhoc.defer_derivations and adhoc.derivations_pending:
        for persist in adhoc.take_derivations():
            nursery.start_soon(_derive_then_write, server, persist)


async def _derive_then_write(server: _Server, persist: Persist) -> None:
    """Derive the credentials of a held account write in a worker thread,
    then let the ad-hoc service go on (commit, then answer)."""
    op = persist.op
    assert isinstance(op, AccountCreate | AccountPassword)
    iterations = server.config.scram_iterations
    server.accounts.derivations += 1
    try:
        credentials: tuple[ScramCredentials, ...] | None = await trio.to_thread.run_sync(
            derive_credentials,
            op.password,
            iterations,
            limiter=server.accounts.derivation_limiter,
        )
    except ValueError:  # not a PRECIS OpaqueString (RFC 8265 §4.2)
        credentials = None
    outcomes = server.services.adhoc.derived(persist, credentials)
    server.apply(server.router.drain(outcomes))


class _Sessions(Protocol):
    router: Router
    sessions: dict[int, Session]


def client_sessions(server: _Sessions, account: JID, client_id: str) -> list[int]:
    """The live sessions of ``account`` opened by the SASL2 client
    ``client_id`` that are not already ending (what ``xmpp-trio revoke``
    closes)."""
    found = []
    for sid, session in server.sessions.items():
        if session.agent_id != client_id or not session.bound:
            continue
        jid = server.router.session_jid(sid)
        conn = session.conn
        if jid is not None and jid.bare == account and conn is not None and not conn.should_close:
            found.append(sid)
    return found
