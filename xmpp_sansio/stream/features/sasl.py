"""SASL (RFC 6120 §6.4): the server's stream feature plug-in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement

from ...xml import ns
from ..config import ServerConfig
from .base import FeatureHost, Stage

__all__ = ["SASLFeature"]


class SASLFeature:
    """RFC 6120 §6.4.1: ``<mechanisms/>``; with ``-PLUS`` mechanisms, the channel
    binding types of this connection (XEP-0440 §2)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        mechanisms = conn.offered_mechanisms
        if not mechanisms:
            return
        mechs = Element(ns.MECHANISMS_TAG)
        for name in mechanisms:
            SubElement(mechs, ns.MECHANISM_TAG).text = name
        yield mechs
        if any(name.endswith("-PLUS") for name in mechanisms):
            cb_types = Element(ns.SASL_CB_TAG)
            for binding in conn.tls_info.channel_bindings:
                SubElement(cb_types, "{" + ns.SASL_CB + "}channel-binding", type=binding.type)
            yield cb_types

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        if stage is Stage.BEFORE_AUTH:
            return (ns.AUTH_TAG, ns.RESPONSE_TAG, ns.ABORT_TAG)
        return ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        return conn._handle_sasl_element(el)
