"""Server Dialback (XEP-0220) elements, both roles: the codec of
``<db:result/>`` and ``<db:verify/>`` and the stream feature that offers it.

The keys are XEP-0185's (:func:`~xmpp_sansio.stream.s2s_identity.dialback_key`);
the decisions (which pair is authenticated, when the I/O layer must ask the
authoritative server) are the s2s connections' (:mod:`..s2s`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...errors import StanzaErrorCondition
from ...xml import ns

__all__ = [
    "DB",
    "DB_FEATURES",
    "DB_RESULT_TAG",
    "DB_VERIFY_TAG",
    "DialbackElement",
    "dialback_feature",
    "error_condition",
    "parse_dialback",
    "result_element",
    "verify_element",
]

#: XEP-0220 §2: the dialback namespace (prefix ``db`` on the stream header).
DB: Final = "jabber:server:dialback"
#: XEP-0220 §2.1: the stream feature advertising dialback (with error support).
DB_FEATURES: Final = "urn:xmpp:features:dialback"
DB_RESULT_TAG: Final = "{" + DB + "}result"
DB_VERIFY_TAG: Final = "{" + DB + "}verify"
#: Longest key accepted: XEP-0185 keys are 64 hex digits; others' are shorter.
MAX_KEY_LENGTH: Final = 1024


@dataclass(frozen=True, slots=True)
class DialbackElement:
    """A parsed ``<db:result/>`` or ``<db:verify/>``; ``key`` is its text."""

    verify: bool
    from_: str
    to: str
    id: str | None
    type: str | None
    key: str | None


def parse_dialback(el: Element) -> DialbackElement | None:
    """The element's fields, or None when ``from`` or ``to`` is missing, or the
    key is too long (XEP-0220 §2.4: an ``invalid-from``/``improper-addressing``
    case the caller answers)."""
    from_, to = el.get("from"), el.get("to")
    key = (el.text or "").strip() or None
    if not from_ or not to or (key is not None and len(key) > MAX_KEY_LENGTH):
        return None
    return DialbackElement(el.tag == DB_VERIFY_TAG, from_, to, el.get("id"), el.get("type"), key)


def _db(
    tag: str,
    from_: str,
    to: str,
    *,
    key: str | None = None,
    type_: str | None = None,
    id_: str | None = None,
    error: StanzaErrorCondition | None = None,
    text: str | None = None,
) -> Element:
    attrs = {"from": from_, "to": to}
    if id_ is not None:
        attrs["id"] = id_
    if type_ is not None:
        attrs["type"] = type_
    el = Element(tag, attrs)
    el.text = key
    if error is not None:
        # XEP-0220 §2.4 / §4.1: an error child as in a stanza error.
        err = SubElement(el, "{" + ns.SERVER + "}error", {"type": error.default_type.value})
        SubElement(err, "{" + ns.STANZA_ERRORS + "}" + error.value)
        if text:
            SubElement(err, "{" + ns.STANZA_ERRORS + "}text").text = text
    return el


def result_element(
    from_: str,
    to: str,
    *,
    key: str | None = None,
    type_: str | None = None,
    error: StanzaErrorCondition | None = None,
    text: str | None = None,
) -> Element:
    """``<db:result/>``: a key (the request, §2.1.1) or a verdict (§2.4)."""
    return _db(DB_RESULT_TAG, from_, to, key=key, type_=type_, error=error, text=text)


def verify_element(
    from_: str,
    to: str,
    id_: str,
    *,
    key: str | None = None,
    type_: str | None = None,
    error: StanzaErrorCondition | None = None,
) -> Element:
    """``<db:verify/>``: a question to the authoritative server (§2.3) or its answer."""
    return _db(DB_VERIFY_TAG, from_, to, key=key, type_=type_, id_=id_, error=error)


def dialback_feature() -> Element:
    """``<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>`` (§2.1)."""
    el = Element("{" + DB_FEATURES + "}dialback")
    SubElement(el, "{" + DB_FEATURES + "}errors")
    return el


def error_condition(el: Element) -> StanzaErrorCondition | None:
    """The condition of a dialback ``type='error'`` (XEP-0220 §2.4)."""
    error = el.find("{" + ns.SERVER + "}error")
    if error is None:
        error = el.find("{" + DB + "}error")
    if error is None:
        return None
    for child in error:
        uri, _, local = child.tag[1:].partition("}")
        if uri == ns.STANZA_ERRORS and local != "text":
            try:
                return StanzaErrorCondition(local)
            except ValueError:
                return StanzaErrorCondition.UNDEFINED_CONDITION
    return None
