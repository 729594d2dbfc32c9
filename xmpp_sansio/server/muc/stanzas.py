"""The stanzas a room builds (XEP-0045 §7, §15): occupant presence with its
``muc#user`` item and status codes, and the XEP-0421 occupant id."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...jid import JID

__all__ = [
    "MUC",
    "MUC_ADMIN",
    "MUC_OWNER",
    "MUC_USER",
    "OCCUPANT_ID",
    "occupant_id",
    "strip_muc",
    "user_x",
]

MUC: Final = "http://jabber.org/protocol/muc"
MUC_USER: Final = MUC + "#user"
MUC_ADMIN: Final = MUC + "#admin"
MUC_OWNER: Final = MUC + "#owner"
OCCUPANT_ID: Final = "urn:xmpp:occupant-id:0"  # XEP-0421
_STRIPPED: Final = frozenset({f"{{{MUC}}}x", f"{{{MUC_USER}}}x", f"{{{OCCUPANT_ID}}}occupant-id"})


def occupant_id(salt: bytes, room: JID, user: JID) -> str:
    """XEP-0421 §4: a stable id per room and real bare JID that does not
    reveal the JID (a keyed hash with the room's secret salt)."""
    digest = hashlib.blake2b(
        f"{room}\0{user.bare}".encode(), key=salt[:64], digest_size=18
    ).digest()
    return base64.b64encode(digest).decode()


def strip_muc(el: Element, tag: str | None = None) -> Element:
    """A copy of ``el`` (tag ``tag`` if given) without the ``muc``/``muc#user``
    payloads and occupant ids a client put there (XEP-0421 §4: a service
    MUST strip them), and without ``to``/``from``."""
    attrib = {k: v for k, v in el.attrib.items() if k not in ("to", "from")}
    new = Element(tag or el.tag, attrib)
    new.text = el.text
    new.extend(child for child in el if child.tag not in _STRIPPED)
    return new


def user_x(
    *,
    affiliation: str,
    role: str,
    jid: JID | None = None,
    nick: str | None = None,
    codes: Iterable[int] = (),
    actor: str | None = None,
    reason: str | None = None,
) -> Element:
    """``<x xmlns='…muc#user'>`` with one ``<item/>`` and the status codes (§15.6)."""
    x = Element(f"{{{MUC_USER}}}x")
    attrs = {"affiliation": affiliation, "role": role}
    if jid is not None:
        attrs["jid"] = str(jid)
    if nick is not None:
        attrs["nick"] = nick
    item = SubElement(x, f"{{{MUC_USER}}}item", attrs)
    if actor is not None:
        SubElement(item, f"{{{MUC_USER}}}actor", {"nick": actor})
    if reason is not None:
        SubElement(item, f"{{{MUC_USER}}}reason").text = reason
    for code in sorted(set(codes)):
        SubElement(x, f"{{{MUC_USER}}}status", {"code": str(code)})
    return x


def occupant_id_element(value: str) -> Element:
    return Element(f"{{{OCCUPANT_ID}}}occupant-id", {"id": value})
