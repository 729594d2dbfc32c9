"""Client state indication (XEP-0352): the server's stream feature plug-in.

Every stream starts active (§5, §5.2); the state is ``conn.client_active``
and the presence held meanwhile ``conn._held`` (read by ``send``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

from ...xml import ns
from ..config import ServerConfig
from ..events import ClientStateChanged
from ..state import State
from .base import FeatureHost, Stage

__all__ = ["CSIFeature"]


class CSIFeature:
    """XEP-0352 §4.1: ``<csi/>``."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.csi:
            yield Element(ns.CSI_TAG)

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """``<active/>``/``<inactive/>`` once authenticated (§5)."""
        if config.csi and stage is not Stage.BEFORE_AUTH:
            return (ns.CSI_ACTIVE_TAG, ns.CSI_INACTIVE_TAG)
        return ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        """``<active/>``/``<inactive/>`` (§4.2). Becoming active flushes the held
        presence before anything else is processed (§5.1, in-order processing);
        while inactive, ``ServerConnection.send`` holds presence updates in
        ``conn._held``."""
        active = el.tag == ns.CSI_ACTIVE_TAG
        if active == conn.client_active:
            return True
        conn.client_active = active
        conn._events.append(ClientStateChanged(active))
        if active and conn.state is State.READY and conn._held is not None:
            for stanza in conn._held.flush():
                conn._send_stanza(stanza)
        return True
