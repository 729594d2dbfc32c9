"""TLS plumbing shared by the server and the client: contexts and channel binding."""

from __future__ import annotations

import ssl
from typing import Any

import trio

from xmpp_sansio.sasl import ChannelBinding, tls_server_end_point
from xmpp_sansio.stream.connection import TLSInfo


def client_ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context (RFC 7590 §3.2, RFC 6125): system CAs or ``cafile``."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_tls_info(certificate_der: bytes | None) -> TLSInfo:
    """TLSInfo for a server whose certificate is ``certificate_der``."""
    return TLSInfo(channel_binding=_binding(certificate_der))


def client_tls_info(stream: trio.SSLStream[Any]) -> TLSInfo:
    """TLSInfo from the certificate the server presented (RFC 5929 §4)."""
    der = stream.getpeercert(binary_form=True)
    return TLSInfo(channel_binding=_binding(der))


def _binding(der: bytes | None) -> ChannelBinding | None:
    if not der:
        return None
    try:
        return tls_server_end_point(der)
    except ValueError:
        return None
