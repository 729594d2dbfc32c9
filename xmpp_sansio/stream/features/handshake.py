"""The component handshake (XEP-0114 §3): the server's plug-in of the
component profile, the proof that a new profile is a new list of plug-ins.

A component stream offers no ``<stream:features/>``; the one negotiation
step is ``<handshake/>``, whose text is the lowercase hex SHA-1 of the
stream id followed by the shared secret. A wrong one closes the stream with
``not-authorized``; a right one is answered with an empty ``<handshake/>``
and stanzas flow.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from typing import Protocol
from xml.etree.ElementTree import Element

from ...errors import StreamErrorCondition
from ...jid import JID
from ...xml import ns
from ..config import ComponentServerConfig
from ..events import Authenticated, Event
from ..state import Input, State
from .base import Stage

__all__ = ["HANDSHAKE", "ComponentHost", "HandshakeFeature", "handshake_digest"]

#: The ``mechanism`` of the :class:`Authenticated` event of a component stream.
HANDSHAKE = "XEP-0114-HANDSHAKE"


def handshake_digest(stream_id: str, secret: str) -> str:
    """XEP-0114 §3: SHA-1 of the stream id concatenated with the secret (UTF-8),
    in lowercase hexadecimal."""
    return hashlib.sha1((stream_id + secret).encode("utf-8")).hexdigest()


class ComponentHost(Protocol):
    """What the handshake reads of, and calls on, the server side of a component stream."""

    domain: str | None
    stream_id: str | None
    _events: list[Event]

    @property
    def config(self) -> ComponentServerConfig: ...
    @property
    def state(self) -> State: ...

    def _fire(self, item: Input) -> None: ...
    def _send_element(self, el: Element) -> None: ...
    def _stream_error(
        self, condition: StreamErrorCondition, text: str | None = None, extra: Element | None = None
    ) -> None: ...
    def _authenticated(self) -> None: ...


class HandshakeFeature:
    """XEP-0114 §3: ``<handshake/>`` before anything else; nothing offered."""

    def offer(self, conn: ComponentHost) -> Iterator[Element]:
        return iter(())

    def claims(self, stage: Stage, config: ComponentServerConfig) -> Iterable[str]:
        return (ns.HANDSHAKE_TAG,) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: ComponentHost, stage: Stage, el: Element) -> bool:
        """Check the digest (in constant time); ``not-authorized`` if wrong (§3:
        the receiver "MUST close the stream ... SHOULD return a <not-authorized/>
        stream error"), else an empty ``<handshake/>`` and a ready stream."""
        if conn.state is not State.NEGOTIATING:
            return False
        assert conn.domain is not None and conn.stream_id is not None
        expected = handshake_digest(conn.stream_id, conn.config.secrets[conn.domain])
        given = (el.text or "").strip().lower()
        if len(el) or not hmac.compare_digest(given.encode("utf-8"), expected.encode("ascii")):
            conn._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "bad handshake")
            return True
        conn._send_element(Element(ns.HANDSHAKE_TAG))
        conn._authenticated()
        conn._events.append(Authenticated(JID.parse(conn.domain), HANDSHAKE))
        conn._fire(Input.HANDSHAKE_SUCCEEDED)
        return True
