"""Service discovery (XEP-0030, XEP-0128) and entity capabilities (XEP-0115,
XEP-0390), shared by client and server.

Models: :class:`Identity`, :class:`DiscoInfo` (identities, features and the
XEP-0128 extension forms of a disco#info ``<query/>``), :class:`DiscoItem`
and :class:`DiscoItems`. :func:`parse_disco_info`/:func:`build_disco_info`
and :func:`parse_disco_items`/:func:`build_disco_items` convert them from and
to ``<query/>`` elements; parsing keeps duplicates (so that
:func:`verify_caps` can reject them, XEP-0115 §5.4) and raises
:class:`DiscoError` for what XEP-0030 forbids.

Capabilities: :func:`caps_ver` is the XEP-0115 §5.1 verification string,
:func:`verify_caps` the §5.4 check, :func:`caps_element`/:func:`parse_caps`
the ``<c xmlns='http://jabber.org/protocol/caps'/>`` element.
:func:`caps2_hashes` is the XEP-0390 §4.1 hash set, with
:func:`caps2_element`/:func:`parse_caps2` for ``<c xmlns='urn:xmpp:caps'/>``
and :func:`caps2_node` for its disco node (§4.3).

``xml:lang`` of an identity is the attribute on ``<identity/>`` only: a
language inherited from an ancestor is not applied (callers that want
XEP-0390 §4.1's inherited value must set it on the identity).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from xmpp_sansio.forms import NS_DATA, Form, FormError, build_form, parse_form
from xmpp_sansio.jid import JID
from xmpp_sansio.xml import ns

__all__ = [
    "CAPS_HASHES",
    "NS_CAPS",
    "NS_CAPS2",
    "NS_HASHES",
    "Caps",
    "DiscoError",
    "DiscoInfo",
    "DiscoItem",
    "DiscoItems",
    "Identity",
    "build_disco_info",
    "build_disco_items",
    "caps2_element",
    "caps2_hashes",
    "caps2_input",
    "caps2_node",
    "caps_element",
    "caps_string",
    "caps_ver",
    "info_query",
    "items_query",
    "parse_caps",
    "parse_caps2",
    "parse_caps2_node",
    "parse_disco_info",
    "parse_disco_items",
    "verify_caps",
    "verify_caps2",
]

NS_CAPS: Final = "http://jabber.org/protocol/caps"
"""XEP-0115 entity capabilities."""
NS_CAPS2: Final = "urn:xmpp:caps"
"""XEP-0390 entity capabilities 2.0."""
NS_HASHES: Final = "urn:xmpp:hashes:2"
"""XEP-0300 hashes (the ``<hash/>`` children of a XEP-0390 ``<c/>``)."""

_INFO = f"{{{ns.DISCO_INFO}}}"
_ITEMS = f"{{{ns.DISCO_ITEMS}}}"
_CAPS2_NODE_PREFIX: Final = "urn:xmpp:caps#"

CAPS_HASHES: Final[Mapping[str, Callable[[bytes], bytes]]] = {
    "sha-1": lambda data: hashlib.sha1(data).digest(),
    "sha-224": lambda data: hashlib.sha224(data).digest(),
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-384": lambda data: hashlib.sha384(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
    "sha3-256": lambda data: hashlib.sha3_256(data).digest(),
    "sha3-512": lambda data: hashlib.sha3_512(data).digest(),
    "blake2b-256": lambda data: hashlib.blake2b(data, digest_size=32).digest(),
    "blake2b-512": lambda data: hashlib.blake2b(data, digest_size=64).digest(),
}
"""Supported hash functions by their IANA / XEP-0300 names (XEP-0115 §9.1:
SHA-1 is mandatory; XEP-0300 §3 adds the sha3 and blake2b names)."""


class DiscoError(ValueError):
    """A disco query or caps element breaks XEP-0030 / XEP-0115 / XEP-0390."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A disco ``<identity/>`` (XEP-0030 §3.1): ``category`` and ``type`` are
    required and non-empty; ``name`` and ``lang`` (``xml:lang``) optional."""

    category: str
    type: str
    name: str | None = None
    lang: str | None = None

    def __post_init__(self) -> None:
        if not self.category or not self.type:
            raise DiscoError("an identity needs a non-empty category and type (XEP-0030 §3.1)")


@dataclass(frozen=True, slots=True)
class DiscoInfo:
    """The contents of a disco#info ``<query/>`` (XEP-0030 §3): identities,
    features, the XEP-0128 extension forms and the optional ``node``
    (XEP-0030 §3.2). Order is kept and duplicates are allowed (see
    :func:`verify_caps`)."""

    identities: tuple[Identity, ...] = ()
    features: tuple[str, ...] = ()
    forms: tuple[Form, ...] = ()
    node: str | None = None

    def has_feature(self, feature: str) -> bool:
        """Whether ``feature`` is listed."""
        return feature in self.features

    def extension(self, form_type: str) -> Form | None:
        """The XEP-0128 form whose FORM_TYPE (XEP-0068) is ``form_type``."""
        for form in self.forms:
            if form.form_type == form_type:
                return form
        return None

    def with_node(self, node: str | None) -> DiscoInfo:
        """The same information answering for ``node`` (XEP-0030 §3.2: the
        response mirrors the request's node)."""
        return DiscoInfo(self.identities, self.features, self.forms, node)


@dataclass(frozen=True, slots=True)
class DiscoItem:
    """A disco ``<item/>`` (XEP-0030 §4.1): a ``jid``, optional ``node`` and
    ``name``."""

    jid: JID
    node: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class DiscoItems:
    """The contents of a disco#items ``<query/>`` (XEP-0030 §4)."""

    items: tuple[DiscoItem, ...] = ()
    node: str | None = None


# ---------------------------------------------------------------------------
# disco#info / disco#items


def info_query(node: str | None = None) -> Element:
    """An empty disco#info request ``<query/>`` (XEP-0030 §3.1)."""
    return Element(f"{_INFO}query", {} if node is None else {"node": node})


def items_query(node: str | None = None) -> Element:
    """An empty disco#items request ``<query/>`` (XEP-0030 §4.1)."""
    return Element(f"{_ITEMS}query", {} if node is None else {"node": node})


def parse_disco_info(query: Element) -> DiscoInfo:
    """Read a disco#info ``<query/>`` (XEP-0030 §3, XEP-0128 §2).

    Raises :class:`DiscoError` if it is not one, if an ``<identity/>`` lacks
    ``category`` or ``type`` or a ``<feature/>`` lacks ``var`` (XEP-0030
    §3.1), or if an extension form is invalid (XEP-0004). Other children are
    ignored; duplicates are kept.
    """
    if query.tag != f"{_INFO}query":
        raise DiscoError(f"not a disco#info query: {query.tag!r}")
    identities: list[Identity] = []
    features: list[str] = []
    forms: list[Form] = []
    for child in query:
        if child.tag == f"{_INFO}identity":
            identities.append(
                Identity(
                    child.get("category", ""),
                    child.get("type", ""),
                    child.get("name"),
                    child.get(ns.XML_LANG),
                )
            )
        elif child.tag == f"{_INFO}feature":
            var = child.get("var")
            if var is None:
                raise DiscoError("a <feature/> needs a 'var' (XEP-0030 §3.1)")
            features.append(var)
        elif child.tag == f"{{{NS_DATA}}}x":
            try:
                forms.append(parse_form(child))
            except FormError as exc:
                raise DiscoError(f"invalid extension form: {exc}") from None
    return DiscoInfo(tuple(identities), tuple(features), tuple(forms), query.get("node"))


def build_disco_info(info: DiscoInfo) -> Element:
    """The disco#info ``<query/>`` for ``info`` (XEP-0030 §3.1; forms as
    XEP-0128 §2 children)."""
    query = info_query(info.node)
    for identity in info.identities:
        attrs = {"category": identity.category, "type": identity.type}
        if identity.name is not None:
            attrs["name"] = identity.name
        if identity.lang is not None:
            attrs[ns.XML_LANG] = identity.lang
        SubElement(query, f"{_INFO}identity", attrs)
    for feature in info.features:
        SubElement(query, f"{_INFO}feature", {"var": feature})
    for form in info.forms:
        query.append(build_form(form))
    return query


def parse_disco_items(query: Element) -> DiscoItems:
    """Read a disco#items ``<query/>`` (XEP-0030 §4). Raises
    :class:`DiscoError` if it is not one or an ``<item/>`` has no valid
    ``jid`` (XEP-0030 §4.1)."""
    if query.tag != f"{_ITEMS}query":
        raise DiscoError(f"not a disco#items query: {query.tag!r}")
    items: list[DiscoItem] = []
    for child in query.iterfind(f"{_ITEMS}item"):
        raw = child.get("jid")
        if raw is None:
            raise DiscoError("an <item/> needs a 'jid' (XEP-0030 §4.1)")
        try:
            jid = JID.parse(raw)
        except ValueError as exc:
            raise DiscoError(f"invalid item jid {raw!r}: {exc}") from None
        items.append(DiscoItem(jid, child.get("node"), child.get("name")))
    return DiscoItems(tuple(items), query.get("node"))


def build_disco_items(items: DiscoItems) -> Element:
    """The disco#items ``<query/>`` for ``items`` (XEP-0030 §4.1)."""
    query = items_query(items.node)
    for item in items.items:
        attrs = {"jid": str(item.jid)}
        if item.node is not None:
            attrs["node"] = item.node
        if item.name is not None:
            attrs["name"] = item.name
        SubElement(query, f"{_ITEMS}item", attrs)
    return query


# ---------------------------------------------------------------------------
# XEP-0115


def _digest(algo: str, data: bytes) -> str:
    try:
        hash_function = CAPS_HASHES[algo]
    except KeyError:
        raise ValueError(f"unsupported hash function {algo!r}") from None
    return base64.b64encode(hash_function(data)).decode("ascii")


def _caps_forms(info: DiscoInfo) -> list[tuple[str, Form]]:
    """The extension forms that count for XEP-0115: those with a hidden
    FORM_TYPE (§5.4 step 3.6: others are ignored)."""
    out: list[tuple[str, Form]] = []
    for form in info.forms:
        form_type = form.form_type
        if form_type is not None:
            out.append((form_type, form))
    return out


def caps_string(info: DiscoInfo) -> str:
    """The string S of XEP-0115 §5.1 (before UTF-8 encoding and hashing).

    Python compares strings by code point, which is the order of their UTF-8
    octets, so :func:`sorted` gives the "i;octet" collation §5.1 requires.
    Identities are sorted by category, then type, then xml:lang, then name
    (§5.1 step 2); each is written ``category/type/lang/name<``.
    """
    parts: list[str] = []
    for identity in sorted(
        info.identities, key=lambda i: (i.category, i.type, i.lang or "", i.name or "")
    ):
        parts.append(
            f"{identity.category}/{identity.type}/{identity.lang or ''}/{identity.name or ''}<"
        )
    parts.extend(f"{feature}<" for feature in sorted(info.features))
    form_parts: list[tuple[str, str]] = []
    for form_type, form in _caps_forms(info):
        text = [f"{form_type}<"]
        for f in sorted(
            (f for f in form.fields if f.var is not None and f.var != "FORM_TYPE"),
            key=lambda f: f.var or "",
        ):
            text.append(f"{f.var}<")
            text.extend(f"{value}<" for value in sorted(f.values))
        form_parts.append((form_type, "".join(text)))
    # Sorted by FORM_TYPE (§5.1 step 6), then by the text so that even an
    # ill-formed response with a repeated FORM_TYPE hashes deterministically.
    parts.extend(text for _, text in sorted(form_parts))
    return "".join(parts)


def caps_ver(info: DiscoInfo, hash: str = "sha-1") -> str:
    """The XEP-0115 §5.1 verification string of ``info`` with the hash
    function ``hash`` (an IANA name, default ``sha-1``, §9.1). Raises
    :class:`ValueError` for an unsupported hash function."""
    return _digest(hash, caps_string(info).encode("utf-8"))


def _has_duplicates(values: Iterable[object]) -> bool:
    seen: list[object] = list(values)
    return len(set(seen)) != len(seen)


def verify_caps(info: DiscoInfo, ver: str, hash: str) -> bool:
    """Whether ``info`` (a disco#info response) verifies ``ver`` per XEP-0115
    §5.4 step 3: false for an unsupported hash function (step 2: such a ver
    cannot be validated or cached), for duplicate identities
    (category/type/lang/name) or features, for two extension forms with the
    same FORM_TYPE or a FORM_TYPE field with different values, and when the
    recomputed verification string differs. Forms without a hidden FORM_TYPE
    are ignored (step 3.6)."""
    if hash not in CAPS_HASHES:
        return False
    if _has_duplicates(info.identities) or _has_duplicates(info.features):
        return False
    form_types: list[str] = []
    for form_type, form in _caps_forms(info):
        if len(set(form.values("FORM_TYPE"))) > 1:
            return False
        form_types.append(form_type)
    if _has_duplicates(form_types):
        return False
    return caps_ver(info, hash) == ver


@dataclass(frozen=True, slots=True)
class Caps:
    """A XEP-0115 ``<c/>`` (§4). ``hash`` is ``None`` for the legacy format
    (§13), whose ``ver`` is not a verification string."""

    node: str
    ver: str
    hash: str | None = "sha-1"
    ext: str | None = None

    @property
    def disco_node(self) -> str:
        """The node to query for this ver: ``node#ver`` (XEP-0115 §6.2)."""
        return f"{self.node}#{self.ver}"


def caps_element(node: str, ver: str, hash: str = "sha-1") -> Element:
    """``<c xmlns='http://jabber.org/protocol/caps' hash=... node=... ver=.../>``
    for presence (XEP-0115 §6.1) or stream features (§6.3)."""
    return Element(f"{{{NS_CAPS}}}c", {"hash": hash, "node": node, "ver": ver})


def parse_caps(stanza: Element) -> Caps | None:
    """The XEP-0115 ``<c/>`` child of ``stanza`` (a presence, or the stream
    features), or ``None`` if there is none or it lacks the REQUIRED ``node``
    or ``ver`` (§4)."""
    c = stanza.find(f"{{{NS_CAPS}}}c")
    if c is None:
        return None
    node, ver = c.get("node"), c.get("ver")
    if not node or not ver:
        return None
    return Caps(node, ver, c.get("hash"), c.get("ext"))


# ---------------------------------------------------------------------------
# XEP-0390


def caps2_input(info: DiscoInfo) -> bytes:
    """The hash function input of XEP-0390 §4.1 for ``info``.

    Raises :class:`DiscoError` where §4.1 says to abort: an extension form
    with ``<reported/>`` or ``<item/>`` (step 2) or without a hidden FORM_TYPE
    (step 3). Features, identities and forms are each sorted as octet
    strings and closed by the separators 0x1f/0x1e/0x1d/0x1c (§4.1 steps 4-6).
    """

    def enc(text: str) -> bytes:
        return text.encode("utf-8") + b"\x1f"

    features = b"".join(sorted(enc(f) for f in info.features)) + b"\x1c"
    identities = (
        b"".join(
            sorted(
                enc(i.category) + enc(i.type) + enc(i.lang or "") + enc(i.name or "") + b"\x1e"
                for i in info.identities
            )
        )
        + b"\x1c"
    )
    forms: list[bytes] = []
    for form in info.forms:
        if form.reported is not None or form.items:
            raise DiscoError("an extension form with <reported/> or <item/> (XEP-0390 §4.1)")
        if form.form_type is None:
            raise DiscoError("an extension form without a hidden FORM_TYPE (XEP-0390 §4.1)")
        fields = sorted(
            enc(f.var or "") + b"".join(sorted(enc(v) for v in f.values)) + b"\x1e"
            for f in form.fields
        )
        forms.append(b"".join(fields) + b"\x1d")
    return features + identities + b"".join(sorted(forms)) + b"\x1c"


def caps2_hashes(info: DiscoInfo, algos: Iterable[str] = ("sha-256",)) -> dict[str, str]:
    """The XEP-0390 §4.2 capability hash set of ``info``: algorithm name ->
    Base64 hash value. Raises :class:`ValueError` (:class:`DiscoError` where
    §4.1 aborts) for unhashable info or an unsupported algorithm."""
    data = caps2_input(info)
    return {algo: _digest(algo, data) for algo in algos}


def verify_caps2(info: DiscoInfo, algo: str, value: str) -> bool:
    """XEP-0390 §4.4: whether ``info`` hashes to ``value`` with ``algo``
    (false if the algorithm is unsupported or §4.1 aborts)."""
    if algo not in CAPS_HASHES:
        return False
    try:
        return caps2_hashes(info, (algo,))[algo] == value
    except DiscoError:
        return False


def caps2_element(hashes: Mapping[str, str]) -> Element:
    """``<c xmlns='urn:xmpp:caps'>`` with one XEP-0300 ``<hash algo=...>``
    per entry (XEP-0390 §5.4)."""
    c = Element(f"{{{NS_CAPS2}}}c")
    for algo, value in hashes.items():
        SubElement(c, f"{{{NS_HASHES}}}hash", {"algo": algo}).text = value
    return c


def parse_caps2(stanza: Element) -> dict[str, str]:
    """The XEP-0390 hash set in the ``<c xmlns='urn:xmpp:caps'/>`` child of
    ``stanza``: algorithm -> Base64 value (``{}`` if there is none; hashes
    without ``algo`` are skipped)."""
    c = stanza.find(f"{{{NS_CAPS2}}}c")
    if c is None:
        return {}
    out: dict[str, str] = {}
    for h in c.iterfind(f"{{{NS_HASHES}}}hash"):
        algo = h.get("algo")
        if algo:
            out.setdefault(algo, (h.text or "").strip())
    return out


def caps2_node(algo: str, value: str) -> str:
    """The capability hash node ``urn:xmpp:caps#<algo>.<value>`` (XEP-0390 §4.3)."""
    return f"{_CAPS2_NODE_PREFIX}{algo}.{value}"


def parse_caps2_node(node: str) -> tuple[str, str] | None:
    """Split a capability hash node into (algo, value), searching the
    separating full stop from the end (XEP-0390 §4.3); ``None`` if ``node``
    is not one."""
    if not node.startswith(_CAPS2_NODE_PREFIX):
        return None
    algo, dot, value = node[len(_CAPS2_NODE_PREFIX) :].rpartition(".")
    if not dot or not algo or not value:
        return None
    return algo, value
