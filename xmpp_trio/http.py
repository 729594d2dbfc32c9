"""The HTTP listeners (``[[listeners]] kind = "http"`` / ``"https"``) bound
with Trio: XMPP over WebSocket (RFC 7395), XEP-0156 discovery and a static
file root. docs/web.md.

Everything about a request is decided by
:class:`xmpp_sansio.http.HTTPServerConnection`; this module reads and writes
the socket, enforces its deadlines (slow clients), counts connections, reads
static files, and hands an accepted WebSocket to the XMPP server as one more
:class:`~xmpp_trio._transport.Transport` (:class:`WebSocketTransport` with
the :class:`~xmpp_sansio.stream.framing.WebSocketFraming`): the same
negotiation, SASL, stream management and limits as on TCP.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Protocol

import trio

from xmpp_sansio.http import (
    BoshRequested,
    BoshSettings,
    FileRequested,
    HTTPServerConnection,
    HTTPSettings,
    RequestRateLimiter,
    WebSocketAccepted,
    WebSocketStream,
    content_type,
    refusal,
    see_other_messages,
    text_frame,
)
from xmpp_sansio.http.json_channel import JsonFraming
from xmpp_sansio.stream.framing import Framing, WebSocketFraming

from ._openssl_stream import TLSContext
from ._session import TRANSPORT_ERRORS
from ._transport import SocketTransport, Transport, WebSocketTransport
from .bosh import BoshService
from .config import ServerConfig
from .http_upload import UploadFiles
from .limits import ConnectionCounter, peer_address
from .services import ServerServices
from .web_assets import assets_dir


class _Bound(Protocol):
    """A bound listener (``xmpp_trio.server.BoundListener``)."""

    @property
    def kind(self) -> str: ...
    @property
    def port(self) -> int: ...


class _Server(Protocol):
    """What the listener uses of :class:`~xmpp_trio.server.XMPPServer`."""

    config: ServerConfig
    ssl_context: TLSContext
    services: ServerServices

    async def serve(
        self, transport: Transport, *, direct_tls: bool = False, framing: Framing | None = None
    ) -> None: ...


__all__ = ["HTTPService"]

log = logging.getLogger("xmpp_trio.http")

_READ = 65536
#: the largest static file served (read whole; a static root is small)
MAX_STATIC_FILE = 64 << 20


class HTTPService:
    """What the http and https listeners of one server share: the settings,
    the request rate limiter and the connection counts."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        cfg = server.config.http
        self.root = cfg.static_root.resolve() if cfg.static_root is not None else None
        # The policies are the [http] keys of the same names (config.HTTPConfig).
        shared = {
            name: getattr(cfg, name)
            for name in HTTPSettings.__dataclass_fields__
            if name not in ("static_root", "uploads", "chat_domain")
        }
        #: the chat page's web client (xmpp-trio web-assets)
        self.chat_root = assets_dir(server.config.data_dir).resolve()
        self.settings = HTTPSettings(
            chat_domain=server.config.domains[0],
            static_root=self.root is not None,
            uploads=server.services.upload is not None,
            **shared,
        )
        upload = server.services.upload
        #: XEP-0363 PUT and GET, with [http] upload (xmpp_trio/http_upload.py)
        self.uploads = (
            UploadFiles(upload, server.services.upload_storage, server.config.data_dir)
            if upload is not None
            else None
        )
        #: XEP-0124/0206 at /http-bind (xmpp_trio/bosh.py)
        self.bosh = BoshService(
            server,
            BoshSettings(
                max_wait=cfg.bosh_max_wait,
                max_hold=cfg.bosh_max_hold,
                inactivity=cfg.bosh_inactivity,
                polling=cfg.bosh_polling,
                max_pause=cfg.bosh_max_pause,
                max_sessions=cfg.bosh_max_sessions,
            ),
            cfg.max_body_size,
        )
        self.limiter = RequestRateLimiter(cfg.requests_per_minute_per_ip)
        self.connections = ConnectionCounter(cfg.max_connections, cfg.max_connections_per_ip)

    def start(self, bound: Sequence[_Bound], nursery: trio.Nursery) -> None:
        """Once the listeners are bound: the upload URL defaults to the first
        https listener (``https://<first domain>:<port>``); expiry starts.
        BOSH sessions run in ``nursery``."""
        self.bosh.nursery = nursery
        if self.uploads is None:
            return
        service = self.uploads.service
        if not service.base_url:
            https = [b for b in bound if b.kind == "https"]
            if https:
                service.base_url = f"https://{self.server.config.domains[0]}:{https[0].port}"
            else:
                log.warning("upload: no https listener and no [http] upload_url")
        nursery.start_soon(self.uploads.run_expiry)

    def handler(self, kind: str) -> Callable[[trio.SocketStream], Awaitable[None]] | None:
        """The accept handler of an ``http``/``https`` listener (None for other kinds)."""
        if kind not in ("http", "https"):
            return None

        async def handle(stream: trio.SocketStream) -> None:
            await self.serve(SocketTransport.from_trio(stream), https=kind == "https")

        return handle

    async def serve(self, transport: Transport, *, https: bool) -> None:
        """Serve one accepted connection: HTTP requests, then, after an
        upgrade, an XMPP stream over WebSocket."""
        address = peer_address(transport.peer)
        limit = self.connections.refusal(address)
        if limit is not None:
            log.warning("http: connection from %s refused (%s limit)", transport.peer, limit)
            with trio.move_on_after(self.settings.request_timeout), suppress(*TRANSPORT_ERRORS):
                await transport.send_all(refusal(503 if limit == "total" else 429))
            transport.close()
            return
        self.connections.add(address)
        counted = True
        try:
            accepted = await self._serve_http(transport, https=https, address=address)
            if accepted is not None:
                # An XMPP stream now: the XMPP connection limits count it instead.
                self.connections.remove(address)
                counted = False
                await self._serve_websocket(transport, accepted)
        except TRANSPORT_ERRORS as exc:
            log.debug("http: %s: transport ended: %r", transport.peer, exc)
        except Exception:  # a bug costs this connection, never the listener
            log.exception("http: %s: internal error", transport.peer)
        finally:
            if counted:
                self.connections.remove(address)
            transport.close()

    async def _serve_http(
        self, transport: Transport, *, https: bool, address: str
    ) -> WebSocketAccepted | None:
        settings = self.settings
        if https:
            with trio.move_on_after(settings.request_timeout) as scope:
                await transport.start_tls(self.server.ssl_context, server_side=True)
            if scope.cancelled_caught:
                return None
        conn = HTTPServerConnection(
            settings,
            https=https,
            address=address,
            limiter=self.limiter,
            now=trio.current_time(),
        )
        while not conn.should_close:
            deadline = conn.deadline
            data: bytes | None = None
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                try:
                    data = await transport.receive_some(_READ)
                except TRANSPORT_ERRORS:
                    data = b""
            if data is None:
                conn.handle_timer(trio.current_time())
            else:
                conn.receive_data(data, trio.current_time())
            while (event := conn.next_event()) is not None:
                if isinstance(event, FileRequested):
                    root = self.chat_root if event.root == "chat" else self.root
                    body = await self._read_file(event.parts, root)
                    if body is None:
                        conn.not_found(head=event.head)
                    else:
                        media = content_type(event.parts[-1])
                        conn.send_file(body, media, head=event.head)
                elif isinstance(event, BoshRequested):
                    await self._write(transport, conn.data_to_send())
                    tls = transport.tls_version()
                    await self.bosh.handle(conn, event, peer=transport.peer, tls=tls)
                elif isinstance(event, WebSocketAccepted):
                    await self._write(transport, conn.data_to_send())
                    return event
                elif self.uploads is not None:
                    await self.uploads.handle(conn, event)
            await self._write(transport, conn.data_to_send())
        return None

    async def _write(self, transport: Transport, data: bytes) -> None:
        """Write a response; a client that does not read it within the
        request timeout is dropped."""
        if not data:
            return
        with trio.move_on_after(self.settings.request_timeout) as scope:
            await transport.send_all(data)
        if scope.cancelled_caught:
            raise trio.BrokenResourceError("the client does not read")

    async def _read_file(self, parts: tuple[str, ...], root: Path | None) -> bytes | None:
        """The file at ``parts`` under ``root``, if it is a regular file that
        stays under the root once symbolic links are resolved."""
        if root is None:
            return None

        def read() -> bytes | None:
            path = root.joinpath(*parts).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                return None
            if path.stat().st_size > MAX_STATIC_FILE:
                return None
            return path.read_bytes()

        try:
            return await trio.to_thread.run_sync(read)
        except OSError:
            return None

    async def _serve_websocket(self, transport: Transport, accepted: WebSocketAccepted) -> None:
        """RFC 7395: the XMPP stream over the upgraded connection, served by
        the XMPP server itself (or sent elsewhere with see-other-uri)."""
        server = self.server
        stream = WebSocketStream(
            max_message_size=server.config.limits.max_stanza_size,
            trailing_data=accepted.trailing_data,
        )
        ws = WebSocketTransport(transport, stream)
        uri = self.settings.see_other_uri
        if uri and not accepted.json:  # the JSON channel is served here
            with trio.move_on_after(server.config.limits.negotiation_timeout):
                if await ws.receive_some(_READ):
                    opened, closed = see_other_messages(uri)
                    await ws.send_all(text_frame(opened) + text_frame(closed))
            ws.close()
            return
        framing = JsonFraming(text_frame) if accepted.json else WebSocketFraming(wrap=text_frame)
        await server.serve(ws, framing=framing)
