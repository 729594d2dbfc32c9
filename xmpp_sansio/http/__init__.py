"""The HTTP listener, sans I/O: request handling on h11 (server.py), XMPP
over WebSocket frames on wsproto (websocket.py, RFC 7395), XEP-0156
discovery, limits (limits.py) and settings (settings.py). docs/web.md."""

from .bosh import BOSH_PATH, BoshError, BoshSession, BoshSettings
from .limits import RequestRateLimiter
from .server import (
    BoshRequested,
    DownloadRequested,
    FileRequested,
    HTTPEvent,
    HTTPServerConnection,
    UploadReceived,
    UploadRequested,
    WebSocketAccepted,
    content_type,
    refusal,
)
from .settings import DEFAULT_CSP, WEBSOCKET_PATH, HTTPSettings
from .websocket import SUBPROTOCOL, WebSocketStream, see_other_messages, text_frame

__all__ = [
    "BOSH_PATH",
    "DEFAULT_CSP",
    "SUBPROTOCOL",
    "WEBSOCKET_PATH",
    "BoshError",
    "BoshRequested",
    "BoshSession",
    "BoshSettings",
    "DownloadRequested",
    "FileRequested",
    "HTTPEvent",
    "HTTPServerConnection",
    "HTTPSettings",
    "RequestRateLimiter",
    "UploadReceived",
    "UploadRequested",
    "WebSocketAccepted",
    "WebSocketStream",
    "content_type",
    "refusal",
    "see_other_messages",
    "text_frame",
]
