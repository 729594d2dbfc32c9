"""Federation over Trio (RFC 6120 §13; docs/federation.md): the ``s2s``
listener, the outbound links, and the dialback verification streams.

The protocol is :mod:`xmpp_sansio.stream.s2s`; this module moves bytes, does
TLS, resolves remote servers (:mod:`.s2s_resolve`) and carries out what the
router asks (:class:`~xmpp_sansio.server.effects.RouteRemote`).

- Inbound: each connection on the s2s port runs an
  :class:`S2SReceivingConnection`. TLS asks for the peer's certificate
  (``CERT_OPTIONAL`` against ``[federation] cafile`` or the system store); its
  facts (:mod:`.s2s_certs`) decide EXTERNAL. Dialback keys are checked by a
  ``verify_only`` stream to the originating domain. Stanzas go to
  :meth:`Router.route_from_remote`.
- Outbound: one link per (local, remote) domain pair, started by the first
  stanza; stanzas wait in a bounded queue (``max_queue``; over it
  ``resource-constraint``) while it connects; on failure they bounce with
  ``remote-server-not-found`` (or ``remote-server-timeout`` after
  ``connect_timeout``). A link closes after ``idle_timeout`` without stanzas.
  TLS first verifies the peer and presents our certificate; if that
  handshake fails and dialback is allowed (``require_valid_certificates``
  off), the link retries once without either, and authenticates by dialback.
- ``allow``/``deny`` lists refuse a domain both ways.

Limitation (stdlib ``ssl``): a receiving server that asks for a client
certificate fails the handshake on an untrusted one; the retry without a
client certificate covers peers that fall back like ours do.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.errors import LocalProtocolError, RemoteProtocolError, StanzaErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.server import Router
from xmpp_sansio.server.effects import Effect, RouteRemote
from xmpp_sansio.server.remote import ping_answered, server_ping, without_payload
from xmpp_sansio.stream.config import Limits
from xmpp_sansio.stream.events import Event, NegotiationFailed, StanzaReceived, TLSRequested
from xmpp_sansio.stream.s2s import S2SInitiatingConnection, S2SReceivingConnection
from xmpp_sansio.stream.s2s_events import (
    DialbackVerdict,
    DialbackVerifyRequested,
    DialbackVerifyResult,
    DomainPairAuthenticated,
    DomainPairRejected,
    S2SConfig,
    S2STLSEstablished,
)
from xmpp_sansio.stream.s2s_identity import PeerCertificate

from .certs import ensure_certificate
from .config import ServerConfig
from .federation_config import FederationConfig
from .limits import TokenBucket
from .metrics import Metrics
from .s2s_certs import peer_certificate
from .s2s_resolve import resolve_host, resolve_server_targets
from .s2s_status import S2SCollector


class XMPPServer(Protocol):
    """What federation uses of :class:`xmpp_trio.server.XMPPServer`."""

    config: ServerConfig
    metrics: Metrics
    router: Router
    federation: Federation | None

    def apply(self, effects: Sequence[Effect]) -> None: ...


__all__ = ["Federation", "s2s_handler", "start_federation"]

log = logging.getLogger("xmpp_trio.s2s")
_READ = 65536
_NOT_FOUND = StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND
_TIMEOUT = StanzaErrorCondition.REMOTE_SERVER_TIMEOUT

Conn = S2SInitiatingConnection | S2SReceivingConnection


_ALPN = "xmpp-server"


def _client_context(
    cafile: str | None, cert: object, key: object, *, alpn: bool = False
) -> ssl.SSLContext:
    """Our TLS client side: verifying the peer and presenting our
    certificate, or (``cafile``/``cert`` None: the dialback retry) neither."""
    if cert is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=cafile)
        context.load_cert_chain(str(cert), str(key))
    if alpn:
        context.set_alpn_protocols([_ALPN])
    return context


class LinkFailed(Exception):
    """An outbound stream could not be set up."""


class _TLSFailed(LinkFailed):
    """The TLS handshake failed (maybe a certificate one side does not trust)."""


def _domain_of(value: str | None) -> str | None:
    try:
        return JID.parse(value or "").domain
    except InvalidJID:
        return None


@dataclass(eq=False)
class _Stream:
    """One s2s connection: the sans-IO side and the Trio stream under it."""

    conn: Conn
    stream: trio.abc.Stream
    lock: trio.Lock = field(default_factory=trio.Lock)
    #: inbound: the first remote domain authenticated on it (its rate applies)
    domain: str | None = None
    #: how the stream's first pair was authenticated ("EXTERNAL", "dialback")
    method: str | None = None
    peer: str = field(default="?", init=False)
    #: outbound: the links whose stanzas it carries (piggybacking, XEP-0220
    #: §2.6); the stream closes when the last one leaves
    riders: set[_Link] = field(default_factory=set, init=False)
    #: outbound: local domains asked for with ``authorize``, woken by the answer
    asked: dict[str, trio.Event] = field(default_factory=dict, init=False)
    #: outbound: the reader task's scope, and whether the stream has ended
    reader: trio.CancelScope | None = field(default=None, init=False)
    ended: bool = field(default=False, init=False)
    #: we opened it (and close it when its last link leaves); an inbound
    #: bidirectional stream (XEP-0288) carries links too, but the remote owns it
    owned: bool = True

    def __post_init__(self) -> None:
        with suppress(OSError, AttributeError, TypeError, IndexError):
            host, port = self.stream.socket.getpeername()[:2]  # type: ignore[attr-defined]
            self.peer = f"{host}:{port}"

    def tls_version(self) -> str | None:
        """The TLS version in use, or None before STARTTLS."""
        if isinstance(self.stream, trio.SSLStream):
            with suppress(trio.NeedHandshakeError):
                version = self.stream.version()
                return str(version) if version else None
        return None

    async def flush(self) -> None:
        async with self.lock:  # taken under the lock: writers keep their order
            data = self.conn.data_to_send()
            if data:
                await self.stream.send_all(data)


@dataclass(eq=False)
class _Link:
    """An outbound (local, remote) pair: its queue and its stream once ready."""

    local: str
    remote: str
    queue: list[Element] = field(default_factory=list)
    ready: _Stream | None = None
    wake: trio.Event = field(default_factory=trio.Event)
    #: when a stanza was last written, or a ping last answered
    last_used: float = 0.0
    #: how this pair was authenticated ("EXTERNAL", "dialback")
    method: str | None = None
    #: the scope of the link's writer (cancelled when its stream ends)
    scope: trio.CancelScope | None = None


class Federation:
    """The s2s side of one server (see the module docstring)."""

    def __init__(self, server: XMPPServer, nursery: trio.Nursery) -> None:
        self.server = server
        self.nursery = nursery
        config = server.config
        self.config: FederationConfig = config.federation
        #: static overrides (``[federation] hosts``); tests add the ports they got
        self.hosts: dict[str, tuple[str, int]] = dict(self.config.hosts)
        self.nameservers: list[tuple[str, int]] = []
        self.s2s = S2SConfig(
            domains=frozenset(config.hosted_domains) | frozenset(server.router.hosts.services),
            secret=secrets.token_bytes(32),  # XEP-0185 §3: from the rng at start
            rng=secrets.token_bytes,
            limits=Limits(negotiation_timeout=self.config.connect_timeout),
            require_valid_certificate=self.config.require_valid_certificates,
            allow_dialback=self.config.dialback,
            max_domain_pairs=self.config.max_domain_pairs,
            bidi=self.config.bidi,
        )
        cert, key = (
            (config.tls.cert, config.tls.key)
            if config.tls.cert is not None and config.tls.key is not None
            else ensure_certificate(config.data_dir, config.hosted_domains)
        )
        cafile = self.config.cafile or None
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_context.load_cert_chain(str(cert), str(key))
        self.server_context.verify_mode = ssl.CERT_OPTIONAL  # for EXTERNAL (XEP-0178)
        self._trust(self.server_context, cafile)
        self.client_context = _client_context(cafile, cert, key)
        self.lenient_context = _client_context(None, None, None)
        # XEP-0368 §3: direct TLS says what it carries with ALPN "xmpp-server".
        self.direct_contexts = {
            True: _client_context(cafile, cert, key, alpn=True),
            False: _client_context(None, None, None, alpn=True),
        }
        self.direct_server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.direct_server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.direct_server_context.load_cert_chain(str(cert), str(key))
        self.direct_server_context.verify_mode = ssl.CERT_OPTIONAL
        self.direct_server_context.set_alpn_protocols([_ALPN])
        self._trust(self.direct_server_context, cafile)
        self.links: dict[tuple[str, str], _Link] = {}
        #: ready outbound streams by remote domain (what new pairs piggyback on)
        self.outbound: dict[str, list[_Stream]] = {}
        #: remote domains whose first outbound stream is being opened
        self._opening: dict[str, trio.Event] = {}
        self.inbound: set[_Stream] = set()
        self.failures = 0
        #: failed outbound links by remote domain (``status``, metrics)
        self.domain_failures: dict[str, int] = {}
        #: how each inbound (remote, local) pair was last authenticated (metrics, tests)
        self.methods: dict[tuple[str, str], str] = {}
        #: the read rate of each remote domain with inbound streams
        #: (``max_inbound_rate``, shared by all its streams), and how many
        self.rates: dict[str, TokenBucket] = {}
        #: keepalive pings waiting for their answer: id -> (local, remote, answered)
        self._pings: dict[str, tuple[str, str, trio.Event]] = {}
        self.pings_answered = 0
        self._rate_users: dict[str, int] = {}
        self.port = 0  #: the s2s listener's port (set by start_federation)

    @staticmethod
    def _trust(context: ssl.SSLContext, cafile: str | None) -> None:
        if cafile:
            context.load_verify_locations(cafile)
        else:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)

    # -- the router's remote route ---------------------------------------------

    def send(self, effect: RouteRemote) -> None:
        """Queue ``effect.element`` on the link of its pair, starting it if needed."""
        element, remote = effect.element, effect.domain
        local = _domain_of(element.get("from"))
        if local is None or not self.config.allows(remote) or local not in self.s2s.domains:
            self._bounce(element, _NOT_FOUND)
            return
        link = self.links.get((local, remote))
        if link is None:
            if sum(1 for (_, r) in self.links if r == remote) >= self.config.max_streams_per_domain:
                self._bounce(element, StanzaErrorCondition.RESOURCE_CONSTRAINT)
                return
            link = self.links[local, remote] = _Link(local, remote)
            self.nursery.start_soon(self._run_link, link)
        if len(link.queue) >= self.config.max_queue:
            self._bounce(element, StanzaErrorCondition.RESOURCE_CONSTRAINT)
            return
        link.queue.append(element)
        link.wake.set()

    def _bounce(self, element: Element, condition: StanzaErrorCondition) -> None:
        """Bounce a stanza the remote route could not take, without its
        payload (:func:`~xmpp_sansio.server.remote.without_payload`)."""
        self.server.apply(self.server.router.bounce(without_payload(element), condition))

    def _apply(self, effects: list[Effect]) -> None:
        self.server.apply(effects)

    # -- outbound ----------------------------------------------------------------

    async def _run_link(self, link: _Link) -> None:
        try:
            try:
                with trio.fail_after(self.config.connect_timeout):
                    link.ready = await self._stream_for(link)
            except trio.TooSlowError:
                self._fail(link, _TIMEOUT, "timed out")
                return
            except (LinkFailed, OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
                self._fail(link, _NOT_FOUND, str(exc))
                return
            link.last_used = trio.current_time()
            async with trio.open_nursery() as nursery:
                link.scope = nursery.cancel_scope
                if link.ready.ended:  # ended while this link was being set up
                    nursery.cancel_scope.cancel()
                if self.config.ping_interval > 0:
                    nursery.start_soon(self._keepalive, link, nursery.cancel_scope)
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                    await self._write_queue(link)
                nursery.cancel_scope.cancel()
        finally:
            if self.links.get((link.local, link.remote)) is link:
                del self.links[link.local, link.remote]
            for element in link.queue:
                self._bounce(element, _NOT_FOUND)
            link.queue.clear()
            if link.ready is not None:
                await self._release(link.ready, link)

    async def _stream_for(self, link: _Link) -> _Stream:
        """The outbound stream for ``link``'s pair: an open stream to the same
        remote domain when it can take another pair (piggybacking, XEP-0220
        §2.6: a ``db:result`` for the new local domain, valid at once when
        the certificate names it, XEP-0344), else a new one."""
        remote = link.remote
        opening: trio.Event | None = None
        if self.config.piggyback:
            tried: set[_Stream] = set()
            while True:
                if (waiting := self._opening.get(remote)) is not None:
                    await waiting.wait()  # the first stream to it: wait, then share it
                    continue
                shared = await self._piggyback(link, tried)
                if shared is not None:
                    return shared
                if remote not in self._opening:
                    break
            opening = self._opening[remote] = trio.Event()
        elif (shared := await self._piggyback(link, set())) is not None:
            return shared  # an inbound bidirectional stream (XEP-0288)
        try:
            stream = await self._open(link.local, remote)
        finally:
            if opening is not None:
                del self._opening[remote]
                opening.set()
        link.method = stream.method
        if stream.conn.bidi and stream.method is not None:
            # XEP-0288: the remote sends us its stanzas over this stream
            self.methods[remote, link.local] = stream.method
        stream.riders.add(link)
        self.outbound.setdefault(remote, []).append(stream)
        self.nursery.start_soon(self._read_outbound, stream, remote)
        return stream

    async def _piggyback(self, link: _Link, tried: set[_Stream]) -> _Stream | None:
        """Add ``link``'s pair to an open stream to its remote domain, or None."""
        remote = link.remote
        for stream in list(self.outbound.get(remote, ())):
            conn = stream.conn
            if stream.ended or stream in tried:
                continue
            if (link.local, remote) in conn.pairs and (stream.owned or conn.bidi):
                stream.riders.add(link)
                link.method = self.methods.get((remote, link.local), stream.method)
                return stream
            if not (
                self.config.piggyback
                and isinstance(conn, S2SInitiatingConnection)
                and conn.can_piggyback
            ):
                continue
            tried.add(stream)
            stream.riders.add(link)
            waiter = stream.asked[link.local] = trio.Event()
            conn.authorize(link.local)
            try:
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                    await stream.flush()
                    await waiter.wait()
            except BaseException:  # timed out (connect_timeout): leave the stream
                stream.asked.pop(link.local, None)
                with trio.CancelScope(shield=True):
                    await self._release(stream, link)
                raise
            if (link.local, remote) in conn.pairs and not stream.ended:
                return stream
            log.info("s2s %s -> %s: refused on a shared stream", link.local, remote)
            await self._release(stream, link)
        return None

    async def _release(self, stream: _Stream, link: _Link) -> None:
        """``link`` no longer uses ``stream``; the last one to leave closes it."""
        stream.riders.discard(link)
        if stream.riders or not stream.owned:
            return
        self._forget(stream)
        if stream.reader is not None:
            stream.reader.cancel()
        await self._close(stream)

    def _forget(self, stream: _Stream) -> None:
        """No new pair piggybacks on ``stream`` from now on."""
        for remote, streams in list(self.outbound.items()):
            if stream in streams:
                streams.remove(stream)
                if not streams:
                    del self.outbound[remote]

    async def _read_outbound(self, stream: _Stream, remote: str) -> None:
        """Read an outbound stream until it ends: dialback answers for
        piggybacked pairs wake their links; at the end every link on it stops
        (its queue bounces) and nothing more is added to it."""
        conn = stream.conn
        if conn.bidi:  # the remote writes to us here: its read rate applies
            self._rate_of(stream, remote)
        bucket = self.rates.get(remote) if conn.bidi else None

        def on_event(event: Event) -> None:
            if isinstance(event, StanzaReceived):
                # XEP-0288: the remote's stanzas on our stream
                self._inbound_stanza(event.element)
            elif isinstance(event, DomainPairAuthenticated | DomainPairRejected):
                waiter = stream.asked.pop(event.local, None)
                link = self.links.get((event.local, remote))
                if link is not None and isinstance(event, DomainPairAuthenticated):
                    link.method = event.method
                if waiter is not None:
                    waiter.set()

        with trio.CancelScope() as scope:
            stream.reader = scope
            try:
                await self._read_loop(stream, lambda: bucket, on_event, lambda: f"to {remote}")
            except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                pass
            finally:
                self._end(stream)
                self._rate_done(stream)

    def _stop(self, stream: _Stream) -> None:
        """End an outbound stream for every link on it (stuck, or unanswered)."""
        self._forget(stream)
        if stream.reader is not None:
            stream.reader.cancel()

    def _end(self, stream: _Stream) -> None:
        """The outbound ``stream`` is gone: its links stop, waiters wake."""
        stream.ended = True
        self._forget(stream)
        for waiter in stream.asked.values():
            waiter.set()
        stream.asked.clear()
        for rider in stream.riders:
            if rider.scope is not None:
                rider.scope.cancel()

    def _fail(self, link: _Link, condition: StanzaErrorCondition, why: str) -> None:
        self.failures += 1
        self.domain_failures[link.remote] = self.domain_failures.get(link.remote, 0) + 1
        log.info("s2s %s -> %s failed: %s", link.local, link.remote, why)
        queued, link.queue = link.queue, []
        for element in queued:
            self._bounce(element, condition)

    async def _write_queue(self, link: _Link) -> None:
        """Send what is queued; close after ``idle_timeout`` without stanzas,
        or when a write waits longer than ``send_timeout``."""
        assert link.ready is not None
        stream = link.ready
        while not stream.conn.should_close:
            if link.queue:
                queued, link.queue = link.queue, []
                for i, element in enumerate(queued):
                    try:
                        stream.conn.send(element)
                    except LocalProtocolError:  # the stream closed under a shared link
                        link.queue[:0] = queued[i:]  # bounced as the link ends
                        return
                with trio.move_on_after(self.config.send_timeout) as stuck:
                    await stream.flush()
                link.last_used = trio.current_time()
                if stuck.cancelled_caught:
                    # A remote that stops reading: close the link and bounce
                    # what is still queued (RFC 6120 §8.3.3.14); others go on.
                    self._fail(link, _TIMEOUT, "the remote stopped reading")
                    self._stop(stream)
                    return
                continue
            link.wake = trio.Event()
            with trio.move_on_after(self.config.idle_timeout) as idle:
                await link.wake.wait()
            if idle.cancelled_caught:
                log.info("s2s %s -> %s idle: closing", link.local, link.remote)
                return

    async def _keepalive(self, link: _Link, scope: trio.CancelScope) -> None:
        """XEP-0199 §4.3: ping an outbound link idle for ``ping_interval``;
        without an answer (over the remote's stream to us) within
        ``ping_timeout`` the link is closed and its queue bounces with
        ``remote-server-timeout``."""
        stream = link.ready
        assert stream is not None
        interval = self.config.ping_interval
        while True:
            await trio.sleep_until(link.last_used + interval)
            if trio.current_time() < link.last_used + interval:
                continue  # used meanwhile
            ping_id = "s2s-ping-" + secrets.token_hex(8)
            answered = trio.Event()
            self._pings[ping_id] = (link.local, link.remote, answered)
            try:
                stream.conn.send(server_ping(link.local, link.remote, ping_id))
                await stream.flush()
                with trio.move_on_after(self.config.ping_timeout):
                    await answered.wait()
            finally:
                del self._pings[ping_id]
            if not answered.is_set():
                self._fail(link, _TIMEOUT, "no answer to a ping")
                self._stop(stream)
                scope.cancel()
                return
            self.pings_answered += 1
            link.last_used = trio.current_time()

    async def _open(self, local: str, remote: str, *, verify_only: bool = False) -> _Stream:
        """Connect and negotiate until the pair is authenticated (or, with
        ``verify_only``, the stream can carry ``db:verify``)."""
        targets = await resolve_server_targets(
            remote, overrides=self.hosts, nameservers=self.nameservers
        )
        if not targets:
            raise LinkFailed(f"{remote} has no s2s service")
        last: Exception = LinkFailed(f"no address of {remote} answered")
        lenient_ok = self.config.dialback and not self.config.require_valid_certificates
        for target in targets:
            for strict in (True, False) if lenient_ok else (True,):
                try:
                    host = await resolve_host(target.host, self.nameservers)
                    tcp = await trio.open_tcp_stream(host, target.port)
                except OSError as exc:
                    last = exc
                    break
                stream = _Stream(
                    S2SInitiatingConnection(self.s2s, local, remote, verify_only=verify_only), tcp
                )
                try:
                    if target.direct_tls:
                        await self._direct_tls(stream, strict, verify_only=verify_only)
                    await self._negotiate(stream, strict)
                    return stream
                except (ssl.SSLError, _TLSFailed) as exc:
                    last = exc
                    await self._close(stream)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    # TLS 1.3: a refused client certificate shows on the first read.
                    last = LinkFailed(f"connection broken: {exc.__cause__ or exc!r}")
                    await self._close(stream)
                    if not (strict and stream.conn.tls_active):
                        break
                except LinkFailed as exc:
                    last = exc
                    await self._close(stream)
                    break
        raise LinkFailed(str(last))

    async def _direct_tls(self, stream: _Stream, strict: bool, *, verify_only: bool) -> None:
        """XEP-0368: TLS before the stream header (an ``_xmpps-server`` target);
        the connection then starts with TLS on and the peer's facts known."""
        old = stream.conn
        assert isinstance(old, S2SInitiatingConnection)
        tls = trio.SSLStream(
            stream.stream, self.direct_contexts[strict], server_hostname=old.remote
        )
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            raise _TLSFailed(f"direct TLS: {exc.__cause__}") from exc
        stream.stream = tls
        facts = peer_certificate(
            tls.getpeercert(binary_form=True), chain_valid=strict
        ) or PeerCertificate(False)
        stream.conn = S2SInitiatingConnection(
            self.s2s, old.local, old.remote, verify_only=verify_only, direct_tls=facts
        )

    async def _negotiate(self, stream: _Stream, strict: bool) -> None:
        conn = stream.conn
        assert isinstance(conn, S2SInitiatingConnection)
        conn.start()
        await stream.flush()
        while True:
            if conn.verify_only and conn._can_verify:
                return
            data = await stream.stream.receive_some(_READ)
            conn.receive_data(data)
            while True:
                try:
                    event = conn.next_event()
                except RemoteProtocolError as exc:
                    await stream.flush()
                    raise LinkFailed(f"stream error {exc.condition.value}") from None
                if event is None:
                    break
                if isinstance(event, TLSRequested):
                    await stream.flush()
                    context = self.client_context if strict else self.lenient_context
                    ssl_stream = trio.SSLStream(stream.stream, context, server_hostname=conn.remote)
                    try:
                        await ssl_stream.do_handshake()
                    except trio.BrokenResourceError as exc:
                        raise _TLSFailed(f"TLS: {exc.__cause__}") from exc
                    stream.stream = ssl_stream
                    der = ssl_stream.getpeercert(binary_form=True)
                    conn.send(S2STLSEstablished(peer_certificate(der, chain_valid=strict)))
                elif isinstance(event, DomainPairAuthenticated):
                    stream.method = event.method
                    await stream.flush()
                    return
                elif isinstance(event, NegotiationFailed | DomainPairRejected):
                    await stream.flush()
                    raise LinkFailed(str(event))
            await stream.flush()
            if not data or conn.should_close:
                raise LinkFailed("the remote server closed the stream")

    async def _close(self, stream: _Stream) -> None:
        with suppress(Exception):
            stream.conn.close()
            with trio.move_on_after(1):
                await stream.flush()
        await trio.aclose_forcefully(stream.stream)

    async def _verify(self, receiving: _Stream, event: DialbackVerifyRequested) -> None:
        """XEP-0220 §2.3: ask the authoritative server of the originating domain."""
        valid, error = False, None
        try:
            with trio.fail_after(self.config.connect_timeout):
                check = await self._open(event.receiving, event.originating, verify_only=True)
                conn = check.conn
                assert isinstance(conn, S2SInitiatingConnection)
                conn.verify(event.originating, event.receiving, event.stream_id, event.key)
                await check.flush()
                valid = await self._verify_answer(check)
                await self._close(check)
        except trio.TooSlowError:
            error = _TIMEOUT
        except (
            LinkFailed,
            OSError,
            RemoteProtocolError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            ssl.SSLError,
        ) as exc:
            log.info("dialback check of %s failed: %s", event.originating, exc)
            error = _NOT_FOUND
        rconn = receiving.conn
        if rconn.should_close:
            return
        rconn.send(DialbackVerdict(event.originating, event.receiving, valid, error))
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
            await receiving.flush()
        if rconn.should_close:  # an invalid key closed the stream (XEP-0220 §2.4)
            await trio.aclose_forcefully(receiving.stream)

    async def _verify_answer(self, check: _Stream) -> bool:
        while True:
            data = await check.stream.receive_some(_READ)
            check.conn.receive_data(data)
            while (event := check.conn.next_event()) is not None:
                if isinstance(event, DialbackVerifyResult):
                    return event.valid
            if not data or check.conn.should_close:
                raise LinkFailed("no dialback answer")

    # -- inbound -------------------------------------------------------------------

    async def handle_inbound(self, tcp: trio.SocketStream, *, direct_tls: bool = False) -> None:
        """Serve one connection on the s2s port, or with ``direct_tls`` on an
        ``s2s-directtls`` listener (XEP-0368: TLS before the header);
        negotiated within ``connect_timeout``; errors end this connection only."""
        stream = _Stream(S2SReceivingConnection(self.s2s), tcp, owned=False)
        self.inbound.add(stream)
        try:
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(self.config.connect_timeout) as deadline:
                        if direct_tls:
                            tls = trio.SSLStream(tcp, self.direct_server_context, server_side=True)
                            await tls.do_handshake()
                            stream.stream = tls
                            der = tls.getpeercert(binary_form=True)
                            facts = peer_certificate(
                                der, chain_valid=der is not None
                            ) or PeerCertificate(False)
                            stream.conn = S2SReceivingConnection(self.s2s, direct_tls=facts)
                        await self._serve_inbound(stream, nursery, deadline)
                except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                except ssl.SSLError as exc:
                    log.info("s2s TLS failed: %s", exc)
                nursery.cancel_scope.cancel()
        finally:
            self.inbound.discard(stream)
            self._end(stream)
            self._rate_done(stream)
            await self._close(stream)

    def _rate_done(self, stream: _Stream) -> None:
        """``stream`` no longer counts against its domain's read rate."""
        if stream.domain is not None:
            self._rate_users[stream.domain] -= 1
            if not self._rate_users[stream.domain]:
                del self._rate_users[stream.domain], self.rates[stream.domain]
            stream.domain = None

    @staticmethod
    async def _throttle(bucket: TokenBucket | None, size: int) -> None:
        """A flood from one remote domain waits here (backpressure on its
        streams); other domains and local users go on."""
        if bucket is not None:
            delay = bucket.consume(size, trio.current_time())
            if delay > 0:
                await trio.sleep(delay)

    def _rate_of(self, stream: _Stream, domain: str) -> None:
        """Count ``stream`` against ``domain``'s read rate from now on."""
        stream.domain = domain
        self._rate_users[domain] = self._rate_users.get(domain, 0) + 1
        if domain not in self.rates:
            rate = self.config.max_inbound_rate
            self.rates[domain] = TokenBucket(rate, 2.0 * rate)

    async def _serve_inbound(
        self, stream: _Stream, nursery: trio.Nursery, deadline: trio.CancelScope
    ) -> None:
        conn = stream.conn
        assert isinstance(conn, S2SReceivingConnection)

        async def on_event(event: Event) -> None:
            if isinstance(event, TLSRequested):
                await stream.flush()
                ssl_stream = trio.SSLStream(stream.stream, self.server_context, server_side=True)
                await ssl_stream.do_handshake()
                stream.stream = ssl_stream
                der = ssl_stream.getpeercert(binary_form=True)
                conn.send(S2STLSEstablished(peer_certificate(der, chain_valid=der is not None)))
            elif isinstance(event, DialbackVerifyRequested):
                if self.config.allows(event.originating):
                    nursery.start_soon(self._verify, stream, event)
                else:
                    conn.send(DialbackVerdict(event.originating, event.receiving, False))
            elif isinstance(event, DomainPairAuthenticated):
                self.methods[event.remote, event.local] = event.method
                if stream.domain is None:
                    stream.method = event.method
                    self._rate_of(stream, event.remote)
                if not self.config.allows(event.remote):
                    conn.close()
                elif conn.bidi and stream not in self.outbound.get(event.remote, ()):
                    # XEP-0288: our stanzas to that domain may go back on it
                    self.outbound.setdefault(event.remote, []).append(stream)
                deadline.deadline = float("inf")  # negotiated: no more deadline
            elif isinstance(event, StanzaReceived):
                self._inbound_stanza(event.element)

        def bucket() -> TokenBucket | None:  # the domain's, once one is authenticated
            return self.rates.get(stream.domain) if stream.domain is not None else None

        await self._read_loop(stream, bucket, on_event, lambda: f"from {conn.remote}")

    async def _read_loop(
        self,
        stream: _Stream,
        bucket: Callable[[], TokenBucket | None],
        on_event: Callable[[Event], Awaitable[None] | None],
        name: Callable[[], str],
    ) -> None:
        """Read ``stream`` until it closes or ends, in reads of at most what
        the read rate's ``bucket()`` allows: each event goes to ``on_event``
        (awaited if it returns an awaitable), a bad one is logged as ``s2s
        {name()}: condition`` and skipped; what the connection has to send is
        flushed after each read, then the read is paid for (backpressure)."""
        conn = stream.conn
        while not conn.should_close:
            rate = bucket()
            size = _READ if rate is None else min(_READ, rate.max_read())
            data = await stream.stream.receive_some(size)
            conn.receive_data(data)
            while True:
                try:
                    event = conn.next_event()
                except RemoteProtocolError as exc:
                    log.info("s2s %s: %s", name(), exc.condition.value)
                    continue
                if event is None:
                    break
                done = on_event(event)
                if done is not None:
                    await done
            await stream.flush()
            if not data:
                break
            await self._throttle(rate, len(data))

    def _inbound_stanza(self, element: Element) -> None:
        origin = _domain_of(element.get("from"))
        assert origin is not None  # the stream checked the pair
        ping = self._pings.get(element.get("id") or "") if self._pings else None
        if ping is not None and ping_answered(element, ping[0], ping[1]) is not None:
            ping[2].set()  # the answer to our keepalive (XEP-0199 §4.3)
            return
        try:
            self._apply(self.server.router.route_from_remote(element, origin))
        except LocalProtocolError as exc:  # pragma: no cover - the stream checks first
            log.warning("s2s stanza refused: %s", exc)


async def start_federation(server: XMPPServer, nursery: trio.Nursery) -> list[tuple[str, int]]:
    """Attach a :class:`Federation` to ``server`` and listen on the s2s port;
    returns where (address, port)."""
    federation = server.federation = Federation(server, nursery)
    server.metrics.registry.register(S2SCollector(federation))
    listeners = await trio.open_tcp_listeners(server.config.federation.port)
    where = []
    for listener in listeners:
        where.append(listener.socket.getsockname()[:2])
        federation.port = where[0][1]
        nursery.start_soon(trio.serve_listeners, federation.handle_inbound, [listener])
    log.info("listening for s2s on %s", where)
    return where


def s2s_handler(
    server: XMPPServer, kind: str
) -> Callable[[trio.SocketStream], Awaitable[None]] | None:
    """The handler of an ``s2s-directtls`` listener (XEP-0368), else None;
    it serves connections once federation has started (else closes them)."""
    if kind != "s2s-directtls":
        return None

    async def handle(tcp: trio.SocketStream) -> None:
        if server.federation is None:
            await trio.aclose_forcefully(tcp)
            return
        await server.federation.handle_inbound(tcp, direct_tls=True)

    return handle
