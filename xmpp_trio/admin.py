"""The administrator's operations on a running server, and the local admin
socket the ``xmpp-trio`` command line reaches them through.

:class:`Admin` gathers the facts (sessions, listeners, uptime, accounts) and
carries out the requests of :mod:`xmpp_sansio.server.admin`, where what a
kick or an announcement sends is decided. The XEP-0133 ad-hoc commands are
meant to call the same :meth:`Admin.handle`.

The admin socket is a Unix socket, ``<data_dir>/admin.sock``, mode 0600 in a
data directory of mode 0700: only the server's own user may use it, and it is
never on the network. Each connection sends one JSON request per line and gets
one JSON answer per line (see docs/operations.md). :func:`request` is the
client side, used by the command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, assert_never

import trio

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server.admin import (
    KICK_CONDITION,
    MAX_REQUEST_SIZE,
    AccountChanged,
    AdminRequest,
    AdminRequestError,
    Announce,
    Clients,
    Disable,
    Kick,
    Motd,
    Reload,
    Revoke,
    Sessions,
    Status,
    Stop,
    Users,
    announcement,
    disable_account,
    encode_error,
    encode_result,
    parse_request,
    set_motd,
)
from xmpp_sansio.server.caps import CapsService
from xmpp_sansio.server.sessions import CloseStream

from . import _tls
from ._openssl_stream import TLSContext
from .admin_jobs import client_sessions
from .certs import server_tls_material
from .collector import statistics as collector_statistics
from .components import component_entries
from .config import ConfigError, ServerConfig, load_config
from .runtime import loop_statistics
from .s2s_status import s2s_entries, s2s_summary
from .services import _version

if TYPE_CHECKING:
    from xmpp_sansio.server import Router
    from xmpp_sansio.server.sessions import SessionEffect, SessionManager
    from xmpp_sansio.stream.config import ServerConfig as StreamConfig
    from xmpp_sansio.stream.connection import TLSInfo

    from ._accounts import Accounts
    from ._session import Session
    from .limits import AuthBackoff, ConnectionCounter
    from .s2s import Federation
    from .services import ServerServices
    from .storage import AccountStore


class XMPPServer(Protocol):
    """What the admin operations use of :class:`xmpp_trio.server.XMPPServer`
    (a protocol, so that the server may start the admin socket)."""

    config: ServerConfig
    store: AccountStore
    accounts: Accounts
    auth_backoff: AuthBackoff
    ssl_context: TLSContext
    tls_info: TLSInfo
    stream_config: StreamConfig
    router: Router
    manager: SessionManager
    services: ServerServices
    connections: ConnectionCounter
    sessions: dict[int, Session]
    federation: Federation | None

    def stream_config_for(self, config: ServerConfig) -> StreamConfig: ...
    def apply(self, effects: Sequence[SessionEffect]) -> None: ...
    def end_sessions(
        self,
        account: JID,
        condition: StreamErrorCondition = ...,
        *,
        text: str | None = None,
        removed: bool = False,
    ) -> None: ...


class BoundListener(Protocol):
    """A listening socket, as :class:`xmpp_trio.server.BoundListener` has it."""

    @property
    def kind(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...


__all__ = ["SOCKET_NAME", "Admin", "AdminUnavailable", "reload_config", "request", "socket_path"]

log = logging.getLogger("xmpp_trio.admin")

SOCKET_NAME: Final = "admin.sock"
_READ_TIMEOUT = 10.0  # seconds an admin connection may take to send a request line

#: The configuration keys a reload applies (the rest need a restart).
_LIVE_KEYS: Final = frozenset(
    {
        "require_tls",
        "allow_plain",
        "allow_anonymous",
        "allow_registration",
        "scram_iterations",
        "log_level",
        "tls",
        "limits",
        "config_path",
    }
)
#: The limits a reload applies: read by the edge when used, or given to the
#: stream of each new connection. The others are held by the services.
_LIVE_LIMITS: Final = frozenset(
    {
        "max_stanza_size",
        "max_stanza_size_preauth",
        "max_depth",
        "negotiation_timeout",
        "max_auth_attempts",
        "registrations_per_ip_per_hour",
        "password_changes_per_hour",
        "resume_timeout",
        "max_unacked",
        "max_unacked_connected",
        "max_unacked_bytes",
        "unacked_burst",
        "max_connections",
        "max_connections_per_ip",
        "max_sessions_per_account",
        "auth_failures_before_backoff",
        "auth_backoff_max_entries",
        "max_read_rate",
        "idle_timeout",
        "max_output_buffer",
        "output_stall_timeout",
    }
)


class AdminUnavailable(Exception):
    """The admin socket cannot be reached: the server is not running (or not
    under this data directory)."""


def socket_path(config: ServerConfig) -> Path:
    """Where the admin socket of the server of ``config`` is."""
    return config.data_dir / SOCKET_NAME


def reload_config(server: XMPPServer, new: ServerConfig) -> dict[str, list[str]]:
    """Apply ``new`` to the running ``server`` as far as it can be applied
    without dropping sessions (as ``prosodyctl reload``): TLS certificates
    (for new handshakes), the log level, the settings of new streams and
    accounts, and the limits the edge applies. Returns what was applied and
    what changed but needs a restart (listeners, domains, data directory,
    service limits...), which keeps its old value. Raises ``OSError`` or
    ``ssl.SSLError`` (having changed nothing) when the TLS files are unusable."""
    old = server.config
    restart: list[str] = []
    kept: dict[str, Any] = {}
    for f in dataclasses.fields(old):
        if f.name not in _LIVE_KEYS and getattr(new, f.name) != getattr(old, f.name):
            restart.append(f.name)
            kept[f.name] = getattr(old, f.name)
    kept_limits: dict[str, Any] = {}
    for f in dataclasses.fields(old.limits):
        if f.name not in _LIVE_LIMITS and getattr(new.limits, f.name) != getattr(
            old.limits, f.name
        ):
            restart.append(f"limits.{f.name}")
            kept_limits[f.name] = getattr(old.limits, f.name)
    merged = dataclasses.replace(new, **kept, limits=dataclasses.replace(new.limits, **kept_limits))
    ssl_context, der = server_tls_material(merged)  # may raise: nothing changed yet
    applied = [
        f.name
        for f in dataclasses.fields(old)
        if f.name in _LIVE_KEYS - {"limits", "config_path"}
        and getattr(merged, f.name) != getattr(old, f.name)
    ]
    applied += [
        f"limits.{f.name}"
        for f in dataclasses.fields(old.limits)
        if getattr(merged.limits, f.name) != getattr(old.limits, f.name)
    ]
    limits = merged.limits
    server.config = merged
    server.accounts.config = merged
    server.auth_backoff.free = limits.auth_failures_before_backoff
    server.auth_backoff.max_entries = limits.auth_backoff_max_entries
    server.ssl_context = ssl_context
    server.tls_info = _tls.server_tls_info(der)
    server.stream_config = server.stream_config_for(merged)
    manager = server.manager
    manager.resume_timeout = limits.resume_timeout
    manager.max_unacked = limits.max_unacked
    manager.max_unacked_bytes = limits.max_unacked_bytes
    manager.idle_timeout = limits.idle_timeout
    server.connections.max_total = limits.max_connections
    server.connections.max_per_address = limits.max_connections_per_ip
    logging.getLogger().setLevel(merged.log_level.upper())
    return {"applied": ["tls certificate", *applied], "restart_needed": restart}


class Admin:
    """The operations of :mod:`xmpp_sansio.server.admin` on a running server."""

    def __init__(
        self,
        server: XMPPServer,
        listeners: Sequence[BoundListener],
        *,
        load: Callable[[Path | None], ServerConfig] = load_config,
    ) -> None:
        self.server = server
        self.listeners = listeners
        self._load = load
        self.started_at = time.time()
        self._started = trio.current_time()
        #: set by a ``stop`` request; the server shuts down
        self.stop_requested = trio.Event()

    def handle(self, request: AdminRequest) -> object:
        """Carry out ``request``; return its JSON-able result. Raises
        :class:`AdminRequestError` when it cannot be done."""
        match request:
            case Status():
                return self.status()
            case Users():
                return self.users()
            case Sessions():
                return self.sessions()
            case Kick():
                return {"ended": self.kick(request.account, request.reason)}
            case AccountChanged():
                condition = (
                    StreamErrorCondition.NOT_AUTHORIZED
                    if request.change == "deleted"
                    else StreamErrorCondition.RESET
                )
                ended = self._end(request.account, condition, removed=request.change == "deleted")
                return {"ended": ended}
            case Announce():
                return {"sent": self.announce(request.text)}
            case Disable():
                return self.disable(request.account, request.disabled)
            case Motd():
                domain = self.server.config.domains[0]
                self.server.apply(self.server.router.drain([set_motd(domain, request.text)]))
                return {"motd": request.text}
            case Clients():
                return self.clients(request.account)
            case Revoke():
                return self.revoke(request.account, request.client_id)
            case Stop():
                log.info("stop requested on the admin socket")
                self.stop_requested.set()
                return {"stopping": True}
            case Reload():
                return self.reload()
            case _:
                assert_never(request)

    def revoke(self, account: JID, client_id: str) -> dict[str, object]:
        """Forget the client and its FAST tokens, and end its live sessions
        (``not-authorized``: it must log in with the password again)."""
        server = self.server
        revoked = server.services.fast_tokens.revoke(account, client_id)
        ended = [
            CloseStream(sid, StreamErrorCondition.NOT_AUTHORIZED, "this client was revoked")
            for sid in client_sessions(server, account, client_id)
        ]
        server.apply(ended)
        log.info(
            "revoked client %s of %s: %s, %d sessions", client_id, account, revoked, len(ended)
        )
        return {"revoked": revoked or bool(ended), "ended": len(ended)}

    def clients(self, account: JID) -> list[dict[str, object]]:
        """The account's SASL2 clients, most recent login first (XEP-0388 §2.3)."""
        return [
            {
                "id": c.agent_id,
                "software": c.software,
                "device": c.device,
                "last_login": c.last_login,
                "token_expiry": c.token_expiry,
            }
            for c in self.server.services.fast_tokens.clients(account)
        ]

    def status(self) -> dict[str, object]:
        server = self.server
        return {
            "running": True,
            "version": _version(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "uptime": round(trio.current_time() - self._started, 3),
            "connections": len(server.sessions),
            "sessions": len(self._bound()),
            "components": component_entries(server.router, server.sessions),  # XEP-0114
            "s2s": s2s_summary(server.federation),  # docs/federation.md
            "domains": list(server.config.hosted_domains),
            "listeners": [
                {"kind": b.kind, "address": b.address, "port": b.port} for b in self.listeners
            ],
            "data_dir": str(server.config.data_dir),
            "config_file": str(server.config.config_path) if server.config.config_path else None,
            "gc": collector_statistics(),  # [gc], docs/gc.md
            "loop": loop_statistics(),  # [runtime] loop_stats, docs/runtime.md
        }

    def users(self) -> dict[str, object]:
        accounts = [f"{local}@{domain}" for local, domain in self.server.store.list_accounts()]
        return {"count": len(accounts), "users": accounts}

    def _bound(self) -> list[tuple[int, JID]]:
        """The bound sessions (attached or detached) with their full JIDs."""
        router = self.server.router
        ids = [s.id for s in self.server.sessions.values() if s.bound]
        ids += self.server.manager.detached()
        found = []
        for sid in sorted(set(ids)):
            jid = router.session_jid(sid)
            if jid is not None:
                found.append((sid, jid))
        return found

    def _client(self, jid: JID) -> str | None:
        """The client software of ``jid``, if its entity capabilities told
        (XEP-0115: the identity's name, else the caps node)."""
        for service in self.server.services.services:
            if isinstance(service, CapsService):
                info = service.caps_for(jid)
                names = [i.name for i in info.identities if i.name] if info else []
                if names:
                    return names[0]
                key = service.advertised(jid)
                return None if key is None else key.value
        return None

    def sessions(self) -> list[dict[str, object]]:
        server = self.server
        found: list[dict[str, object]] = []
        for sid, jid in self._bound():
            session = server.sessions.get(sid)
            conn = session.conn if session is not None else None
            if session is None:
                sm = "detached"
            elif conn is not None and conn.sm_resumable:
                sm = "resumable"
            elif conn is not None and conn.sm_enabled:
                sm = "enabled"
            else:
                sm = "off"
            found.append(
                {
                    "jid": str(jid),
                    "resource": jid.resource,
                    "id": sid,
                    "address": session.peer if session is not None else None,
                    "tls": session.transport.tls_version() if session is not None else None,
                    "sm": sm,
                    "client": self._client(jid),
                }
            )
        found += component_entries(server.router, server.sessions)
        return found + s2s_entries(server.federation)

    def _end(self, account: JID, condition: StreamErrorCondition, *, removed: bool) -> int:
        ended = len([1 for _, jid in self._bound() if jid.bare == account.bare])
        self.server.end_sessions(account, condition, removed=removed)
        return ended

    def kick(self, account: JID, reason: str | None) -> int:
        """End every session of ``account`` with ``policy-violation`` and
        ``reason`` (through ``XMPPServer.end_sessions``); return how many."""
        ended = len([1 for _, jid in self._bound() if jid.bare == account.bare])
        log.info("kicking %s (%d sessions): %s", account, ended, reason or "no reason given")
        self.server.end_sessions(account, KICK_CONDITION, text=reason)
        return ended

    def disable(self, account: JID, disabled: bool) -> dict[str, object]:
        """Disable (its sessions end) or re-enable ``account``: the outcome the
        XEP-0133 command returns, carried out as a router call's."""
        local = account.local or ""
        if not self.server.store.exists(local, account.domain):
            raise AdminRequestError(f"no account {account}")
        ended = len([1 for _, jid in self._bound() if jid.bare == account.bare]) if disabled else 0
        self.server.apply(self.server.router.drain([disable_account(account, disabled)]))
        return {"disabled": disabled, "ended": ended}

    def announce(self, text: str) -> int:
        """Send ``text`` to every bound session; return how many."""
        server = self.server
        recipients = [jid for _, jid in self._bound()]
        domain = server.config.domains[0]
        for message in announcement(domain, text, recipients):
            server.apply(server.router.route_inbound(message))
        log.info("announcement sent to %d sessions", len(recipients))
        return len(recipients)

    def reload(self) -> dict[str, object]:
        """Read the configuration file again and apply it (see :func:`reload_config`)."""
        path = self.server.config.config_path
        try:
            # Without a file only the TLS files can have changed (cert import).
            new = self.server.config if path is None else self._load(path)
            report = reload_config(self.server, new)
        except ConfigError as exc:
            raise AdminRequestError(f"invalid configuration, nothing reloaded: {exc}") from None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise AdminRequestError(f"tls: {exc}; nothing reloaded") from None
        log.info(
            "reloaded %s: applied %s; needs a restart: %s",
            path or "(no configuration file)",
            ", ".join(report["applied"]) or "nothing",
            ", ".join(report["restart_needed"]) or "nothing",
        )
        return {"config_file": None if path is None else str(path), **report}

    async def on_signals(self, signals: AsyncIterator[int]) -> None:
        """SIGHUP reloads the configuration (as ``xmpp-trio reload``); SIGINT
        and SIGTERM stop the server."""
        async for signum in signals:
            if signum == signal.SIGHUP:
                log.info("received SIGHUP, reloading the configuration")
                try:
                    self.reload()
                except AdminRequestError as exc:
                    log.error("reload failed: %s", exc)
                continue
            log.info("received %s, shutting down", signal.Signals(signum).name)
            self.stop_requested.set()
            return

    def answer(self, line: bytes) -> bytes:
        """The answer line to one request line."""
        try:
            return encode_result(self.handle(parse_request(line)))
        except AdminRequestError as exc:
            return encode_error(str(exc))

    async def serve(
        self, path: Path, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on the Unix socket ``path`` (mode 0600) until cancelled;
        the socket file is removed on the way out."""
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        ours: int | None = None  # the inode of our socket file
        try:
            try:
                await sock.bind(str(staging))
                os.chmod(staging, 0o600)
                ours = staging.stat().st_ino
                os.replace(staging, path)  # appears with its final mode, replacing a stale one
            except OSError as exc:  # e.g. a path longer than a socket address takes
                log.warning("no admin socket (%s): %s", path, exc)
                task_status.started()
                return
            sock.listen()
            listener = trio.SocketListener(sock)
            log.info("admin socket %s", path)
            task_status.started()
            await trio.serve_listeners(self._serve_one, [listener])
        finally:
            sock.close()
            staging.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                if ours is not None and path.stat().st_ino == ours:
                    path.unlink()  # ours, not a newer server's

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        try:
            while True:
                with trio.move_on_after(_READ_TIMEOUT) as scope:
                    chunk = await stream.receive_some(MAX_REQUEST_SIZE)
                if scope.cancelled_caught or not chunk:
                    return
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line, buffer = bytes(buffer[:end]), buffer[end + 1 :]
                    await stream.send_all(self.answer(line))
                if len(buffer) > MAX_REQUEST_SIZE:
                    await stream.send_all(encode_error("request line too long"))
                    return
        except trio.BrokenResourceError:
            return
        finally:
            await stream.aclose()


def request(path: Path, op: str, **fields: object) -> Any:
    """Send one request to the admin socket at ``path`` (blocking: the command
    line's side) and return its result. Raises :class:`AdminUnavailable` when
    nobody listens there and :class:`AdminRequestError` when the server
    refused the request."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AdminUnavailable(
                f"the server is not running (no admin socket at {path}: {exc.strerror})"
            ) from None
        except OSError as exc:
            raise AdminUnavailable(f"cannot reach the admin socket {path}: {exc}") from None
        sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise AdminUnavailable(f"the server closed the admin socket {path} unanswered")
            answer += chunk
    reply = json.loads(answer)
    if not reply.get("ok"):
        raise AdminRequestError(str(reply.get("error")))
    return reply.get("result")
