"""Resource binding (RFC 6120 §7): the server's stream feature plug-in.

With ``ServerConfig.ask_before_bind`` the plug-in asks the I/O layer first
(:class:`BindRequested`, answered with ``BindAccepted``/``BindRefused``).
On the ready stream a second bind is the stream's own answer (``server.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement

from ...errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from ...jid import JID, InvalidJID
from ...xml import ns
from ..answers import Answer, BindAccepted, BindRefused
from ..config import ServerConfig
from ..events import BindRequested, ResourceBound
from ..state import Input, State
from . import bind2
from .base import FeatureHost, Stage, _iq_error

__all__ = ["BindFeature"]


class BindFeature:
    """RFC 6120 §7.4: ``<bind/>``, and the RFC 3921 ``<session/>`` marked optional
    (RFC 6121 Appendix E)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.jid is not None:  # bound inline (XEP-0386): the features after SASL2
            return
        yield Element(ns.BIND_TAG)
        session = Element(ns.SESSION_TAG)
        SubElement(session, "{" + ns.SESSION + "}optional")
        yield session

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """The bind IQ while binding (§7.6); on a ready stream the stream
        answers a second bind itself, as a stanza."""
        return (ns.IQ_TAG,) if stage is Stage.BIND else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        """§7: an IQ while binding must bind a resource."""
        bind = el.find(ns.BIND_TAG)
        iq_id = el.get("id")
        if bind is None or el.get("type") != "set" or not iq_id:
            conn._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "bind a resource first")
            return True
        assert conn.authenticated_jid is not None
        requested = bind.findtext("{" + ns.BIND + "}resource")
        requested = requested.strip() if requested else ""
        try:
            if requested:
                jid = conn.authenticated_jid.with_resource(requested)
            else:  # §7.6.2.1: the server generates a resource
                jid = conn.authenticated_jid.with_resource(conn.config.rng(9).hex())
        except InvalidJID:
            conn._send_element(_iq_error(el, StanzaErrorCondition.BAD_REQUEST))  # §7.7.2.1
            return True
        if conn.config.ask_before_bind:
            conn._pending_bind = (iq_id, jid)
            conn._fire(Input.BIND_REQUESTED)
            conn._events.append(BindRequested(jid))
            return True
        _complete_bind(conn, iq_id, jid)
        return True

    def answers(self) -> tuple[type[Answer], ...]:
        return (BindAccepted, BindRefused)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        """``BindAccepted``: bind the JID asked for, send the result and emit
        :class:`ResourceBound` (§7.6.1). ``BindRefused``: an IQ error, by default
        ``<resource-constraint/>`` (§7.6.2.1); the stream stays in the binding
        stage, so the client may try again."""
        pending = conn._pending_bind
        if conn.state is not State.AWAIT_BIND or pending is None:
            raise LocalProtocolError("no resource binding was requested")
        conn._pending_bind = None
        if conn._pending_success is not None:  # Bind 2, inline in SASL2 (XEP-0386)
            bind2.bind_answered(conn, pending[1], accepted=isinstance(answer, BindAccepted))
        elif isinstance(answer, BindAccepted):
            _complete_bind(conn, *pending)
        else:
            assert isinstance(answer, BindRefused)
            conn._fire(Input.LOCAL_BIND_REFUSED)
            conn._send_element(_iq_error(Element(ns.IQ_TAG, {"id": pending[0]}), answer.condition))
        conn._process()


def _complete_bind(conn: FeatureHost, iq_id: str, jid: JID) -> None:
    reply = Element(ns.IQ_TAG, {"type": "result", "id": iq_id})
    SubElement(SubElement(reply, ns.BIND_TAG), "{" + ns.BIND + "}jid").text = str(jid)
    conn._send_element(reply)
    conn.jid = jid
    conn._fire(Input.BOUND)
    conn._events.append(ResourceBound(jid))
