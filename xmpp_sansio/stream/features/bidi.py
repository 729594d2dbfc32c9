"""Bidirectional server-to-server streams (XEP-0288), both roles: the
receiving server offers ``<bidi xmlns='urn:xmpp:features:bidi'/>`` among its
features (after TLS, §2.1); the initiating server asks for it with
``<bidi xmlns='urn:xmpp:bidi'/>`` before SASL or dialback (§2.2), and no
answer follows. From then on the receiving server may send stanzas for the
authenticated pairs the other way (the inverse of each pair, §2.3), and the
initiating server takes them on its stream.
"""

from __future__ import annotations

from typing import Final
from xml.etree.ElementTree import Element

__all__ = ["BIDI", "BIDI_FEATURE_TAG", "BIDI_TAG", "feature_element", "offered", "request_element"]

#: XEP-0288 §2.2: the namespace of the request.
BIDI: Final = "urn:xmpp:bidi"
#: XEP-0288 §2.1: the stream feature.
BIDI_FEATURE_TAG: Final = "{urn:xmpp:features:bidi}bidi"
BIDI_TAG: Final = "{" + BIDI + "}bidi"


def feature_element() -> Element:
    """``<bidi xmlns='urn:xmpp:features:bidi'/>`` (§2.1)."""
    return Element(BIDI_FEATURE_TAG)


def request_element() -> Element:
    """``<bidi xmlns='urn:xmpp:bidi'/>`` (§2.2)."""
    return Element(BIDI_TAG)


def offered(features: Element) -> bool:
    """Whether the receiving server's features offer bidirectionality."""
    return features.find(BIDI_FEATURE_TAG) is not None
