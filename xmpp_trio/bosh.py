"""BOSH (XEP-0124/0206) at ``/http-bind`` on the http/https listeners, with
Trio. docs/web.md.

Every decision is :class:`xmpp_sansio.http.BoshSession`'s; this module keeps
the sessions by ``sid``, runs each one's XMPP stream (``XMPPServer.serve``
over a :class:`~xmpp_trio._transport.BoshTransport` with RFC 7395's framing:
the same negotiation, SASL, stream management and limits as TCP), holds each
HTTP request until the session has its answer, and runs one timer task per
session (``wait`` and ``inactivity``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.http import BoshRequested, BoshSession, BoshSettings, HTTPServerConnection
from xmpp_sansio.http.bosh import BoshError, frame_unit, parse_body, terminate_body
from xmpp_sansio.stream.framing import Framing, WebSocketFraming

from ._transport import BoshTransport, Transport

__all__ = ["BoshService"]

log = logging.getLogger("xmpp_trio.bosh")


class _Server(Protocol):
    def serve(
        self, transport: Transport, *, direct_tls: bool = False, framing: Framing | None = None
    ) -> Awaitable[None]: ...


@dataclass(eq=False)
class _Live:
    """One session: its state, its transport, the answers not yet taken."""

    session: BoshSession
    transport: BoshTransport
    answers: dict[int, bytes] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)
    wake: trio.Event = field(default_factory=trio.Event)

    def update(self) -> None:
        """Collect what the session can answer now; wake the waiters."""
        self.take(self.session.responses(trio.current_time()))
        self.wake.set()

    def take(self, found: dict[int, bytes]) -> None:
        if found:
            self.answers.update(found)
            self.changed.set()
            self.changed = trio.Event()
            self.transport.drained()


class BoshService:
    """The BOSH sessions of one server's http/https listeners."""

    def __init__(self, server: _Server, settings: BoshSettings, max_body_size: int) -> None:
        self._server = server
        self.settings = settings
        self._max_body = max_body_size
        self.sessions: dict[str, _Live] = {}
        self.nursery: trio.Nursery | None = None

    async def handle(
        self, conn: HTTPServerConnection, event: BoshRequested, *, peer: str, tls: str | None
    ) -> None:
        """Answer one request, once the session has its answer (XEP-0124 §7)."""
        answer = await self._answer(event, peer=peer, tls=tls)
        conn.send_bosh(answer, trio.current_time())

    async def _answer(self, event: BoshRequested, *, peer: str, tls: str | None) -> bytes:
        now = trio.current_time()
        try:
            body = parse_body(event.body, self._max_body)
        except BoshError as exc:
            return terminate_body(exc.condition)
        sid = body.get("sid")
        if sid is None:
            try:
                live = self._create(body, now, peer=peer, tls=tls)
            except BoshError as exc:
                return terminate_body(exc.condition)
        else:
            found = self.sessions.get(sid)
            if found is None:  # XEP-0124 §17.2
                return terminate_body("item-not-found")
            live = found
        try:
            receipt = live.session.receive(body, now)
        except BoshError as exc:
            log.info("bosh %s: %s", live.session.sid, exc)
            self._end(live)
            return terminate_body(exc.condition)
        if receipt.cached is not None:
            return receipt.cached
        for message in receipt.messages:
            live.transport.feed(message)
        await trio.lowlevel.checkpoint()  # let the stream read what was fed
        live.update()
        while (answer := live.answers.pop(receipt.rid, None)) is None:
            await live.changed.wait()
        return answer

    def _create(self, body: Element, now: float, *, peer: str, tls: str | None) -> _Live:
        if len(self.sessions) >= self.settings.max_sessions:
            raise BoshError("service-unavailable", "too many BOSH sessions")
        nursery = self.nursery
        if nursery is None:
            raise BoshError("internal-server-error", "not started")
        sid = secrets.token_urlsafe(18)
        session = BoshSession(sid, body, self.settings, now=now, secure=True)
        holder: list[_Live] = []

        def output(data: bytes) -> None:
            session.receive_output(data)
            if holder:
                holder[0].update()

        def closed() -> None:
            session.close()
            if holder:
                holder[0].update()
                self.sessions.pop(sid, None)

        limit = self._max_body  # a response stays within what a request may carry

        def room() -> bool:
            return session.pending_bytes < limit

        transport = BoshTransport(peer, output, closed, tls, room)
        live = _Live(session, transport)
        holder.append(live)
        self.sessions[sid] = live
        framing = WebSocketFraming(wrap=frame_unit)
        nursery.start_soon(self._run, live, framing)
        return live

    async def _run(self, live: _Live, framing: WebSocketFraming) -> None:
        """The session's XMPP stream and its timers."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timers, live)
            try:
                await self._server.serve(live.transport, framing=framing)
            finally:
                live.transport.close()
                live.update()
                self.sessions.pop(live.session.sid, None)
                nursery.cancel_scope.cancel()

    async def _timers(self, live: _Live) -> None:
        """``wait`` (empty answers) and ``inactivity`` (the stream ends)."""
        session = live.session
        while True:
            live.wake = trio.Event()
            with trio.move_on_at(session.deadline):
                await live.wake.wait()
            now = trio.current_time()
            if session.expired(now):
                log.info("bosh %s: inactive, ended", session.sid)
                live.transport.feed_eof()
                return
            live.take(session.responses(now))

    def _end(self, live: _Live) -> None:
        """A terminal condition: held requests are answered, the stream ends."""
        self.sessions.pop(live.session.sid, None)
        live.session.close()
        live.update()
        live.transport.feed_eof()
