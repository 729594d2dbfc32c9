"""The HTTP listener's request handling, sans I/O, on h11 (RFC 9110/9112).

Theory of operation
-------------------
:class:`HTTPServerConnection` owns one h11 connection. The I/O layer feeds
it bytes (:meth:`~HTTPServerConnection.receive_data`), writes
:meth:`~HTTPServerConnection.data_to_send`, asks :meth:`next_event` what else
is wanted of it, and closes once :attr:`should_close` is set. Everything is
decided here: routing by path, the security headers on every response, the
limits (header and body size, requests per connection and per address) and
the deadlines against slow clients (:attr:`deadline`, enforced by the I/O
layer through :meth:`handle_timer`).

Routes: ``/xmpp-websocket`` (RFC 7395, :class:`WebSocketAccepted` once the
101 is queued), ``/.well-known/host-meta`` and ``host-meta.json`` (XEP-0156
§3), and, with a static root, any other path as a file (:class:`FileRequested`:
the I/O layer reads it and answers :meth:`send_file` or :meth:`not_found`).
Statuses: 400 bad request or path traversal, 403 origin, 404, 405 method,
408 slow request, 413 body, 426 not a WebSocket upgrade, 429 rate, 431
headers, 503 connections (:func:`refusal`, before any request is read).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote

import h11

from .bosh import BOSH_PATH
from .chat import CHAT_CSP, CHAT_PREFIX, config_script, page
from .json_channel import SUBPROTOCOL as JSON_SUBPROTOCOL
from .limits import RequestRateLimiter
from .settings import JSON_PATH, WEBSOCKET_PATH, HTTPSettings
from .websocket import SUBPROTOCOL, HandshakeRefusal, check_handshake

__all__ = [
    "BoshRequested",
    "DownloadRequested",
    "FileRequested",
    "HTTPEvent",
    "HTTPServerConnection",
    "UploadReceived",
    "UploadRequested",
    "WebSocketAccepted",
    "content_type",
    "refusal",
]

_REASONS: Final = {
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    411: b"Length Required",
    413: b"Content Too Large",
    426: b"Upgrade Required",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "json": "application/json",
    "map": "application/json",
    "xml": "application/xml",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "ico": "image/x-icon",
    "wasm": "application/wasm",
    "woff2": "font/woff2",
}
_HOST: Final = re.compile(r"^[A-Za-z0-9.\-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")
_SEGMENT_BAD: Final = re.compile(r"[\x00-\x1f\x7f\\]")
_HOST_META: Final = "/.well-known/host-meta"
#: a user's uploaded file may be anything: run nothing of it (CSP Level 2 sandbox)
_SANDBOX: Final = b"default-src 'none'; sandbox"
_XRD_NS: Final = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
_ALT_WS: Final = "urn:xmpp:alt-connections:websocket"  # XEP-0156 §3


def content_type(name: str) -> str:
    """The media type served for a file name (by its extension)."""
    return _TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def refusal(status: int) -> bytes:
    """A complete response closing a connection over a connection limit,
    written before any request is read (503 in total, 429 per address)."""
    body = _REASONS[status] + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s"
    ) % (status, _REASONS[status], len(body), body)


@dataclass(frozen=True, slots=True)
class FileRequested:
    """Serve the file at ``parts`` under the static root (already checked: no
    ``..``, no empty or hidden segment); answer :meth:`HTTPServerConnection.send_file`
    or :meth:`HTTPServerConnection.not_found`."""

    parts: tuple[str, ...]
    head: bool
    #: which directory: "static" (``static_root``) or "chat" (the web client's
    #: assets, ``xmpp_trio.web_assets``)
    root: str = "static"


@dataclass(frozen=True, slots=True)
class UploadRequested:
    """A PUT to ``/upload/<slot>/<filename>`` (XEP-0363 §5), before its body:
    check it (:func:`xmpp_sansio.server.upload.verify` and the slot's record),
    then :meth:`HTTPServerConnection.accept_upload` or
    :meth:`HTTPServerConnection.refuse`."""

    slot: str
    filename: str
    size: int
    content_type: str
    expires: int
    signature: str


@dataclass(frozen=True, slots=True)
class UploadReceived:
    """The accepted upload's whole body: store it, then
    :meth:`HTTPServerConnection.upload_stored` or :meth:`HTTPServerConnection.refuse`."""

    slot: str
    body: bytes


@dataclass(frozen=True, slots=True)
class DownloadRequested:
    """A GET or HEAD of ``/upload/<slot>/<filename>``: answer
    :meth:`HTTPServerConnection.send_file` (``download=True``) or
    :meth:`HTTPServerConnection.not_found`."""

    slot: str
    filename: str
    head: bool


@dataclass(frozen=True, slots=True)
class BoshRequested:
    """A ``POST /http-bind`` (XEP-0124 §4) with its whole body: answer
    :meth:`HTTPServerConnection.send_bosh` (when the session has an answer)."""

    body: bytes


@dataclass(frozen=True, slots=True)
class WebSocketAccepted:
    """The 101 answer (RFC 6455 §4.2.2) is queued: write it, then speak
    WebSocket with ``trailing_data`` as the first bytes read."""

    trailing_data: bytes
    origin: str | None
    #: the JSON channel (json_channel.py) rather than RFC 7395 XML
    json: bool = False


HTTPEvent = (
    FileRequested
    | WebSocketAccepted
    | UploadRequested
    | UploadReceived
    | DownloadRequested
    | BoshRequested
)


class HTTPServerConnection:
    """One HTTP/1.1 connection, server side.

    Args:
        settings: policies and limits.
        https: the listener is TLS (HSTS is sent, host-meta names ``wss``).
        address: the peer's address, for the per-address rate limit.
        limiter: the listener's shared request rate limiter.
        now: the current time (the first request's deadline starts here).
    """

    def __init__(
        self,
        settings: HTTPSettings,
        *,
        https: bool,
        address: str,
        limiter: RequestRateLimiter,
        now: float,
    ) -> None:
        self._settings = settings
        self._https = https
        self._address = address
        self._limiter = limiter
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=settings.max_header_size)
        self._out: list[bytes] = []
        self._requests = 0
        self._body = 0
        self._request: h11.Request | None = None
        self._upload: UploadRequested | None = None  # the PUT under way
        self._upload_body: bytearray | None = None  # its body, once accepted
        self._bosh_body: bytearray | None = None  # a POST to /http-bind under way
        self._started = False  # bytes of the current request have arrived
        self._close = False
        self._now = now
        self.should_close = False
        #: when the I/O layer calls :meth:`handle_timer` (None: no deadline)
        self.deadline: float | None = now + settings.request_timeout
        self._headers = self._security_headers()

    # -- I/O -----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read (``b""`` at end of file)."""
        if self.should_close:
            return
        if data and not self._started:
            self._started = True
            self.deadline = now + self._settings.request_timeout
        self._now = now
        self._h11.receive_data(data)

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def handle_timer(self, now: float) -> None:
        """The deadline passed: a request that began too long ago gets 408
        (slowloris, RFC 9110 §15.5.9); an idle connection is closed."""
        if self.deadline is None or now < self.deadline or self.should_close:
            return
        self._now = now
        if self._started:
            self._respond(408, b"request timeout\n", close=True)
        self.should_close = True

    def next_event(self) -> HTTPEvent | None:
        """Process what was fed; return what the I/O layer must do, or None
        (more input needed, or :attr:`should_close`)."""
        while not self.should_close:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint if exc.error_status_hint in _REASONS else 400
                self._fail(status, str(exc))
                return None
            if event is h11.NEED_DATA:
                return None
            if event is h11.PAUSED:
                return None  # a response is pending (or the connection switches)
            if isinstance(event, h11.ConnectionClosed):
                self.should_close = True
                return None
            if isinstance(event, h11.Request):
                started = self._begin(event)
                if started is not None:
                    return started
            elif isinstance(event, h11.Data):
                self._body += len(event.data)
                if self._upload_body is not None:
                    self._upload_body += event.data
                elif self._body > self._settings.max_body_size:
                    self._fail(413, "request body too large")
                elif self._bosh_body is not None:
                    self._bosh_body += event.data
            elif isinstance(event, h11.EndOfMessage) and self._upload is not None:
                upload, body = self._upload, self._upload_body
                self._upload = self._upload_body = None
                if body is not None:
                    return UploadReceived(upload.slot, bytes(body))
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                result = self._dispatch(self._request)
                if result is not None:
                    return result
        return None

    # -- answers to events ---------------------------------------------------

    def send_file(
        self, body: bytes, media_type: str, *, head: bool, download: bool = False
    ) -> None:
        """Answer a :class:`FileRequested` (or, ``download``, a
        :class:`DownloadRequested`: a user's file, sandboxed by its CSP and
        offered as an attachment unless it is an image, audio or video)."""
        if not download:
            self._respond(200, body, media_type=media_type, head=head)
            return
        inline = media_type.split("/", 1)[0] in ("image", "audio", "video")
        extra = [(b"content-disposition", b"inline" if inline else b"attachment")]
        self._respond(200, body, media_type=media_type, head=head, extra=extra, csp=_SANDBOX)

    def accept_upload(self) -> None:
        """Take the body of the :class:`UploadRequested` (its size was signed)."""
        self._upload_body = bytearray()

    def upload_stored(self) -> None:
        """The upload is stored: 201 Created (XEP-0363 §5)."""
        self._respond(201, b"created\n")

    def refuse(self, status: int, reason: str) -> None:
        """Refuse the request under way with ``status`` and close."""
        self._upload = self._upload_body = None
        self._fail(status, reason)

    def send_bosh(self, body: bytes, now: float) -> None:
        """Answer a :class:`BoshRequested` (XEP-0124 §4: ``text/xml``)."""
        self._now = now
        self._respond(200, body, media_type="text/xml; charset=utf-8", extra=self._cors())

    def _cors(self) -> list[tuple[bytes, bytes]]:
        """XEP-0124 §4 and Fetch: a page of another origin (listed in
        ``allowed_origins``, or any without a list) may post to BOSH."""
        origin = _header(self._request, b"origin") if self._request is not None else None
        allowed = self._settings.allowed_origins
        if origin is None or (allowed and origin not in allowed):
            return []
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", b"content-type"),
            (b"vary", b"origin"),
        ]

    def not_found(self, *, head: bool = False) -> None:
        self._respond(404, b"not found\n", head=head)

    # -- internals -------------------------------------------------------------

    def _security_headers(self) -> list[tuple[bytes, bytes]]:
        s = self._settings
        headers = [
            (b"content-security-policy", s.content_security_policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if self._https and s.hsts_max_age > 0:
            headers.append((b"strict-transport-security", b"max-age=%d" % s.hsts_max_age))
        return headers

    def _begin(self, request: h11.Request) -> UploadRequested | None:
        self._request = request
        self._body = 0
        self._requests += 1
        now = self._now
        size = len(request.target) + sum(len(k) + len(v) + 4 for k, v in request.headers)
        if size > self._settings.max_header_size:  # h11 bounds only a head in pieces
            self._fail(431, "request header fields too large")
            return None
        if not self._limiter.allow(self._address, now):
            self._fail(429, "too many requests", retry_after=True)
            return None
        if self._requests >= self._settings.max_requests_per_connection:
            self._close = True
        length = _header(request, b"content-length")
        if request.method == b"PUT" and self._settings.uploads:
            return self._put(request, length)
        self._bosh_body = bytearray() if request.method == b"POST" else None
        if length is not None and length.isdigit() and int(length) > self._settings.max_body_size:
            self._fail(413, "request body too large")
        return None

    def _put(self, request: h11.Request, length: str | None) -> UploadRequested | None:
        """XEP-0363 §5: ``PUT /upload/<slot>/<filename>?e=<expires>&s=<signature>``."""
        target = request.target.decode("ascii", "replace")
        path, _, query = target.partition("?")
        parts = _static_parts(path)
        if parts is None or len(parts) != 3 or parts[0] != "upload":
            self._fail(400 if parts is None else 404, "not an upload URL")
            return None
        if length is None or not length.isdigit():
            self._fail(411, "uploads need a Content-Length")
            return None
        params = dict(parse_qsl(query))
        expires = params.get("e", "")
        self._upload = UploadRequested(
            slot=parts[1],
            filename=parts[2],
            size=int(length),
            content_type=_header(request, b"content-type") or "application/octet-stream",
            expires=int(expires) if expires.isdigit() else 0,
            signature=params.get("s", ""),
        )
        return self._upload

    def _dispatch(self, request: h11.Request) -> HTTPEvent | None:
        method = request.method
        target = request.target.decode("ascii", "replace")
        path = target.split("?", 1)[0].split("#", 1)[0]
        if path == WEBSOCKET_PATH:
            return self._websocket(request)
        if path == JSON_PATH and self._settings.json_channel:
            return self._websocket(request, json_=True)
        if path == BOSH_PATH and self._settings.bosh:
            return self._bosh(request)
        if method not in (b"GET", b"HEAD"):
            allow = b"GET, HEAD, PUT" if self._settings.uploads else b"GET, HEAD"
            self._respond(405, b"method not allowed\n", extra=[(b"allow", allow)])
            return None
        head = method == b"HEAD"
        if self._settings.uploads and path.startswith("/upload/"):
            parts = _static_parts(path)
            if parts is None or len(parts) != 3:
                self._respond(400 if parts is None else 404, b"not an upload URL\n", head=head)
                return None
            return DownloadRequested(parts[1], parts[2], head)
        if path in (_HOST_META, _HOST_META + ".json"):
            self._host_meta(request, json_=path.endswith(".json"), head=head)
            return None
        if self._settings.chat_page and path.startswith(CHAT_PREFIX):
            return self._chat(path[len(CHAT_PREFIX) :], head)
        if not self._settings.static_root:
            self._respond(404, b"not found\n", head=head)
            return None
        parts = _static_parts(path)
        if parts is None:
            self._respond(400, b"bad path\n", head=head)
            return None
        return FileRequested(parts, head)

    def _websocket(self, request: h11.Request, *, json_: bool = False) -> WebSocketAccepted | None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers
        }
        if request.method != b"GET":
            self._respond(405, b"method not allowed\n", extra=[(b"allow", b"GET")])
            return None
        try:
            accept, subprotocol = check_handshake(
                headers,
                allowed_origins=self._settings.allowed_origins,
                subprotocol=JSON_SUBPROTOCOL if json_ else SUBPROTOCOL,
            )
            if not self._https and not self._settings.websocket_on_plain_http:
                raise HandshakeRefusal(
                    403, "XMPP over WebSocket needs https here (RFC 7395 §9: wss)"
                )
        except HandshakeRefusal as refused:
            extra = [(k.encode(), v.encode()) for k, v in refused.headers]
            self._respond(refused.status, refused.reason.encode() + b"\n", extra=extra)
            return None
        self._out.append(
            self._h11.send(
                h11.InformationalResponse(
                    status_code=101,
                    headers=[
                        (b"upgrade", b"websocket"),
                        (b"connection", b"Upgrade"),
                        (b"sec-websocket-accept", accept.encode()),
                        (b"sec-websocket-protocol", subprotocol.encode()),
                    ],
                )
            )
            or b""
        )
        self.deadline = None
        trailing, _closed = self._h11.trailing_data
        return WebSocketAccepted(trailing, headers.get("origin"), json_)

    def _chat(self, rest: str, head: bool) -> FileRequested | None:
        """The browser chat page (chat.py): the page, its configuration, and
        the web client's files (read by the I/O layer)."""
        if rest in ("", "index.html"):
            media = "text/html; charset=utf-8"
            self._respond(200, page(), media_type=media, head=head, csp=CHAT_CSP.encode())
            return None
        if rest == "config.js":
            script = config_script(self._settings.chat_domain)
            self._respond(200, script, media_type=content_type(rest), head=head)
            return None
        parts = _static_parts("/" + rest.removeprefix("converse/"))
        if not rest.startswith("converse/") or parts is None:
            self._respond(404, b"not found\n", head=head)
            return None
        return FileRequested(parts, head, root="chat")

    def _bosh(self, request: h11.Request) -> BoshRequested | None:
        """XEP-0124 §4: ``POST`` only (``OPTIONS``: a CORS preflight); on
        plain http as WebSocket is (``websocket_on_plain_http``, XEP-0206 §7)."""
        if request.method == b"OPTIONS":
            self._respond(200, b"", extra=self._cors())
            return None
        if request.method != b"POST":
            self._respond(405, b"method not allowed\n", extra=[(b"allow", b"POST, OPTIONS")])
            return None
        if not self._https and not self._settings.websocket_on_plain_http:
            self._respond(403, b"BOSH needs https here\n")
            return None
        body, self._bosh_body = bytes(self._bosh_body or b""), None
        return BoshRequested(body)

    def _host_meta(self, request: h11.Request, *, json_: bool, head: bool) -> None:
        """XEP-0156 §3: the WebSocket endpoint, as XRD or JRD (RFC 6415)."""
        url = self._settings.websocket_url
        if not url:
            host = (_header(request, b"host") or "").strip()
            if not _HOST.fullmatch(host):
                self._respond(400, b"bad Host header\n", head=head)
                return
            url = f"{'wss' if self._https else 'ws'}://{host}{WEBSOCKET_PATH}"
        if json_:
            body = json.dumps({"links": [{"rel": _ALT_WS, "href": url}]}).encode()
            media = "application/json"
        else:
            href = url.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")
            body = (
                f"<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='{_XRD_NS}'>\n"
                f"  <Link rel='{_ALT_WS}' href='{href}'/>\n</XRD>\n"
            ).encode()
            media = "application/xrd+xml; charset=utf-8"
        cors = [(b"access-control-allow-origin", b"*")]  # XEP-0156 §3.2
        self._respond(200, body, media_type=media, head=head, extra=cors)

    def _fail(self, status: int, reason: str, *, retry_after: bool = False) -> None:
        extra = [(b"retry-after", b"60")] if retry_after else []
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._respond(status, reason.encode() + b"\n", close=True, extra=extra)
        self.should_close = True

    def _respond(
        self,
        status: int,
        body: bytes,
        *,
        media_type: str = "text/plain; charset=utf-8",
        head: bool = False,
        close: bool = False,
        extra: list[tuple[bytes, bytes]] | None = None,
        csp: bytes | None = None,
    ) -> None:
        close = close or self._close or (status >= 400 and self._body > 0)
        security = self._headers
        if csp is not None:
            security = [(b"content-security-policy", csp), *security[1:]]
        headers = [
            *security,
            (b"content-type", media_type.encode()),
            (b"content-length", b"%d" % len(body)),
            *(extra or []),
        ]
        if close:
            headers.append((b"connection", b"close"))
        h = self._h11
        try:
            if h.their_state is h11.IDLE and h.our_state is h11.IDLE:
                # h11 answers only a request it parsed: a bad head gets raw bytes.
                self._out.append(_raw(status, headers, body))
                self.should_close = True
                return
            self._out.append(h.send(h11.Response(status_code=status, headers=headers)) or b"")
            if body and not head:
                self._out.append(h.send(h11.Data(data=body)) or b"")
            self._out.append(h.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            self.should_close = True
            return
        self._request = None
        if close or h.our_state is not h11.DONE:
            self.should_close = True
            return
        if h.their_state is h11.DONE:
            h.start_next_cycle()
            self._started = False
            self.deadline = self._now + self._settings.keepalive_timeout
        else:  # the body is still coming: do not read it, close
            self.should_close = True


def _raw(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Error"))]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _header(request: h11.Request, name: bytes) -> str | None:
    for key, value in request.headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _static_parts(path: str) -> tuple[str, ...] | None:
    """The path's segments under the static root, or None for a traversal
    attempt (``..``, ``.``, a hidden or empty segment, a backslash, a control
    character, an encoded slash) or a segment whose percent-encoding is not
    UTF-8 (RFC 3986 §2.5); ``/`` and ``dir/`` mean ``index.html``."""
    if not path.startswith("/"):
        return None
    raw = path[1:].split("/")
    if raw[-1] == "":
        raw[-1] = "index.html"
    parts: list[str] = []
    for segment in raw:
        try:
            name = unquote(segment, errors="strict") if "%" in segment else segment
        except UnicodeDecodeError:
            return None
        if not name or name.startswith(".") or "/" in name or _SEGMENT_BAD.search(name):
            return None
        parts.append(name)
    return tuple(parts)
