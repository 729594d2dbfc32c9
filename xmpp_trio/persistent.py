"""One logical XMPP session kept alive across connection losses.

:func:`open_persistent_client` is for applications (not bots: see
:mod:`xmpp_trio.bot` for those) that want to stay online without writing a
reconnection loop::

    async def rejoin(im: IMClient) -> None:
        ...  # runs after every new session: re-join rooms, resend what was lost

    async with open_persistent_client(
        "juliet@example.com/balcony", "secret", on_connected=rejoin
    ) as pc:
        await pc.set_presence(status="On the balcony")  # now, and after every reconnect
        await pc.send(make_message("romeo@example.com", "Hi!", MessageType.CHAT))
        async for message in pc.messages():  # one iterator for the whole lifetime
            print(message.findtext("{jabber:client}body"))

``docs/client.md`` ("Staying online") has a complete example and the API table.

Each connection is an :func:`~xmpp_trio.client.open_client` wrapped in an
:class:`~xmpp_trio.im.IMClient` (:attr:`PersistentClient.im`). What carries
over from one to the next:

* the :class:`~xmpp_sansio.client_state.RosterCache`: every connection fetches
  the roster with the cached version (RFC 6121 §2.6.2), so an unchanged roster
  costs an empty result;
* the :class:`~xmpp_sansio.client_state.CapsCache` (XEP-0115);
* the :class:`~xmpp_sansio.client_state.PresenceTracker` object, *cleared*
  when a connection ends for good: contacts' presence is unknown until the
  probes caused by the next initial presence answer (RFC 6121 §4.2.2);
* the user's own presence (:meth:`PersistentClient.set_presence`), sent again
  after the roster on every new session;
* the incoming stanzas: :meth:`PersistentClient.stanzas` and
  :meth:`PersistentClient.messages` span connections, in order.

When the server offers stream management (XEP-0198) and the connection broke
without a stream error, the next connection first tries to *resume* the
session (``resume=True``, the default): the server then retransmits what we
missed and keeps our presence, so nothing is re-sent, the presence tracker is
kept and ``on_connected`` is not called (:attr:`PersistentClient.resumed`
says which happened). If resumption fails, a new session starts as above, and
``pc.client.unacked_from_previous`` holds the stanzas the server never
acknowledged, for ``on_connected`` to resend if they matter.

Reconnection waits :func:`xmpp_sansio.client.backoff_delay` seconds
(exponential from ``backoff_base`` up to ``backoff_cap``, with jitter from
``rng``) before each attempt, the first after a loss included; a session that
lasted a minute starts the sequence over. Errors are sorted by a
:class:`~xmpp_sansio.client.ReconnectPolicy` (``policy``; bots use
:data:`~xmpp_sansio.client.BOT_RECONNECT`); by default like this:

* retried: transport failures (``OSError``, TLS errors, broken streams),
  :class:`~xmpp_trio.client.ConnectionFailed`, stream errors such as
  ``system-shutdown``, timeouts (a keepalive ping without answer drops the
  connection), ``temporary-auth-failure``;
* raised out of the ``async with`` (the body is cancelled), never retried:
  :class:`~xmpp_trio.client.AuthenticationError` (wrong password, disabled
  account...), :class:`~xmpp_trio.client.CertificateError` (the server's
  certificate is not trusted), a :class:`~xmpp_trio.client.StreamError` with ``conflict``
  (another client bound our resource: reconnecting would kick it out in turn,
  and so on forever), ``host-unknown`` or ``host-gone`` (a configuration
  error), and any other exception, including one raised by ``on_connected``
  (a bug should not turn into a reconnection loop).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import math
import os
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final, Protocol
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client import CapsCache, PresenceTracker, ReconnectPolicy, RosterCache
from xmpp_sansio.errors import LocalProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.sm import SMState
from xmpp_sansio.stanza import IqType, PresenceShow, make_iq
from xmpp_sansio.xml import ns

from .client import (
    AuthenticationError,
    CertificateError,
    Client,
    ConnectionFailed,
    IqErrorResponse,
    IqTimeoutError,
    StreamError,
    XMPPError,
    open_client,
)
from .im import IMClient
from .login_state import LoginState

__all__ = [
    "KeepaliveConnection",
    "NotConnected",
    "OnConnected",
    "PersistentClient",
    "PresenceSettings",
    "keepalive",
    "open_persistent_client",
]

log = logging.getLogger("xmpp_trio.persistent")

_MESSAGE: Final = "{" + ns.CLIENT + "}message"
_PING: Final = "{" + ns.PING + "}ping"

#: How long the stanzas of a closed connection may take to reach :meth:`stanzas`.
_DRAIN_GRACE: Final = 5.0
#: What a lost or failed connection raises; everything else is not retried.
_TRANSIENT: Final = (
    XMPPError,
    OSError,
    ssl.SSLError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    LocalProtocolError,  # sending on a stream that has just closed
)
#: The ``open_client`` and ``IMClient`` keywords that the persistent client sets itself.
_RESERVED_CONNECT: Final = frozenset({"resume"})
_RESERVED_IM: Final = frozenset({"roster_cache", "presence", "caps_cache"})

#: Set while ``on_connected`` runs, so that ``pc.send`` from it does not wait
#: for the end of the callback it is part of.
_IN_CALLBACK: contextvars.ContextVar[PersistentClient | None] = contextvars.ContextVar(
    "xmpp_trio_persistent_in_callback", default=None
)

OnConnected = Callable[[IMClient], Awaitable[object]]
"""``on_connected(im)``: called after every new session is set up (roster
fetched, presence sent), before :attr:`PersistentClient.connected` turns
true; not after a XEP-0198 resumption, where the session carried on."""


class NotConnected(XMPPError):
    """No connection in time (or the persistent client is closed), or the
    connection broke while a stanza was being sent."""


@dataclass(frozen=True, slots=True)
class PresenceSettings:
    """The user's own presence, as last given to :meth:`PersistentClient.set_presence`."""

    show: PresenceShow | None = None
    status: str | None = None
    priority: int | None = None


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _fatal(exc: BaseException, policy: ReconnectPolicy) -> BaseException | None:
    """The exception to raise to the user if ``exc`` is one that reconnecting
    cannot fix (by ``policy``), else ``None`` (retry)."""
    for leaf in _leaves(exc):
        if isinstance(leaf, CertificateError):
            return leaf  # not trusted now, not trusted on the next attempt
        if isinstance(leaf, AuthenticationError):
            if policy.auth_is_fatal(leaf.condition):
                return leaf
        elif isinstance(leaf, StreamError):
            if policy.stream_error_is_fatal(leaf.condition):
                return leaf
        elif isinstance(leaf, IqErrorResponse) or not isinstance(leaf, _TRANSIENT):
            # An error answer (e.g. to a request of on_connected) is no
            # connection problem: reconnecting would get the same answer.
            return leaf
    return None


class KeepaliveConnection(Protocol):
    """What :func:`keepalive` needs (a :class:`~xmpp_trio.client.Client` has it)."""

    @property
    def jid(self) -> JID: ...

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element: ...


async def keepalive(connection: KeepaliveConnection, interval: float) -> str | None:
    """Ping the server (XEP-0199 §4.2) every ``interval`` seconds, each ping
    bounded by half of it, so that a dead network is noticed.

    Returns why the connection should be dropped once a ping goes
    unanswered (an error answer is an answer: the server is there), or
    ``None`` when the connection went away by itself. The one keepalive of
    the persistent client and of bots.
    """
    server = JID.parse(connection.jid.domain)
    while True:
        await trio.sleep(interval)
        ping = make_iq(IqType.GET, "", Element(_PING), to=server)
        try:
            await connection.request(ping, timeout=max(interval / 2, 1.0))
        except IqErrorResponse:
            continue  # an answer all the same
        except IqTimeoutError:
            return "the server does not answer pings"
        except _TRANSIENT:
            return None  # the connection is going away anyway


async def _cancel_on_close(client: Client, scope: trio.CancelScope) -> None:
    await client.closed.wait()
    scope.cancel()


class _Messages:
    """The ``<message/>`` stanzas of a stanza channel (the others are dropped)."""

    def __init__(self, channel: trio.MemoryReceiveChannel[Element]) -> None:
        self._channel = channel

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Element:
        while True:
            try:
                stanza = await self._channel.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            if stanza.tag == _MESSAGE:
                return stanza


class PersistentClient:
    """A session that survives connection losses. Get one from
    :func:`open_persistent_client`, which documents the arguments.

    Attributes:
        reconnects: how many connections were established after the first
            one (resumptions included).
        last_error: why the last connection ended or the last attempt failed
            (``None`` before any failure).
        wait_timeout: the default bound of :meth:`send` and :meth:`request`
            waiting for a connection.
    """

    def __init__(
        self,
        jid: str | JID,
        password: str,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        rng: random.Random | None = None,
        on_connected: OnConnected | None = None,
        roster_cache: RosterCache | None = None,
        caps_cache: CapsCache | None = None,
        im_options: Mapping[str, Any] | None = None,
        wait_timeout: float = 30.0,
        keepalive: float | None = 60.0,
        resume: bool = True,
        connect_options: Mapping[str, Any] | None = None,
        policy: ReconnectPolicy | None = None,
        login_state: LoginState | str | os.PathLike[str] | None = None,
    ) -> None:
        if not 0 < backoff_base <= backoff_cap:
            raise ValueError("backoff needs 0 < backoff_base <= backoff_cap")
        if keepalive is not None and keepalive <= 0:
            raise ValueError("keepalive must be positive (or None to turn it off)")
        connect = dict(connect_options or {})
        if reserved := _RESERVED_CONNECT.intersection(connect):
            raise TypeError(f"the persistent client sets {', '.join(sorted(reserved))} itself")
        im_kwargs = dict(im_options or {})
        if reserved := _RESERVED_IM.intersection(im_kwargs):
            raise TypeError(
                f"pass {', '.join(sorted(reserved))} as arguments of the persistent client"
            )
        self._account = JID.parse(jid) if isinstance(jid, str) else jid
        self._password = password
        self._policy = dataclasses.replace(
            policy or ReconnectPolicy(), base=backoff_base, cap=backoff_cap
        )
        self._rng = rng if rng is not None else random.Random()
        self._on_connected = on_connected
        self._connect_options = connect
        self._im_options = im_kwargs
        self._keepalive = keepalive
        self._resume = resume
        if login_state is None or isinstance(login_state, LoginState):
            self.login_state = login_state or LoginState()
        else:
            self.login_state = LoginState.load(login_state)
        self.wait_timeout = wait_timeout
        self.reconnects = 0
        self.last_error: BaseException | None = None

        self._roster = roster_cache if roster_cache is not None else RosterCache()
        self._presence = PresenceTracker()
        self._caps = caps_cache if caps_cache is not None else CapsCache()
        self._client: Client | None = None
        self._im: IMClient | None = None
        self._resumed = False
        self._ready = False
        self._live = False  # a connection is up or being wound down
        self._closed = False
        self._error: BaseException | None = None
        self._sessions = 0
        self._sm_state: SMState | None = None
        self._end_reason: str | None = None
        self._began: float | None = None
        self._changed = trio.Event()
        self._scope: trio.CancelScope | None = None

        self._own_presence: PresenceSettings | None = None
        self._presence_dirty = False  # set but not sent on the current session
        self._presence_im: IMClient | None = None  # where set_presence may send now
        self._presence_lock = trio.Lock()

        self._stanzas_send, self._stanzas = trio.open_memory_channel[Element](
            int(im_kwargs.get("stanza_buffer", 1000))
        )
        self._sessions_send, self._sessions_recv = trio.open_memory_channel[
            trio.MemoryReceiveChannel[Element]
        ](math.inf)

    # ------------------------------------------------------------------
    # state

    @property
    def connected(self) -> bool:
        """A connection is up and set up (roster, presence, ``on_connected``)."""
        return self._ready

    @property
    def resumed(self) -> bool:
        """The current (or last) connection resumed the previous session (XEP-0198)."""
        return self._resumed

    @property
    def im(self) -> IMClient:
        """The :class:`~xmpp_trio.im.IMClient` of the current connection, or
        of the last one while disconnected (its roster and presence are then
        the cached ones; what it sends fails). Read incoming stanzas from
        :meth:`stanzas`, not from ``im.stanzas()``. Raises
        :class:`NotConnected` before the first connection."""
        if self._im is None:
            raise NotConnected("not connected yet")
        return self._im

    @property
    def client(self) -> Client:
        """The :class:`~xmpp_trio.client.Client` of the current (or last)
        connection, e.g. for ``unacked_from_previous``. Raises
        :class:`NotConnected` before the first connection."""
        if self._client is None:
            raise NotConnected("not connected yet")
        return self._client

    @property
    def jid(self) -> JID:
        """The bound full JID of the current (or last) connection; before the
        first one, the configured JID."""
        return self._client.jid if self._client is not None else self._account

    @property
    def roster(self) -> RosterCache:
        """The roster cache shared by every connection (save ``to_dict()`` at exit)."""
        return self._roster

    @property
    def presence(self) -> PresenceTracker:
        """Contacts' presence, shared by every connection; empty after a loss
        until the new session learns it again."""
        return self._presence

    @property
    def caps_cache(self) -> CapsCache:
        """Contacts' capabilities (XEP-0115), shared by every connection."""
        return self._caps

    @property
    def own_presence(self) -> PresenceSettings | None:
        """The presence last set with :meth:`set_presence` (``None``: never set)."""
        return self._own_presence

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_connected(self) -> None:
        """Return once :attr:`connected` (at once if it is). Bound it with
        ``trio.fail_after``. Raises the error that stopped the client, or
        :class:`NotConnected` once it is closed."""
        while not self._ready:
            self._check_open()
            await self._changed.wait()

    async def wait_disconnected(self) -> None:
        """Return once the connection is gone and wound down: its stanzas
        handed to :meth:`stanzas`, :attr:`presence` cleared (unless the
        session is to be resumed). At once if there is no connection."""
        while self._ready or self._live:
            await self._changed.wait()

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise NotConnected("the persistent client is closed")

    async def _current_client(self, timeout: float | None) -> Client:
        if _IN_CALLBACK.get() is self and self._client is not None:
            return self._client
        bound = self.wait_timeout if timeout is None else timeout
        with trio.move_on_after(bound):
            await self.wait_connected()
            assert self._client is not None
            return self._client
        raise NotConnected(f"no connection within {bound:g} s")

    # ------------------------------------------------------------------
    # what the user does

    async def send(self, stanza: Element, *, timeout: float | None = None) -> None:
        """Send a stanza on the current connection.

        While disconnected, waits for the next connection, up to ``timeout``
        seconds (default :attr:`wait_timeout`; 0 fails at once), then raises
        :class:`NotConnected`. Also raises :class:`NotConnected` if the
        connection breaks during the send: the stanza may or may not have
        gone out (with stream management it is retransmitted if the session
        is resumed). From ``on_connected``, sends on the new connection at
        once.
        """
        client = await self._current_client(timeout)
        try:
            await client.send(stanza)
        except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError) as exc:
            raise NotConnected(f"the connection broke while sending: {exc!r}") from exc

    async def request(
        self, iq: Element, *, timeout: float = 30.0, wait_timeout: float | None = None
    ) -> Element:
        """Send an iq get/set and return its result (as
        :meth:`Client.request <xmpp_trio.client.Client.request>`: it raises
        :class:`~xmpp_trio.client.IqErrorResponse` or
        :class:`~xmpp_trio.client.IqTimeoutError` after ``timeout``).

        Waits for a connection like :meth:`send` (up to ``wait_timeout``,
        default :attr:`wait_timeout`). A request whose connection breaks
        before the answer raises (``ConnectionFailed``, a ``StreamError`` or
        :class:`NotConnected`); it is not sent again, since it may have been
        carried out.
        """
        client = await self._current_client(wait_timeout)
        try:
            return await client.request(iq, timeout=timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError) as exc:
            raise NotConnected(f"the connection broke while sending: {exc!r}") from exc

    def stanzas(self) -> trio.MemoryReceiveChannel[Element]:
        """Every incoming stanza the :class:`~xmpp_trio.im.IMClient` of each
        connection did not consume (messages, subscription answers, ...), of
        all connections in order. The same channel on every call; it ends
        when the persistent client closes. It has back-pressure: read it."""
        return self._stanzas

    def messages(self) -> AsyncIterator[Element]:
        """The ``<message/>`` stanzas of :meth:`stanzas`, across connections.
        It reads the same channel, dropping the other stanzas: use one of
        the two."""
        return _Messages(self._stanzas)

    async def set_presence(
        self,
        *,
        show: PresenceShow | None = None,
        status: str | None = None,
        priority: int | None = None,
    ) -> None:
        """Set the user's available presence (RFC 6121 §4): sent now if
        connected, and again on every new session. Never waits for a
        connection and never fails for want of one: while disconnected it is
        only remembered. Call it before the first connection to go online
        with it. ``priority`` is -128..127."""
        if priority is not None and not -128 <= priority <= 127:
            raise ValueError("presence priority is -128..127 (RFC 6121 §4.7.2.3)")
        async with self._presence_lock:
            self._own_presence = PresenceSettings(show, status, priority)
            self._presence_dirty = True
            im = self._presence_im
            if im is None:
                return
            try:
                await im.send_presence(show=show, status=status, priority=priority)
            except _TRANSIENT as exc:
                log.debug("%s: presence not sent now (%r); sent after reconnecting", self, exc)
            else:
                self._presence_dirty = False

    def __repr__(self) -> str:
        state = "connected" if self._ready else "closed" if self._closed else "disconnected"
        return f"<PersistentClient {self.jid} {state}>"

    # ------------------------------------------------------------------
    # lifetime

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[PersistentClient]:
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._forward)
                nursery.start_soon(self._run)
                try:
                    yield self
                finally:
                    self._closed = True
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The block's own exception, wrapped by the nursery: let it out as it was.
            if len(group.exceptions) != 1 or isinstance(group.exceptions[0], trio.Cancelled):
                raise
            body_error = group.exceptions[0]
        finally:
            self._closed = True
            self._ready = False
            self._stanzas_send.close()
            self._notify()
        if body_error is not None:
            raise body_error
        if self._error is not None:
            raise self._error

    def _fail(self, error: BaseException) -> None:
        """Stop for good: ``error`` goes out of the ``async with``."""
        log.error("%s: %s; not reconnecting", self._account, error)
        self._error = error
        self._closed = True
        assert self._scope is not None
        self._scope.cancel()  # first: the block gets Cancelled, then the error
        self._notify()

    async def _run(self) -> None:
        """Connect, serve, wait, reconnect, until cancelled or a fatal error."""
        attempt = 0
        while True:
            reason: BaseException | str
            try:
                reason = await self._connection()
            except Exception as exc:
                leaves = _leaves(exc)  # unwrapped from the nurseries' groups
                reason = leaves[0] if len(leaves) == 1 else exc
            began = self._began
            fatal = _fatal(reason, self._policy) if isinstance(reason, BaseException) else None
            if fatal is not None:
                self.last_error = fatal
                self._fail(fatal)
                return
            self.last_error = (
                reason if isinstance(reason, BaseException) else ConnectionFailed(reason)
            )
            attempt = self._policy.next_attempt(
                attempt, None if began is None else trio.current_time() - began
            )
            delay = self._policy.delay(attempt, self._rng)
            attempt += 1
            log.warning(
                "%s: %s (%s); reconnecting in %.1f s",
                self._account,
                "cannot connect" if began is None else "disconnected",
                reason,
                delay,
            )
            await trio.sleep(delay)

    async def _connection(self) -> BaseException | str:
        """One connection, from connecting to its end; returns why it ended
        (and sets ``_began`` if it was established)."""
        options = dict(self._connect_options)
        # SASL2 + FAST + Bind2 with our user-agent id and the last token
        options["login"] = self.login_state.options(options.get("login"))
        if self._sm_state is not None:
            # Kept until a connection is made: a network that stays down for
            # a few attempts does not cost the session.
            options["resume"] = self._sm_state
        self._began = None
        self._end_reason = None
        async with open_client(self._account, self._password, **options) as client:
            # (a stand-in client without FAST keeps the token as it was)
            self.login_state.update(getattr(client, "fast_token", self.login_state.fast_token))
            self._began = trio.current_time()
            try:
                await self._serve(client)
            finally:
                # The dispatcher is done: what it knew of presence is stale now,
                # unless the session is to be resumed.
                self._sm_state = self._resumable(client)
                if self._sm_state is None:
                    self._presence.clear()
                self._live = False
                self._notify()
        return client.error or self._end_reason or "the server closed the connection"

    def _resumable(self, client: Client) -> SMState | None:
        """The state to resume the session from on the next connection, if
        worth trying: stream management was on and the transport broke (a
        stream error or our own closing end the session for good)."""
        state = client.sm_state
        if (
            not self._resume
            or state is None
            or not state.resume
            or not client.closed.is_set()
            or client.error is not None
        ):
            return None
        return state

    async def _serve(self, client: Client) -> None:
        """Set up a connection, mark it connected, and wait for its end."""
        resumed = client.resumed
        if not resumed:
            self._presence.clear()
        im = IMClient(
            client,
            roster_cache=self._roster,
            presence=self._presence,
            caps_cache=self._caps,
            **self._im_options,
        )
        keepalive = trio.CancelScope()
        self._live = True
        async with trio.open_nursery() as nursery:
            await im.start(nursery)
            self._sessions_send.send_nowait(im.stanzas())
            self._client, self._im, self._resumed = client, im, resumed
            if self._sessions:
                self.reconnects += 1
            self._sessions += 1
            try:
                # A connection lost while setting up (maybe in a slow or stuck
                # on_connected) cancels the setup.
                setup = trio.CancelScope()
                nursery.start_soon(_cancel_on_close, client, setup)
                with setup:
                    await self._restore(im, resumed)
                if not client.closed.is_set():
                    self._ready = True
                    self._notify()
                    log.info(
                        "%s: %s as %s",
                        self._account,
                        "resumed" if resumed else "online",
                        client.jid,
                    )
                if self._keepalive is not None:
                    nursery.start_soon(self._ping, client, self._keepalive, keepalive)
                await client.closed.wait()
            finally:
                self._ready = False
                self._presence_im = None
                self._notify()
                keepalive.cancel()
                # Let the dispatcher hand over what the connection received.
                nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_GRACE

    async def _restore(self, im: IMClient, resumed: bool) -> None:
        """Roster with the cached version, presence, then ``on_connected``."""
        try:
            await im.get_roster()
        except IqErrorResponse as exc:
            log.warning("%s: the roster could not be fetched: %s", self._account, exc)
        async with self._presence_lock:
            own = self._own_presence
            if own is not None and (self._presence_dirty or not resumed):
                await im.send_presence(show=own.show, status=own.status, priority=own.priority)
            self._presence_dirty = False
            self._presence_im = im
        if resumed or self._on_connected is None:
            return
        token = _IN_CALLBACK.set(self)
        try:
            await self._on_connected(im)
        finally:
            _IN_CALLBACK.reset(token)

    async def _ping(self, client: Client, interval: float, scope: trio.CancelScope) -> None:
        """Drop the connection when the server stops answering pings."""
        with scope:
            reason = await keepalive(client, interval)
            if reason is not None:
                self._end_reason = reason
                log.warning("%s: %s", self._account, reason)
                await client.abort()

    async def _forward(self) -> None:
        """Hand every connection's stanzas to :meth:`stanzas`, in order."""
        async for channel in self._sessions_recv:
            async for stanza in channel:
                # A closed stanzas() channel: nobody reads; drain the connection anyway.
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._stanzas_send.send(stanza)


@asynccontextmanager
async def open_persistent_client(
    jid: str | JID,
    password: str,
    *,
    backoff_base: float = 1.0,
    backoff_cap: float = 60.0,
    rng: random.Random | None = None,
    on_connected: OnConnected | None = None,
    roster_cache: RosterCache | None = None,
    caps_cache: CapsCache | None = None,
    im_options: Mapping[str, Any] | None = None,
    wait_timeout: float = 30.0,
    keepalive: float | None = 60.0,
    resume: bool = True,
    policy: ReconnectPolicy | None = None,
    login_state: LoginState | str | os.PathLike[str] | None = None,
    **open_client_kwargs: Any,
) -> AsyncIterator[PersistentClient]:
    """Keep a session of ``jid`` alive until the block ends; yield its
    :class:`PersistentClient` at once (the first connection is made in the
    background: ``await pc.wait_connected()`` to wait for it).

    Args:
        jid, password, open_client_kwargs: for every
            :func:`~xmpp_trio.client.open_client` (``host``, ``port``,
            ``ssl_context``, ``timeout``...; ``resume`` is set here).
        backoff_base, backoff_cap, rng: the reconnection delays, see
            :func:`xmpp_sansio.client.backoff_delay`; ``rng`` makes the jitter
            reproducible.
        on_connected: ``await on_connected(im)`` after every new session is
            set up (see :data:`OnConnected`); ``pc.send`` from it uses the new
            connection at once.
        roster_cache: a cache saved by an earlier run
            (:meth:`RosterCache.from_dict <xmpp_sansio.client_state.RosterCache.from_dict>`),
            else an empty one; caps_cache likewise.
        im_options: more keyword arguments for each
            :class:`~xmpp_trio.im.IMClient` (``iq_handler``, ``features``...).
        wait_timeout: how long :meth:`~PersistentClient.send` and
            :meth:`~PersistentClient.request` wait for a connection by default.
        keepalive: ping the server this often (seconds) and reconnect when
            it stops answering; ``None`` turns it off.
        resume: try XEP-0198 resumption after a broken connection.
        policy: which failures are fatal (default: see the module
            documentation); its backoff is ``backoff_base``/``backoff_cap``.
        login_state: where the user-agent id and FAST token live between
            logins (XEP-0388, XEP-0484): a :class:`~xmpp_trio.login_state.LoginState`
            or the path of its 0600 JSON file; default: in memory, so each
            reconnect of this run logs in with FAST (+ Bind2 + resumption in
            the same round trip) where the server offers it.

    The block's own exceptions go out unchanged. Errors that reconnecting
    cannot fix (see the module documentation) cancel the block and are
    raised out of it.
    """
    pc = PersistentClient(
        jid,
        password,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        rng=rng,
        on_connected=on_connected,
        roster_cache=roster_cache,
        caps_cache=caps_cache,
        im_options=im_options,
        wait_timeout=wait_timeout,
        keepalive=keepalive,
        resume=resume,
        connect_options=open_client_kwargs,
        policy=policy,
        login_state=login_state,
    )
    async with pc._lifetime() as running:
        yield running
