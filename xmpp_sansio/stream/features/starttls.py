"""STARTTLS (RFC 6120 §5.4): the server's stream feature plug-in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement

from ...xml import ns
from ..config import ServerConfig
from ..events import TLSRequested
from ..state import Input, State
from .base import FeatureHost, Stage

__all__ = ["StartTLSFeature"]


class StartTLSFeature:
    """RFC 6120 §5.4.1: ``<starttls/>``, with ``<required/>`` when TLS is mandatory."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.tls_active or not conn.config.tls_available:
            return
        starttls = Element(ns.STARTTLS_TAG)
        if conn.config.require_tls:
            SubElement(starttls, "{" + ns.TLS + "}required")
        yield starttls

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        return (ns.STARTTLS_TAG,) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        """``<starttls/>`` (RFC 6120 §5.4.2): ``<proceed/>`` and ask the I/O layer
        for TLS (:class:`TLSRequested`, answered with ``TLSEstablished``), or
        ``<failure/>`` when TLS is on or unavailable."""
        if conn.state is not State.NEGOTIATING:
            return False
        if conn.tls_active or not conn.config.tls_available:
            conn._send_element(Element(ns.TLS_FAILURE_TAG))
            # §5.4.2.2: after a TLS <failure/> the server closes the stream,
            # without a stream error.
            conn._fire(Input.TLS_REFUSED)
            return True
        conn._send_element(Element(ns.PROCEED_TAG))
        conn._fire(Input.TLS_STARTED)
        conn._events.append(TLSRequested(server_side=True, server_hostname=conn.domain or ""))
        return True
