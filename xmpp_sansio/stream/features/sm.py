"""Stream management (XEP-0198): the server's stream feature plug-in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

from ...errors import StanzaErrorCondition
from ...xml import ns
from ..config import ServerConfig
from .base import FeatureHost, Stage

__all__ = ["SMFeature"]


class SMFeature:
    """XEP-0198 §2: ``<sm/>``, once authenticated."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.stream_management:
            yield Element(ns.SM_TAG)

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """``<enable/>``/``<resume/>`` at every stage (refused before
        authentication, §3 and §5), the whole namespace once ready (§4)."""
        if not config.stream_management:
            return ()
        if stage is Stage.READY:
            return ("{" + ns.SM + "}", ns.SM_ENABLE_TAG, ns.SM_RESUME_TAG, *_SM_ACK_TAGS)
        return (ns.SM_ENABLE_TAG, ns.SM_RESUME_TAG)

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        if stage is Stage.READY:
            conn._handle_sm_ready(el)
        elif stage is Stage.BIND and el.tag == ns.SM_RESUME_TAG:
            conn._handle_resume(el)
        else:
            # §3: enable only after binding ("SHALL enforce this order"); §5:
            # resume only after authentication.
            conn._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
        return True


_SM_ACK_TAGS = ("{" + ns.SM + "}r", "{" + ns.SM + "}a")
