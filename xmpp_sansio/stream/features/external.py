"""SASL EXTERNAL for server-to-server streams (RFC 6120 §13.7.1.2, XEP-0178),
both roles: the receiving server offers it only when the peer's certificate
names the domain in the stream header's ``from``; the one-step exchange
carries an authorization identity that is that domain, or ``=`` (none).
"""

from __future__ import annotations

from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ... import sasl
from ...xml import ns
from .base import _b64decode, _b64encode, _sasl_element

__all__ = ["EXTERNAL", "auth_element", "check_auth", "mechanisms_element"]

EXTERNAL: Final = "EXTERNAL"


def mechanisms_element() -> Element:
    """``<mechanisms><mechanism>EXTERNAL</mechanism></mechanisms>`` (XEP-0178 §2)."""
    el = Element(ns.MECHANISMS_TAG)
    SubElement(el, ns.MECHANISM_TAG).text = EXTERNAL
    return el


def auth_element(authzid: str | None) -> Element:
    """The initiating server's ``<auth/>``: its domain as authzid, or ``=``
    (RFC 6120 §6.4.2, XEP-0178 §2 step 8)."""
    return _sasl_element(
        "auth", _b64encode(authzid.encode("utf-8") if authzid else b""), mechanism=EXTERNAL
    )


def check_auth(el: Element, peer_domain: str | None) -> sasl.SASLCondition | None:
    """The receiving server's decision on ``<auth mechanism='EXTERNAL'>`` when
    EXTERNAL was offered for ``peer_domain``: None to succeed, else the
    failure condition (RFC 6120 §6.5; XEP-0178 §2 step 9)."""
    if el.get("mechanism") != EXTERNAL or peer_domain is None:
        return sasl.SASLCondition.INVALID_MECHANISM
    try:
        data = _b64decode(el.text)
    except ValueError:
        return sasl.SASLCondition.INCORRECT_ENCODING
    if not data:
        return None  # no authzid: the header's 'from' (§6.3.8)
    try:
        authzid = data.decode("utf-8")
    except UnicodeDecodeError:
        return sasl.SASLCondition.INCORRECT_ENCODING
    if authzid.lower() != peer_domain.lower():
        return sasl.SASLCondition.INVALID_AUTHZID
    return None


def failure_element(condition: sasl.SASLCondition) -> Element:
    """``<failure><condition/></failure>`` (RFC 6120 §6.4.5)."""
    el = _sasl_element("failure")
    SubElement(el, "{" + ns.SASL + "}" + condition.value)
    return el
