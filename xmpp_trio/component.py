"""The component role over Trio (XEP-0114): connect to a server's component
port, do the handshake, then send and receive stanzas for the component's
domain.

    async with open_component("gw.example.org", secret, host="127.0.0.1", port=5347) as gw:
        await gw.send(make_message("juliet@example.org", "hi", from_="bot@gw.example.org"))
        async for stanza in gw:
            ...

The protocol is :class:`xmpp_sansio.stream.component.ComponentClientConnection`;
this module only moves bytes. Stanzas are in ``jabber:client`` both ways
(the connection moves them to ``jabber:component:accept`` on the wire); each
must carry ``from`` at the component's domain and a ``to``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.stream.component import ComponentClientConnection
from xmpp_sansio.stream.config import ComponentClientConfig
from xmpp_sansio.stream.events import Authenticated, StanzaReceived, StreamErrorReceived
from xmpp_sansio.stream.state import State

from .client import ConnectionFailed, StreamError

__all__ = ["Component", "open_component"]

log = logging.getLogger("xmpp_trio.component")


class Component:
    """A component stream after the handshake. Use :func:`open_component`."""

    def __init__(
        self, conn: ComponentClientConnection, stream: trio.abc.Stream, early: list[Element]
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._early = early  # stanzas that came in the same read as <handshake/>
        self._send_lock = trio.Lock()
        self._incoming_send, self._incoming = trio.open_memory_channel[Element](256)
        #: Set when the stream ended; :attr:`error` says why if it failed.
        self.closed = trio.Event()
        self.error: StreamError | None = None

    @property
    def domain(self) -> str:
        """The component's domain."""
        return self._conn.config.domain

    async def send(self, stanza: Element) -> None:
        """Send a stanza (``jabber:client``; ``from`` at :attr:`domain`, and a ``to``)."""
        self._conn.send(stanza)
        await self._flush()

    async def receive(self) -> Element:
        """Wait for the next stanza. Raises ``trio.EndOfChannel`` once closed."""
        return await self._incoming.receive()

    def __aiter__(self) -> AsyncIterator[Element]:
        return self._incoming.__aiter__()

    async def aclose(self) -> None:
        """Close the stream cleanly (RFC 6120 §4.4) and the connection."""
        if not self.closed.is_set():
            self._conn.close()
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._flush()
            with trio.move_on_after(5):
                await self.closed.wait()
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
                await self._incoming_send.send(stanza)
            while not self._conn.should_close:
                try:
                    data = await self._stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if data:
                    self._conn.receive_data(data)
                else:
                    self._conn.receive_eof()
                try:
                    while (event := self._conn.next_event()) is not None:
                        if isinstance(event, StanzaReceived):
                            await self._incoming_send.send(event.element)
                        elif isinstance(event, StreamErrorReceived):
                            self.error = StreamError(event.condition, event.text)
                except RemoteProtocolError as exc:
                    self.error = StreamError(exc.condition, exc.text)
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._flush()
                if not data:
                    break
        finally:
            self.closed.set()
            await self._incoming_send.aclose()


async def _handshake(conn: ComponentClientConnection, stream: trio.abc.Stream) -> list[Element]:
    """Send the header, answer the server's with the handshake, wait for its
    empty ``<handshake/>`` (XEP-0114 §3); raise :class:`StreamError` if refused.
    Returns the stanzas that arrived with the ``<handshake/>``."""
    early: list[Element] = []
    conn.start()
    while conn.state is not State.READY:
        data = conn.data_to_send()
        if data:
            await stream.send_all(data)
        chunk = await stream.receive_some(65536)
        if chunk:
            conn.receive_data(chunk)
        else:
            conn.receive_eof()
        try:
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamErrorReceived):
                    raise StreamError(event.condition, event.text)
                if isinstance(event, Authenticated):
                    log.info("component %s accepted", event.jid)
                elif isinstance(event, StanzaReceived):
                    early.append(event.element)
        except RemoteProtocolError as exc:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(conn.data_to_send())
            raise StreamError(exc.condition, exc.text) from None
        if not chunk:  # end of file cannot complete the handshake
            raise ConnectionFailed("the server closed the connection during the handshake")
    return early


@asynccontextmanager
async def open_component(
    domain: str,
    secret: str,
    *,
    host: str,
    port: int = 5347,
    timeout: float = 30.0,
) -> AsyncIterator[Component]:
    """Connect to ``host:port``, do the XEP-0114 handshake as ``domain`` and
    yield a :class:`Component`; close on exit.

    Raises :class:`~xmpp_trio.client.StreamError` (``host-unknown``,
    ``not-authorized`` ...) when the server refuses, and
    :class:`~xmpp_trio.client.ConnectionFailed` when it cannot be reached.
    """
    conn = ComponentClientConnection(ComponentClientConfig(domain=domain, secret=secret))
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise ConnectionFailed(f"could not connect to {host}:{port}: {exc!r}") from exc
    try:
        with trio.fail_after(timeout):
            early = await _handshake(conn, stream)
    except (StreamError, ConnectionFailed):
        await trio.aclose_forcefully(stream)
        raise
    except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
        await trio.aclose_forcefully(stream)
        raise ConnectionFailed(f"the handshake with {host}:{port} failed: {exc!r}") from exc
    component = Component(conn, stream, early)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(component._reader)
        try:
            yield component
        finally:
            with trio.CancelScope(shield=True):
                await component.aclose()
            nursery.cancel_scope.cancel()
