"""Resource binding (RFC 6120 §7): the server's stream feature plug-in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement

from ...xml import ns
from ..config import ServerConfig
from .base import FeatureHost, Stage

__all__ = ["BindFeature"]


class BindFeature:
    """RFC 6120 §7.4: ``<bind/>``, and the RFC 3921 ``<session/>`` marked optional
    (RFC 6121 Appendix E)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        yield Element(ns.BIND_TAG)
        session = Element(ns.SESSION_TAG)
        SubElement(session, "{" + ns.SESSION + "}optional")
        yield session

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """The bind IQ while binding (§7.6); on a ready stream the stream
        answers a second bind itself, as a stanza."""
        return (ns.IQ_TAG,) if stage is Stage.BIND else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        conn._handle_bind_iq(el)
        return True
