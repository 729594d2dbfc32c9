"""TLS plumbing shared by the server and the client: contexts and channel binding."""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

import trio

from xmpp_sansio.sasl import ChannelBinding, tls_server_end_point, tls_unique
from xmpp_sansio.sasl.channel_binding import TLS_EXPORTER
from xmpp_sansio.stream.connection import TLSInfo

from ._openssl_stream import OpenSSLContext, OpenSSLStream
from ._openssl_stream import TLSContext as TLSContext


def client_ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context (RFC 7590 §3.2, RFC 6125): system CAs or ``cafile``."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_tls_info(certificate_der: bytes | None) -> TLSInfo:
    """TLSInfo for a server whose certificate is ``certificate_der``."""
    return TLSInfo(channel_binding=_binding(certificate_der))


def connection_tls_info(
    server_info: TLSInfo,
    *,
    tls_version: str | None,
    finished: bytes | None,
    exporter: bytes | None = None,
) -> TLSInfo:
    """``server_info`` (from :func:`server_tls_info`) for one connection: plus
    ``tls-exporter`` (RFC 9266 §2) when the TLS backend exports it (pyOpenSSL,
    ``tls_backend = "openssl"``; the ssl module cannot) and ``tls-unique`` from
    its first Finished message where the TLS version defines it (TLS 1.2, not
    1.3: RFC 9266 §1)."""
    more = _connection_bindings(tls_version, finished, exporter)
    if not more:
        return server_info
    return dataclasses.replace(server_info, more_channel_bindings=more)


def client_tls_info(stream: trio.SSLStream[Any] | OpenSSLStream) -> TLSInfo:
    """TLSInfo from the certificate the server presented (``tls-server-end-point``,
    RFC 5929 §4), plus ``tls-unique`` from the first Finished message on TLS
    1.2 (§3; undefined on TLS 1.3, RFC 9266 §1) and, on an
    :class:`OpenSSLStream`, ``tls-exporter`` (RFC 9266 §2; the ssl module
    cannot export keying material: docs/sasl2.md)."""
    der = stream.getpeercert(binary_form=True)
    exporter = (
        stream.get_channel_binding(TLS_EXPORTER) if isinstance(stream, OpenSSLStream) else None
    )
    more = _connection_bindings(
        stream.version(), stream.get_channel_binding("tls-unique"), exporter
    )
    return TLSInfo(channel_binding=_binding(der), more_channel_bindings=more)


def client_tls_stream(
    stream: trio.abc.Stream, ctx: TLSContext, hostname: str
) -> trio.SSLStream[Any] | OpenSSLStream:
    """``stream`` under TLS with ``ctx``'s backend (handshake not yet run)."""
    if isinstance(ctx, OpenSSLContext):
        return OpenSSLStream(stream, ctx, server_hostname=hostname)
    return trio.SSLStream(stream, ctx, server_hostname=hostname)


def _connection_bindings(
    tls_version: str | None, finished: bytes | None, exporter: bytes | None
) -> tuple[ChannelBinding, ...]:
    """The connection's own bindings, strongest first (``tls-exporter``, then
    ``tls-unique``)."""
    unique = tls_unique(finished, tls_version)
    found = [] if exporter is None else [ChannelBinding(TLS_EXPORTER, exporter)]
    if unique is not None:
        found.append(unique)
    return tuple(found)


def _binding(der: bytes | None) -> ChannelBinding | None:
    if not der:
        return None
    try:
        return tls_server_end_point(der)
    except ValueError:
        return None
