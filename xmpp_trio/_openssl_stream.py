"""TLS through pyOpenSSL, for ``tls-exporter`` channel binding (RFC 9266).

Python's :mod:`ssl` cannot export keying material (RFC 5705), so a connection
made with it has no ``tls-exporter`` binding, the one binding defined on TLS
1.3 (RFC 9266 §3) and the one SCRAM-PLUS and FAST ``HT-*-EXPR`` prefer. This
module runs the same OpenSSL through pyOpenSSL, which exports it:

* :class:`OpenSSLContext`: a client or server context (TLS 1.2 and up; the
  client verifies the chain and the server's name, RFC 6125 §6, as
  :func:`ssl.create_default_context` does). Built by :func:`openssl_client_context`
  and :func:`openssl_server_context`.
* :class:`OpenSSLStream`: a :class:`trio.abc.Stream` over memory BIOs, the
  client's replacement for :class:`trio.SSLStream` (the part of its surface
  the client uses).
* :class:`OpenSSLSocket`: the server's: a :class:`socket.socket` that does
  TLS on its own file descriptor and raises :mod:`ssl`'s exceptions, so
  :class:`xmpp_trio._transport.SocketTransport` drives it as it drives an
  :class:`ssl.SSLSocket` (``context.wrap_socket``).

Both give :meth:`channel_binding` for ``tls-exporter`` (RFC 9266 §2, on TLS
1.2 only with the extended master secret, RFC 7627, §3) and ``tls-unique``
(RFC 5929 §3, TLS 1.2), and the peer's certificate for
``tls-server-end-point``. Errors come out as the stdlib's (``ssl.SSLError``,
``OSError``; the stream wraps them in :class:`trio.BrokenResourceError` as
``trio.SSLStream`` does), so callers catch one set of exceptions.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from OpenSSL._util import ffi, lib  # no public accessor: verify reasons, RFC 7627

from xmpp_sansio.sasl.channel_binding import TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH
from xmpp_sansio.stream.s2s_identity import dns_id_matches

__all__ = [
    "OpenSSLContext",
    "OpenSSLSocket",
    "OpenSSLStream",
    "TLSContext",
    "openssl_client_context",
    "openssl_server_context",
]

#: Python 3.11's default cipher string for TLS 1.2 (``ssl._DEFAULT_CIPHERS``):
#: the same suites whichever backend answers.
_CIPHERS: Final = (
    b"@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
)
_RECEIVE: Final = 65536


def _connection(
    context: OpenSSLContext,
    sock: socket.socket | None,
    server_side: bool,
    server_hostname: str | None,
) -> SSL.Connection:
    """An ``SSL.Connection`` in the accept or connect state, with SNI when
    connecting to a named host (RFC 6066 §3)."""
    conn = SSL.Connection(context.ctx, sock)
    if server_side:
        conn.set_accept_state()
    else:
        conn.set_connect_state()
        if server_hostname:
            conn.set_tlsext_host_name(server_hostname.encode("idna"))
    return conn


class OpenSSLContext:
    """A pyOpenSSL context and what the stdlib's would check beside it:
    ``check_hostname`` on clients. ``ctx`` is the :class:`OpenSSL.SSL.Context`
    (tests pin versions on it: ``ctx.set_max_proto_version(...)``)."""

    def __init__(self, ctx: SSL.Context, *, check_hostname: bool) -> None:
        self.ctx = ctx
        self.check_hostname = check_hostname

    def wrap_socket(
        self,
        sock: socket.socket,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        do_handshake_on_connect: bool = False,
    ) -> OpenSSLSocket:
        """As :meth:`ssl.SSLContext.wrap_socket` (the handshake is always left
        to :meth:`OpenSSLSocket.do_handshake`): ``sock`` is taken over."""
        tls = OpenSSLSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        tls.setblocking(False)
        tls.start(self, server_side=server_side, server_hostname=server_hostname)
        return tls


TLSContext = ssl.SSLContext | OpenSSLContext
"""A TLS context of either backend: the stdlib's or pyOpenSSL's (``tls-exporter``)."""


def openssl_client_context(cafile: str | Path | None = None) -> OpenSSLContext:
    """A verifying client context (RFC 7590 §3.2): the system CAs, or only
    ``cafile``; TLS 1.2 and up; the server's name checked after the handshake."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    ctx.set_cipher_list(_CIPHERS)
    ctx.set_verify(SSL.VERIFY_PEER, _note_verify_error)
    if cafile is None:
        ctx.set_default_verify_paths()
    else:
        ctx.load_verify_locations(str(cafile))
    return OpenSSLContext(ctx, check_hostname=True)


def openssl_server_context(cert: Path, key: Path) -> OpenSSLContext:
    """The server's context from a PEM chain and key, set as
    :func:`xmpp_trio.certs.load_server_ssl_context` sets the stdlib's.
    Raises ``OSError``/``ssl.SSLError`` for unusable files, as that does."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    ctx.set_options(SSL.OP_NO_RENEGOTIATION)  # TLS 1.2: no handshake after the first
    ctx.set_options(SSL.OP_SINGLE_ECDH_USE | SSL.OP_NO_TICKET)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)  # full handshakes: tls-unique stays the client's
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)  # idle sessions hold no record buffers (as _ssl.c)
    ctx.set_cipher_list(_CIPHERS)
    with _as_ssl_errors():
        ctx.use_certificate_chain_file(str(cert))
        ctx.use_privatekey_file(str(key))
        ctx.check_privatekey()
    return OpenSSLContext(ctx, check_hostname=False)


def _note_verify_error(
    conn: SSL.Connection, _cert: object, errno: int, _depth: int, ok: int
) -> bool:
    """The verify callback: OpenSSL's verdict, its reason kept on the stream
    (``verify_message``, as :class:`ssl.SSLCertVerificationError` has it)."""
    if not ok:
        stream = conn.get_app_data()
        if isinstance(stream, OpenSSLStream) and stream.verify_error is None:
            stream.verify_error = _verify_reason(errno)
    return bool(ok)


def _verify_reason(errno: int) -> str:
    """OpenSSL's text for an X509_V_ERR code (``self-signed certificate``)."""
    text = lib.X509_verify_cert_error_string(errno)
    return ffi.string(text).decode() if text != ffi.NULL else f"verify error {errno}"


def _as_ssl_error(exc: SSL.Error) -> OSError:
    """A pyOpenSSL exception as the :mod:`ssl` module raises it (a plain
    function, not a context manager: it sits on the hot path's error branch)."""
    if isinstance(exc, SSL.WantReadError):
        return ssl.SSLWantReadError("read would block")
    if isinstance(exc, SSL.WantWriteError):
        return ssl.SSLWantWriteError("write would block")
    if isinstance(exc, SSL.ZeroReturnError):
        return ssl.SSLZeroReturnError("TLS connection closed (close_notify)")
    if isinstance(exc, SSL.SysCallError):
        code, message = exc.args if len(exc.args) == 2 else (-1, str(exc))
        if code in (-1, 0):  # EOF in violation of the protocol
            return ssl.SSLEOFError(message)
        return OSError(code, message)
    text = str(exc)
    if "certificate verify failed" in text:
        error = ssl.SSLCertVerificationError(text)
        error.verify_message = text
        return error
    return ssl.SSLError(text)


@contextlib.contextmanager
def _as_ssl_errors() -> Iterator[None]:
    """:func:`_as_ssl_error` around a block (off the hot path)."""
    try:
        yield
    except SSL.Error as exc:
        raise _as_ssl_error(exc) from None


def _check_hostname(conn: SSL.Connection, hostname: str) -> None:
    """RFC 6125 §6.4 on the server's certificate: ``hostname`` (or its
    A-label) must match a DNS name of its subjectAltName; a ``*`` only as the
    whole left-most label, matching one label. No common-name fallback (as
    OpenSSL's ``X509_check_host`` with the stdlib's flags)."""
    cert = conn.get_peer_certificate(as_cryptography=True)
    if cert is None:
        raise _name_mismatch(hostname, "no certificate")
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise _name_mismatch(hostname, "no subjectAltName") from None
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        ip = None
    if ip is not None:
        if ip in names.get_values_for_type(x509.IPAddress):
            return
        raise _name_mismatch(hostname, "IP address mismatch")
    wanted = hostname.encode("idna").decode("ascii").lower().rstrip(".")
    if any(dns_id_matches(name, wanted) for name in names.get_values_for_type(x509.DNSName)):
        return
    raise _name_mismatch(hostname, "hostname mismatch")


def _name_mismatch(hostname: str, why: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(f"certificate verify failed: {why} for {hostname!r}")
    error.verify_message = f"{why}, certificate is not valid for {hostname!r}"
    return error


def _channel_binding(conn: SSL.Connection, cb_type: str, server_side: bool) -> bytes | None:
    """``tls-exporter`` or ``tls-unique`` data of an established connection,
    None where the type is undefined for it (RFC 9266 §3, RFC 5929 §3)."""
    version = conn.get_protocol_version_name()
    if cb_type == "tls-exporter":
        if version == "TLSv1.2" and not _extended_master_secret(conn):
            return None  # RFC 9266 §3: undefined on TLS 1.2 without RFC 7627
        if version not in ("TLSv1.2", "TLSv1.3"):
            return None
        return conn.export_keying_material(TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, None)
    if cb_type == "tls-unique":
        if version != "TLSv1.2":
            return None
        # The first Finished of the handshake: the client's, as sessions are
        # never resumed (no cache, no tickets: openssl_server_context; clients never
        # set a session), where it would be the server's.
        return conn.get_peer_finished() if server_side else conn.get_finished()
    raise ValueError(f"{cb_type!r} channel binding type not supported")


def _peer_der(conn: SSL.Connection) -> bytes | None:
    """The peer's certificate, DER (for ``tls-server-end-point``, RFC 5929 §4)."""
    cert = conn.get_peer_certificate(as_cryptography=True)
    return None if cert is None else cert.public_bytes(Encoding.DER)


def _extended_master_secret(conn: SSL.Connection) -> bool:
    """Whether a TLS 1.2 handshake used the extended master secret (RFC 7627),
    through the binding pyOpenSSL is built on (no public accessor)."""
    handle = getattr(conn, "_ssl", None)
    if handle is None or not hasattr(lib, "SSL_get_extms_support"):
        return False
    return bool(lib.SSL_get_extms_support(handle) == 1)


class OpenSSLSocket(socket.socket):
    """A TCP socket doing TLS through pyOpenSSL on its own descriptor, with the
    part of :class:`ssl.SSLSocket` the server's transport uses (non-blocking:
    ``ssl.SSLWantReadError``/``SSLWantWriteError``). Made by
    :meth:`OpenSSLContext.wrap_socket`; ``socket.socket.recv(tls, n)`` still
    reads the raw bytes."""

    _conn: SSL.Connection
    _server_side: bool

    def start(
        self, context: OpenSSLContext, *, server_side: bool, server_hostname: str | None
    ) -> None:
        self._conn = _connection(context, self, server_side, server_hostname)
        self._server_side = server_side

    def do_handshake(self) -> None:
        with _as_ssl_errors():
            self._conn.do_handshake()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        try:
            return self._conn.recv(bufsize)
        except SSL.Error as exc:
            raise _as_ssl_error(exc) from None

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:  # type: ignore[override]
        try:
            return self._conn.send(data)
        except SSL.Error as exc:
            raise _as_ssl_error(exc) from None

    def version(self) -> str | None:
        return self._conn.get_protocol_version_name()

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        return _channel_binding(self._conn, cb_type, self._server_side)

    def getpeercert(self, binary_form: bool = True) -> bytes | None:
        return _peer_der(self._conn)

    def unwrap(self) -> None:
        """Send ``close_notify`` if the socket takes it now (never waits)."""
        with contextlib.suppress(SSL.Error):
            self._conn.shutdown()


class OpenSSLStream(trio.abc.Stream):
    """TLS over any Trio stream through pyOpenSSL and memory BIOs: what the
    client uses of :class:`trio.SSLStream` (``do_handshake``, ``send_all``,
    ``receive_some``, ``aclose``, ``getpeercert``, ``version``,
    ``get_channel_binding``), plus ``tls-exporter``. One receiver and any
    number of senders at a time: after the handshake a write never needs
    input (renegotiation is refused, ``OP_NO_RENEGOTIATION``; TLS 1.3 has
    none), so only :meth:`receive_some` reads the transport."""

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        context: OpenSSLContext,
        *,
        server_hostname: str | None = None,
        server_side: bool = False,
    ) -> None:
        self.transport_stream = transport_stream
        self._context = context
        self._hostname = server_hostname
        self._server_side = server_side
        conn = _connection(context, None, server_side, server_hostname)
        conn.set_app_data(self)
        self._conn = conn
        #: why the server's certificate was refused, once it was
        self.verify_error: str | None = None
        self._send_lock = trio.Lock()
        self._handshake_lock = trio.Lock()
        self._handshaken = False
        self._closed = False

    # -- moving records ---------------------------------------------------------------

    async def _flush(self) -> None:
        """Write what OpenSSL produced, in order (taken under the lock)."""
        async with self._send_lock:
            out = bytearray()
            while True:
                try:
                    out += self._conn.bio_read(_RECEIVE)
                except SSL.WantReadError:
                    break
            if out:
                await self.transport_stream.send_all(bytes(out))

    async def _feed(self) -> None:
        """Hand the peer's next bytes to OpenSSL (the end of the stream too)."""
        data = await self.transport_stream.receive_some(_RECEIVE)
        if data:
            self._conn.bio_write(data)
        else:
            self._conn.bio_shutdown()

    async def _call(self, fn: object, *args: object) -> object:
        """Run a pyOpenSSL call until it stops asking for input; errors as
        :class:`trio.BrokenResourceError` from the :mod:`ssl` one."""
        if self._closed:
            raise trio.ClosedResourceError("TLS stream closed")
        while True:
            try:
                with _as_ssl_errors():
                    result = fn(*args)  # type: ignore[operator]
            except ssl.SSLWantReadError:
                await self._flush()
                await self._feed()
                continue
            except ssl.SSLZeroReturnError:
                raise
            except (ssl.SSLError, OSError) as exc:
                if isinstance(exc, ssl.SSLCertVerificationError) and self.verify_error:
                    exc.verify_message = self.verify_error
                await self._quiet_flush()  # the alert, if any
                raise trio.BrokenResourceError(str(exc)) from exc
            await self._flush()
            return result

    async def _quiet_flush(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._flush()

    # -- the Stream API ---------------------------------------------------------------

    async def do_handshake(self) -> None:
        """Run the handshake (once); then, on a client, check the server's name."""
        async with self._handshake_lock:
            if self._handshaken:
                await trio.lowlevel.checkpoint()
                return
            await self._call(self._conn.do_handshake)
            if not self._server_side and self._context.check_hostname and self._hostname:
                try:
                    _check_hostname(self._conn, self._hostname)
                except ssl.SSLCertVerificationError as exc:
                    with contextlib.suppress(SSL.Error):
                        self._conn.shutdown()
                    await self._quiet_flush()
                    raise trio.BrokenResourceError(str(exc)) from exc
            self._handshaken = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.do_handshake()
        if data:
            await self._call(self._conn.sendall, bytes(data))
        else:
            await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await self.do_handshake()
        try:
            data = await self._call(self._conn.recv, max_bytes or _RECEIVE)
        except ssl.SSLZeroReturnError:  # close_notify: a clean end
            return b""
        assert isinstance(data, bytes)
        return data

    async def aclose(self) -> None:
        """Send ``close_notify`` (not waiting for the peer's) and close."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._handshaken:
                with contextlib.suppress(SSL.Error):
                    self._conn.shutdown()
                with trio.move_on_after(1):
                    await self._quiet_flush()
        finally:
            await self.transport_stream.aclose()

    # -- what the connection is -------------------------------------------------------

    def version(self) -> str | None:
        return self._conn.get_protocol_version_name() if self._handshaken else None

    def getpeercert(self, binary_form: bool = True) -> bytes | None:
        return _peer_der(self._conn)

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        """``tls-exporter`` (RFC 9266 §2) or ``tls-unique`` (RFC 5929 §3)
        data; None where undefined for this connection."""
        if not self._handshaken:
            return None
        return _channel_binding(self._conn, cb_type, self._server_side)
