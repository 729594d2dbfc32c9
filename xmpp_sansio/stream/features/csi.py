"""Client state indication (XEP-0352): the server's stream feature plug-in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

from ...xml import ns
from ..config import ServerConfig
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
        conn._set_client_state(el.tag == ns.CSI_ACTIVE_TAG)
        return True
