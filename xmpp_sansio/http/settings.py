"""What the HTTP listener is told: policies and limits as data (``[http]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_CSP", "JSON_PATH", "WEBSOCKET_PATH", "HTTPSettings"]

#: RFC 7395 §3 leaves the path to the server; XEP-0156 announces it.
WEBSOCKET_PATH: Final = "/xmpp-websocket"
#: The JSON channel (json_channel.py, docs/json-channel.md).
JSON_PATH: Final = "/json"
#: Same-origin content only, never framed by another site (CSP Level 2
#: ``frame-ancestors`` replaces ``X-Frame-Options``).
DEFAULT_CSP: Final = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPSettings:
    """The HTTP listener's policies and limits (docs/web.md).

    Attributes:
        static_root: whether a static file root is served (the I/O layer
            holds the directory; the request handling only decides paths).
        uploads: XEP-0363 uploads are served at ``/upload/`` (PUT and GET).
        allowed_origins: the ``Origin`` values a WebSocket handshake may carry
            (empty: any; a handshake without ``Origin``, from a non-browser
            client, is always let through: XMPP authenticates in the stream,
            no cookie is involved).
        websocket_url: the URL XEP-0156 announces; empty: built from the
            request's ``Host`` and the listener's scheme.
        see_other_uri: if set, every XMPP-over-WebSocket stream is answered
            with ``<close see-other-uri=.../>`` (RFC 7395 §3.6.1).
        websocket_on_plain_http: accept XMPP over WebSocket on a plain ``http``
            listener and treat it as secure (a TLS-terminating proxy in front, or
            loopback use); RFC 7395 §9 expects ``wss``.
        content_security_policy: the ``Content-Security-Policy`` header.
        hsts_max_age: ``Strict-Transport-Security`` max-age on https (0: none).
        max_header_size: bytes of a request line and headers (431 beyond).
        max_body_size: bytes of a request body (413 beyond).
        max_requests_per_connection: keep-alive requests on one connection.
        requests_per_minute_per_ip: requests one address may make (429 beyond).
        request_timeout: seconds a request may take to arrive once begun (408).
        keepalive_timeout: seconds an idle keep-alive connection is kept.
        max_connections: open HTTP connections in total (503 beyond).
        max_connections_per_ip: open HTTP connections from one address (429 beyond).
        bosh: BOSH (XEP-0124/0206) is served at ``/http-bind``.
        chat_page: the browser chat page is served at ``/chat/`` (chat.py).
        chat_domain: the domain the chat page logs in to.
        json_channel: the JSON channel is served at ``/json`` (json_channel.py).
    """

    static_root: bool = False
    uploads: bool = False
    allowed_origins: tuple[str, ...] = ()
    websocket_url: str = ""
    see_other_uri: str = ""
    websocket_on_plain_http: bool = False
    content_security_policy: str = DEFAULT_CSP
    hsts_max_age: int = 31536000
    max_header_size: int = 8192
    max_body_size: int = 1 << 20
    max_requests_per_connection: int = 100
    requests_per_minute_per_ip: int = 600
    request_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    max_connections: int = 1000
    max_connections_per_ip: int = 50
    bosh: bool = True
    chat_page: bool = False
    chat_domain: str = ""
    json_channel: bool = False
