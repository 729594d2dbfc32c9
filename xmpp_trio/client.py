"""A Trio XMPP client over xmpp_sansio's :class:`ClientConnection`.

``open_client`` connects (explicit host and port, or DNS SRV with a fallback
to the domain on 5222), negotiates STARTTLS or direct TLS with certificate
verification on, authenticates with the strongest SASL mechanism (SCRAM, the
``-PLUS`` variants when channel binding is available, PLAIN only over TLS)
and binds a resource. Then::

    async with open_client("juliet@example.com", "secret") as client:
        await client.send(message)
        async for stanza in client:
            ...

Stream management (XEP-0198) is enabled when the server offers it, with
resumption: if the connection breaks, keep ``client.sm_state`` and pass it as
``open_client(..., resume=state)`` to pick the session up where it was; the
server retransmits what we missed and we retransmit what it missed. If the
session cannot be resumed, ``client.unacked_from_previous`` lists the
stanzas the server never acknowledged, for the application to resend.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client import ping_dispatcher
from xmpp_sansio.errors import RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.iq import IqError, IqResult, IqTracker
from xmpp_sansio.jid import JID
from xmpp_sansio.sm import SMState
from xmpp_sansio.stanza import StanzaError
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection, WebSocketFraming
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    ConnectionClosed,
    NegotiationFailed,
    ResourceBound,
    ResumeFailed,
    StanzaReceived,
    StreamClosed,
    StreamErrorReceived,
    StreamResumed,
    TLSRequested,
)
from xmpp_sansio.stream.login_options import (
    FastTokenAccepted,
    FastTokenGranted,
    FastTokenInvalidated,
    FastTokenRejected,
    LoginOptions,
    SavedFastToken,
)
from xmpp_sansio.xml import ns

from . import _tls
from ._openssl_stream import openssl_client_context
from ._ws_client import WebSocketClientStream, connect_websocket
from .resolve import Target, resolve_client_targets

__all__ = [
    "AuthenticationError",
    "CertificateError",
    "Client",
    "ConnectionFailed",
    "IqErrorResponse",
    "IqTimeoutError",
    "StreamError",
    "XMPPError",
    "open_client",
    "openssl_client_context",
]

log = logging.getLogger("xmpp_trio.client")

_IQ = "{" + ns.CLIENT + "}iq"
_PING = "{" + ns.PING + "}ping"
_CLOSE_NOTIFY_TIMEOUT = 2.0  # seconds a clean TLS close (close_notify) may take


class XMPPError(Exception):
    """Base class of the client's errors."""


class ConnectionFailed(XMPPError):
    """No connection could be made or negotiated."""


class CertificateError(ConnectionFailed):
    """The server's certificate did not verify (RFC 6120 §13.7.2): reconnecting
    cannot help until the client is told to trust it. ``reason`` is OpenSSL's
    (e.g. ``self-signed certificate``)."""

    def __init__(self, domain: str, reason: str) -> None:
        super().__init__(
            f"could not connect to {domain}: certificate verify failed: {reason};"
            " trust the server's certificate or its CA"
            " with ssl_context=ssl.create_default_context(cafile=...) (bots: ca_file;"
            " an xmpp-trio server's self-signed certificate is <data_dir>/tls/cert.pem)"
        )
        self.reason = reason


def _describe(exc: BaseException, timeout: float) -> str:
    """One line on why a connection attempt failed (trio hides the socket
    errors of ``open_tcp_stream`` in the cause of its ``OSError``)."""
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, OSError) and isinstance(exc.__cause__, BaseExceptionGroup):
        leaves = exc.__cause__.exceptions
        reasons = {e.strerror or str(e) for e in leaves if isinstance(e, OSError)}
        if reasons:
            return "; ".join(sorted(reasons))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    cause = exc.__cause__
    return str(exc) or repr(cause if cause is not None else exc)


def _verify_failure(exc: BaseException) -> str | None:
    """OpenSSL's reason if ``exc`` (or what caused it: trio wraps it in
    ``BrokenResourceError``) is a failed certificate verification."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or seen.reason or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


class AuthenticationError(XMPPError):
    """SASL failed; ``condition`` is the RFC 6120 §6.5 condition."""

    def __init__(self, condition: str, text: str | None = None) -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text


class StreamError(XMPPError):
    """The server ended the stream with a stream error (RFC 6120 §4.9)."""

    def __init__(self, condition: StreamErrorCondition, text: str | None = None) -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text


class IqErrorResponse(XMPPError):
    """An IQ request was answered with an error (RFC 6120 §8.3); ``error`` holds it."""

    def __init__(self, error: StanzaError, element: Element) -> None:
        super().__init__(
            f"{error.type}/{error.condition}" + (f": {error.text}" if error.text else "")
        )
        self.error = error
        self.element = element


class IqTimeoutError(XMPPError):
    """No answer to an IQ request in time."""


@dataclass
class _Negotiated:
    """What negotiation produced besides the stream."""

    stream: trio.abc.Stream
    early: list[Element]  # stanzas received before negotiation was over
    resumed: bool = False
    unacked_from_previous: tuple[Element, ...] = ()
    mechanism: str | None = None
    fast_token: SavedFastToken | None = None


class Client:
    """A negotiated client stream. Use :func:`open_client` to get one.

    Incoming stanzas arrive through :meth:`receive` or ``async for``; answers
    to :meth:`request` are taken out of that flow. Pings (XEP-0199) are
    answered automatically.

    Attributes:
        resumed: this stream resumed a previous session (XEP-0198 §5).
        unacked_from_previous: the previous session could not be resumed and
            these stanzas of it were never acknowledged by the server: resend
            what should not be lost.
        mechanism: the SASL mechanism that logged in (``HT-*``: a FAST token).
        sasl2: the login used SASL2 (XEP-0388) rather than RFC 6120 SASL.
        channel_binding: the channel binding type a ``-PLUS`` mechanism bound
            the login to (``tls-unique`` on TLS 1.2 where the server supports
            it, else ``tls-server-end-point``), ``None`` without binding.
        fast_token: the FAST token to keep for the next login (XEP-0484):
            the one issued or rotated now, the one used (its count raised),
            or ``None`` when the server refused it and issued none, or
            invalidated it (``LoginOptions(invalidate_token=True)``).
    """

    def __init__(
        self, conn: ClientConnection, stream: trio.abc.Stream, negotiated: _Negotiated | None = None
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._early = negotiated.early if negotiated is not None else []
        self.resumed = negotiated.resumed if negotiated is not None else False
        self.unacked_from_previous = (
            negotiated.unacked_from_previous if negotiated is not None else ()
        )
        self.mechanism = negotiated.mechanism if negotiated is not None else None
        self.fast_token = (
            negotiated.fast_token if negotiated is not None else conn.config.login.fast_token
        )
        self.sasl2 = conn.used_sasl2
        self.channel_binding = conn.channel_binding_used
        self._aborted = False
        self._send_lock = trio.Lock()
        self._incoming_send, self._incoming = trio.open_memory_channel[Element](1000)
        self.closed = trio.Event()
        self.error: XMPPError | None = None
        self._tracker = IqTracker(rng=secrets.token_bytes)
        self._pings = ping_dispatcher()
        self._tracker.own_jid = conn.jid
        self._waiting: dict[str, trio.Event] = {}
        self._answers: dict[str, IqResult | IqError] = {}

    @property
    def jid(self) -> JID:
        """The full JID the server bound."""
        assert self._conn.jid is not None
        return self._conn.jid

    @property
    def sm_state(self) -> SMState | None:
        """The stream management state (XEP-0198), ``None`` if the server does not
        offer it. Once the connection is lost, pass it as ``open_client(...,
        resume=...)`` to resume the session."""
        return self._conn.sm

    async def send(self, stanza: Element) -> None:
        """Send a stanza (``jabber:client`` namespace, e.g. ``{jabber:client}message``)."""
        self._conn.send(stanza)
        await self._flush()

    async def request_ack(self) -> None:
        """Ask the server to acknowledge what it handled (XEP-0198 §4 ``<r/>``)."""
        self._conn.request_ack()
        await self._flush()

    async def set_active(self, active: bool) -> None:
        """Tell the server whether the user is active (XEP-0352 Client State
        Indication); an inactive client gets presence updates later, batched.

        Raises:
            xmpp_sansio.errors.LocalProtocolError: the server does not offer CSI.
        """
        self._conn.set_client_state(active)
        await self._flush()

    @property
    def csi_offered(self) -> bool:
        """The server offers Client State Indication (XEP-0352)."""
        return self._conn.csi_offered

    async def abort(self) -> None:
        """Drop the connection without closing the stream, as a network failure
        would: the server keeps a resumable session for ``sm_state``."""
        self._aborted = True
        await trio.aclose_forcefully(self._stream)
        with trio.move_on_after(5):
            await self.closed.wait()

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element:
        """Send an iq get/set and wait for its result (RFC 6120 §8.2.3).

        Returns the result ``<iq/>``. Raises :class:`IqErrorResponse` for an
        error answer and :class:`IqTimeoutError` when none comes in time.
        """
        iq_id = self._tracker.request(iq, now=trio.current_time(), timeout=timeout)
        done = self._waiting[iq_id] = trio.Event()
        try:
            await self.send(iq)
            with trio.move_on_after(timeout):
                await done.wait()
        finally:
            del self._waiting[iq_id]
            self._tracker.cancel(iq_id)
        answer = self._answers.pop(iq_id, None)
        if answer is None:
            if self.closed.is_set():
                raise self.error or ConnectionFailed("the stream closed")
            raise IqTimeoutError(f"no answer to iq {iq_id} within {timeout} s")
        if isinstance(answer, IqError):
            raise IqErrorResponse(answer.error, answer.element)
        return answer.element

    async def _dispatch(self, stanza: Element) -> None:
        if stanza.tag == _IQ:
            answer = self._tracker.handle(stanza)
            if answer is not None:
                self._answers[answer.id] = answer
                self._waiting[answer.id].set()
                return
            if stanza.get("type") == "get" and stanza.find(_PING) is not None:
                reply = self._pings.handle(stanza).reply  # XEP-0199 §4
                if reply is not None:
                    self._conn.send(reply)
                    return
        await self._incoming_send.send(stanza)

    async def receive(self) -> Element:
        """Wait for the next incoming stanza. Raises ``trio.EndOfChannel`` once closed."""
        return await self._incoming.receive()

    def __aiter__(self) -> AsyncIterator[Element]:
        return self._incoming.__aiter__()

    async def aclose(self) -> None:
        """Close the stream cleanly (RFC 6120 §4.4) and the connection."""
        if not self.closed.is_set() and not self._aborted:
            self._conn.close()
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._flush()
            with trio.move_on_after(5):
                await self.closed.wait()
        if self.closed.is_set() and not self._aborted:
            # The reader is done with the stream: close it cleanly.
            await _close_cleanly(self._stream)
        else:
            await trio.aclose_forcefully(self._stream)

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self._conn.data_to_send()
            if data:
                await self._stream.send_all(data)

    async def _reader(self) -> None:
        try:
            early, self._early = self._early, []
            for stanza in early:
                await self._dispatch(stanza)
            while not self._conn.should_close:
                try:
                    data = await self._stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                    data = b""
                _feed(self._conn, self._stream, data)
                try:
                    while (event := self._conn.next_event()) is not None:
                        if isinstance(event, StanzaReceived):
                            await self._dispatch(event.element)
                        elif isinstance(event, StreamErrorReceived):
                            self.error = StreamError(event.condition, event.text)
                        elif isinstance(event, (StreamClosed, ConnectionClosed)):
                            pass
                except RemoteProtocolError as exc:
                    self.error = StreamError(exc.condition, exc.text)
                try:
                    await self._flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not data:
                    break
        finally:
            self.closed.set()
            await self._incoming_send.aclose()


class _SpaceBeforeTLS(trio.abc.Stream):
    """The plaintext stream under a STARTTLS handshake, without the XML
    whitespace a server may send after ``<proceed/>`` (RFC 6120 §5.3.3 says
    not to): read in its own segment, it would be taken for the start of the
    server's first TLS record, which never starts with whitespace."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._skipping = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        while True:
            data = await self.stream.receive_some(max_bytes)
            if not self._skipping or not data:
                return data
            data = bytes(data).lstrip(b" \t\r\n")
            if data:
                self._skipping = False
                return data

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _close_cleanly(stream: trio.abc.Stream) -> None:
    """Close ``stream``; a TLS stream sends close_notify first (RFC 8446 §6.1),
    within :data:`_CLOSE_NOTIFY_TIMEOUT`, else it is closed forcefully."""
    with trio.move_on_after(_CLOSE_NOTIFY_TIMEOUT) as scope:
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
            await stream.aclose()
    if scope.cancelled_caught:
        await trio.aclose_forcefully(stream)


async def _negotiate(
    conn: ClientConnection, stream: trio.abc.Stream, ctx: _tls.TLSContext, domain: str
) -> _Negotiated:
    """Drive negotiation until the resource is bound (or the session resumed) and
    stream management is settled; return the (maybe TLS) stream and what came
    with it."""
    conn.start()
    early: list[Element] = []
    ready = False
    resumed = False
    unacked: tuple[Element, ...] = ()
    mechanism: str | None = None
    token = conn.config.login.fast_token
    while True:
        data = conn.data_to_send()
        if data:
            await stream.send_all(data)
        try:
            while (event := conn.next_event()) is not None:
                if isinstance(event, TLSRequested):
                    data = conn.data_to_send()
                    if data:
                        await stream.send_all(data)
                    under = _SpaceBeforeTLS(stream)
                    tls = _tls.client_tls_stream(under, ctx, domain)
                    await tls.do_handshake()
                    stream = tls
                    conn.tls_established(_tls.client_tls_info(tls))
                elif isinstance(event, ResourceBound):
                    ready = True
                elif isinstance(event, StreamResumed):
                    ready = resumed = True
                elif isinstance(event, ResumeFailed):
                    unacked = event.unacked
                elif isinstance(event, Authenticated):
                    mechanism = event.mechanism
                elif isinstance(event, (FastTokenGranted, FastTokenAccepted)):
                    token = event.token
                elif isinstance(event, (FastTokenRejected, FastTokenInvalidated)):
                    token = None
                elif isinstance(event, StanzaReceived):
                    early.append(event.element)
                elif isinstance(event, AuthenticationFailed):
                    await stream.send_all(conn.data_to_send())
                    raise AuthenticationError(event.condition, event.text)
                elif isinstance(event, NegotiationFailed):
                    await stream.send_all(conn.data_to_send())
                    raise ConnectionFailed(event.reason)
                elif isinstance(event, StreamErrorReceived):
                    raise StreamError(event.condition, event.text)
                elif isinstance(event, (StreamClosed, ConnectionClosed)):
                    raise ConnectionFailed("the server closed the stream during negotiation")
        except RemoteProtocolError as exc:
            await stream.send_all(conn.data_to_send())
            raise StreamError(exc.condition, exc.text) from exc
        data = conn.data_to_send()
        if data:
            await stream.send_all(data)
        if ready and not conn.sm_pending:
            return _Negotiated(stream, early, resumed, unacked, mechanism, token)
        if data:
            continue
        chunk = await stream.receive_some(65536)
        _feed(conn, stream, chunk)


def _feed(conn: ClientConnection, stream: trio.abc.Stream, data: bytes | bytearray) -> None:
    """Hand what was read to the connection: bytes of the XML stream, or one
    RFC 7395 message from a :class:`WebSocketClientStream`."""
    if data and isinstance(stream, WebSocketClientStream):
        conn.receive_message(bytes(data))
    else:
        conn.receive_data(data)


@asynccontextmanager
async def open_client(
    jid: str | JID,
    password: str,
    *,
    host: str | None = None,
    port: int | None = None,
    direct_tls: bool = False,
    ssl_context: _tls.TLSContext | None = None,
    require_tls: bool = True,
    allow_plain: bool = True,
    mechanisms: tuple[str, ...] | None = None,
    timeout: float = 30.0,
    stream_management: bool = True,
    resume: SMState | None = None,
    transport: Literal["tcp", "websocket"] = "tcp",
    url: str | None = None,
    login: LoginOptions | None = None,
) -> AsyncIterator[Client]:
    """Connect, negotiate and bind; yield a :class:`Client`; close on exit.

    Args:
        jid: the account, optionally with the resource to ask for.
        host, port: connect here instead of looking up DNS SRV records.
        direct_tls: with ``host``: TLS from the first byte (XEP-0368).
        ssl_context: for verification against a private CA; the default
            verifies against the system's CAs. An
            :func:`openssl_client_context` (pyOpenSSL) instead of an
            :class:`ssl.SSLContext` adds ``tls-exporter`` channel binding
            (RFC 9266: SCRAM-PLUS and FAST ``HT-*-EXPR`` on TLS 1.3 and 1.2;
            TCP only, not with ``transport="websocket"``).
        require_tls: refuse to go on without TLS (the default; turning it
            off only allows servers without TLS, never PLAIN in the clear).
        stream_management: enable XEP-0198 (with resumption) when offered.
        resume: the ``sm_state`` of an earlier client of this account: resume
            its session (XEP-0198 §5) instead of starting a new one.
        transport: ``"websocket"``: XMPP over WebSocket (RFC 7395) at ``url``
            (``wss://host:port/xmpp-websocket``; ``ws://`` has no TLS, so
            ``require_tls`` refuses it), instead of TCP.
        login: SASL2, Bind2 and FAST (:class:`~xmpp_sansio.stream.login_options.LoginOptions`):
            by default SASL2 is used when the server offers it (RFC 6120 SASL
            otherwise), with Bind2 when ``jid`` names no resource; FAST needs
            a ``user_agent_id`` (and a ``fast_token`` from a previous
            :attr:`Client.fast_token` to log in with it).
    """
    account = JID.parse(jid) if isinstance(jid, str) else jid
    ctx = ssl_context or _tls.client_ssl_context()
    if transport == "websocket" and url is None:
        raise ValueError("transport='websocket' needs the url of the endpoint")
    if transport == "websocket" and not isinstance(ctx, ssl.SSLContext):
        raise ValueError("transport='websocket' needs an ssl.SSLContext")
    if transport == "websocket":
        targets = [Target(url or "", 0, False)]
    elif host is not None:
        targets = [Target(host, port or (5223 if direct_tls else 5222), direct_tls)]
    else:
        targets = await resolve_client_targets(account.domain)
    if not targets:
        raise ConnectionFailed(f"{account.domain} offers no XMPP client service")
    config = ClientConfig(
        rng=secrets.token_bytes,
        jid=account,
        password=password,
        require_tls=require_tls,
        allow_plain=allow_plain,
        mechanisms=mechanisms,
        stream_management=stream_management,
        login=login or LoginOptions(),
    )
    last_error: Exception | None = None
    failure = ""
    for target in targets:
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(timeout):
                if transport == "websocket":
                    assert isinstance(ctx, ssl.SSLContext)  # checked above
                    ws, secure = await connect_websocket(target.host, ctx)
                    stream = ws
                    conn = ClientConnection(
                        config,
                        tls_active=secure,
                        sm_state=resume,
                        framing=WebSocketFraming(wrap=ws.frame),
                    )
                else:
                    stream = await trio.open_tcp_stream(target.host, target.port)
                    if target.direct_tls:
                        tls = _tls.client_tls_stream(stream, ctx, account.domain)
                        await tls.do_handshake()
                        stream = tls
                        conn = ClientConnection(
                            config,
                            tls_active=True,
                            tls_info=_tls.client_tls_info(tls),
                            sm_state=resume,
                        )
                    else:
                        conn = ClientConnection(config, sm_state=resume)
                negotiated = await _negotiate(conn, stream, ctx, account.domain)
                stream = negotiated.stream
        except (OSError, trio.TooSlowError, ssl.SSLError, trio.BrokenResourceError) as exc:
            reason = _verify_failure(exc)
            last_error = CertificateError(account.domain, reason) if reason is not None else exc
            failure = f"{target.host}:{target.port}: {_describe(last_error, timeout)}"
            log.info("connecting to %s failed", failure)
            if stream is not None:
                await trio.aclose_forcefully(stream)
            continue
        except XMPPError:
            if stream is not None:  # the stream was closed or failed in XMPP terms
                await _close_cleanly(stream)
            raise
        client = Client(conn, stream, negotiated)
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client._reader)
                try:
                    yield client
                finally:
                    with trio.CancelScope(shield=True):
                        await client.aclose()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The block's own exception, wrapped by the nursery: let it out as
            # it was (as open_persistent_client does).
            if len(group.exceptions) != 1 or isinstance(group.exceptions[0], trio.Cancelled):
                raise
            body_error = group.exceptions[0]
        if body_error is not None:
            raise body_error
        return
    if isinstance(last_error, CertificateError):
        raise last_error
    raise ConnectionFailed(f"could not connect to {account.domain}: {failure}")
