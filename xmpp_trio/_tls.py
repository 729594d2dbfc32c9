"""TLS plumbing shared by the server and the client: contexts and channel binding."""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

import trio

from xmpp_sansio.sasl import ChannelBinding, tls_server_end_point, tls_unique
from xmpp_sansio.stream.connection import TLSInfo


def client_ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context (RFC 7590 §3.2, RFC 6125): system CAs or ``cafile``."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_tls_info(certificate_der: bytes | None) -> TLSInfo:
    """TLSInfo for a server whose certificate is ``certificate_der``."""
    return TLSInfo(channel_binding=_binding(certificate_der))


def connection_tls_info(
    server_info: TLSInfo, *, tls_version: str | None, finished: bytes | None
) -> TLSInfo:
    """``server_info`` (from :func:`server_tls_info`) for one connection: plus
    ``tls-unique`` from its first Finished message where the TLS version defines
    it (TLS 1.2, not 1.3: RFC 9266 §1). ``tls-exporter`` is never offered: the
    ssl module cannot export keying material (RFC 9266 §2)."""
    binding = tls_unique(finished, tls_version)
    if binding is None:
        return server_info
    return dataclasses.replace(server_info, more_channel_bindings=(binding,))


def client_tls_info(stream: trio.SSLStream[Any]) -> TLSInfo:
    """TLSInfo from the certificate the server presented (``tls-server-end-point``,
    RFC 5929 §4), plus ``tls-unique`` from the first Finished message on TLS
    1.2 (§3; undefined on TLS 1.3, RFC 9266 §1). No ``tls-exporter``: the ssl
    module cannot export keying material (RFC 9266 §2; docs/sasl2.md)."""
    der = stream.getpeercert(binary_form=True)
    unique = tls_unique(stream.get_channel_binding("tls-unique"), stream.version())
    more = () if unique is None else (unique,)
    return TLSInfo(channel_binding=_binding(der), more_channel_bindings=more)


def _binding(der: bytes | None) -> ChannelBinding | None:
    if not der:
        return None
    try:
        return tls_server_end_point(der)
    except ValueError:
        return None
