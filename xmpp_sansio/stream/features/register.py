"""In-band registration before authentication (XEP-0077): the server's stream feature plug-in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

from ... import register
from ...xml import ns
from ..config import ServerConfig
from .base import FeatureHost, Stage

__all__ = ["RegisterFeature"]


class RegisterFeature:
    """XEP-0077 §8: in-band registration, before authentication."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.registration_offered:
            yield register.feature_element()

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """Registration IQs before authentication (§3.1); other IQs are given back."""
        return (ns.IQ_TAG,) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        return conn._handle_register_element(el)
