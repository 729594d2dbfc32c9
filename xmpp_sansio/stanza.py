"""Stanzas: typed read-only views, builders and error stanzas (RFC 6120 §8, RFC 6121).

The element type is the stdlib :class:`xml.etree.ElementTree.Element`, tags in
Clark notation (``{jabber:client}message``). Nothing here mutates an element it
was given: builders and replies always make new elements (children of the
original may be shared by reference, which ElementTree allows).

Views (:class:`Message`, :class:`Presence`, :class:`Iq`) are built with
``from_element``, which validates the stanza and raises :class:`StanzaValueError`
carrying the stanza error condition to answer with (RFC 6120 §8.3.3).
:func:`parse_stanza` dispatches on the tag and raises :class:`UnknownStanza` for
anything that is not a message, presence or iq in ``jabber:client`` or
``jabber:server`` (the stream layer answers those with the stream error
``unsupported-stanza-type``, RFC 6120 §4.9.3.22).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Self
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import StanzaErrorCondition, StanzaErrorType, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import split_tag

__all__ = [
    "STANZA_NAMESPACES",
    "Iq",
    "IqType",
    "Message",
    "MessageType",
    "Presence",
    "PresenceShow",
    "PresenceType",
    "Stanza",
    "StanzaError",
    "StanzaKind",
    "StanzaValueError",
    "UnknownStanza",
    "can_reply_with_error",
    "error_reply",
    "iq_result",
    "make_iq",
    "make_message",
    "make_presence",
    "parse_error",
    "parse_stanza",
    "retag_stanza",
    "stanza_kind",
    "stream_error_element",
    "text_child",
    "with_attrs",
]

#: Namespaces in which top-level ``message``/``presence``/``iq`` are stanzas.
STANZA_NAMESPACES: frozenset[str] = frozenset({ns.CLIENT, ns.SERVER})

# Builders take a parameter called ``ns``; these keep the module's values reachable.
_CLIENT = ns.CLIENT
_XML_LANG = ns.XML_LANG


class StanzaKind(StrEnum):
    """The three stanza kinds (RFC 6120 §8.2); the value is the local name."""

    MESSAGE = "message"
    PRESENCE = "presence"
    IQ = "iq"


class MessageType(StrEnum):
    """Message ``type`` values (RFC 6121 §5.2.2). A missing type means ``normal``."""

    NORMAL = "normal"
    CHAT = "chat"
    GROUPCHAT = "groupchat"
    HEADLINE = "headline"
    ERROR = "error"


class PresenceType(StrEnum):
    """Presence ``type`` values (RFC 6121 §4.7.1).

    On the wire, available presence is the *absence* of the ``type``
    attribute; this library models it as :attr:`AVAILABLE` (value
    ``"available"``). :meth:`Presence.from_element` maps a missing ``type`` to
    :attr:`AVAILABLE` and rejects a literal ``type='available'`` (it is not a
    valid wire value); :func:`make_presence` leaves the attribute out for it.
    """

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    SUBSCRIBE = "subscribe"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBE = "unsubscribe"
    UNSUBSCRIBED = "unsubscribed"
    PROBE = "probe"
    ERROR = "error"

    @property
    def is_subscription(self) -> bool:
        """True for the four subscription-management types (RFC 6121 §3)."""
        return self in _SUBSCRIPTION_TYPES


_SUBSCRIPTION_TYPES = frozenset(
    {
        PresenceType.SUBSCRIBE,
        PresenceType.SUBSCRIBED,
        PresenceType.UNSUBSCRIBE,
        PresenceType.UNSUBSCRIBED,
    }
)


#: The presence types that may appear in a ``type`` attribute.
_WIRE_PRESENCE_TYPES = frozenset(t.value for t in PresenceType if t is not PresenceType.AVAILABLE)


class PresenceShow(StrEnum):
    """Values of the presence ``<show/>`` child (RFC 6121 §4.7.2.1)."""

    AWAY = "away"
    CHAT = "chat"
    DND = "dnd"
    XA = "xa"


class IqType(StrEnum):
    """IQ ``type`` values (RFC 6120 §8.2.3)."""

    GET = "get"
    SET = "set"
    RESULT = "result"
    ERROR = "error"


class StanzaValueError(ValueError):
    """A stanza is invalid; ``condition`` is the stanza error to answer with."""

    def __init__(self, condition: StanzaErrorCondition, message: str) -> None:
        super().__init__(f"{condition}: {message}")
        self.condition = condition


class UnknownStanza(ValueError):
    """The element is not a message, presence or iq in a stanza namespace."""


# ---------------------------------------------------------------------------
# helpers


def with_attrs(el: Element, /, **changes: str | None) -> Element:
    """Return a shallow copy of ``el`` with attributes changed.

    ``None`` removes an attribute; ``from_`` names the ``from`` attribute. The
    copy has its own attribute dict and child list (the children themselves
    are shared); ``el`` is not modified. (``copy.copy`` of a C-accelerated
    Element shares the attribute dict, so it is not used.)
    """
    attrib = dict(el.attrib)
    for key, value in changes.items():
        name = "from" if key == "from_" else key
        if value is None:
            attrib.pop(name, None)
        else:
            attrib[name] = value
    new = Element(el.tag, attrib)
    new.text = el.text
    new.extend(list(el))
    return new


# Qualified tag -> (kind, namespace), for every stanza tag (a dict lookup per
# stanza instead of splitting the tag and building an enum).
_STANZA_TAGS: dict[str, tuple[StanzaKind, str]] = {
    f"{{{namespace}}}{kind.value}": (kind, namespace)
    for namespace in STANZA_NAMESPACES
    for kind in StanzaKind
}
_MESSAGE_TYPES: dict[str, MessageType] = {t.value: t for t in MessageType}
# Members read for every routed message, as module globals: in Python 3.11
# ``MessageType.NORMAL`` goes through ``EnumType.__getattr__``'s slot (~1,000
# instructions, callgrind), a global costs a tenth of that.
_MESSAGE_KIND: Final = StanzaKind.MESSAGE
_PRESENCE_KIND: Final = StanzaKind.PRESENCE
_IQ_KIND: Final = StanzaKind.IQ
_NORMAL: Final = MessageType.NORMAL
_AVAILABLE: Final = PresenceType.AVAILABLE
_IQ_TYPES: dict[str, IqType] = {t.value: t for t in IqType}


def retag_stanza(el: Element, namespace: str) -> Element:
    """``el`` in the stanza namespace ``namespace`` (``jabber:client``,
    ``jabber:server`` or ``jabber:component:accept``, XEP-0114): the element
    and the children that inherit its namespace (``<body/>``, ``<error/>``
    ...) get new tags, the rest is shared by reference. ``el`` is not
    modified; it is returned as is when already in ``namespace``."""
    old = split_tag(el.tag)[0]
    if old == namespace:
        return el
    return _retag_tree(el, "{" + old + "}", "{" + namespace + "}")


def _retag_tree(el: Element, old: str, new: str) -> Element:
    copy = Element(new + el.tag[len(old) :], dict(el.attrib))
    copy.text = el.text
    copy.tail = el.tail
    for child in el:
        copy.append(_retag_tree(child, old, new) if child.tag.startswith(old) else child)
    return copy


def stanza_kind(el: Element) -> StanzaKind | None:
    """The kind of a top-level stanza element, or ``None`` if it is not one."""
    found = _STANZA_TAGS.get(el.tag)
    return None if found is None else found[0]


def _require_kind(el: Element, kind: StanzaKind) -> str:
    found = _STANZA_TAGS.get(el.tag)
    if found is None or found[0] is not kind:
        raise UnknownStanza(f"not a {kind} stanza: {el.tag!r}")
    return found[1]


def _parse_jid(el: Element, attr: str) -> JID | None:
    value = el.get(attr)
    if value is None:
        return None
    try:
        return JID.parse(value)
    except ValueError as exc:  # InvalidJID, or anything else the parser rejects
        raise StanzaValueError(
            StanzaErrorCondition.JID_MALFORMED, f"invalid '{attr}' address {value!r}: {exc}"
        ) from exc


def _select_lang(children: list[Element], lang: str | None) -> Element | None:
    """The first child in ``lang`` or without ``xml:lang``; else the first child."""
    for child in children:
        child_lang = child.get(ns.XML_LANG)
        if child_lang is None or child_lang == lang:
            return child
    return children[0] if children else None


def _text(el: Element | None) -> str | None:
    return None if el is None else (el.text or "")


def _error_of(el: Element, is_error: bool = True) -> StanzaError | None:
    """The parsed ``<error/>`` child (RFC 6120 §8.3.2); None when there is none
    or ``is_error`` is false."""
    if not is_error or el.find(f"{{{split_tag(el.tag)[0]}}}error") is None:
        return None
    return parse_error(el)


def _common(
    el: Element, from_: JID | None = None
) -> tuple[JID | None, JID | None, str | None, str | None]:
    if from_ is None:
        from_ = _parse_jid(el, "from")
    return _parse_jid(el, "to"), from_, el.get("id"), el.get(ns.XML_LANG)


# ---------------------------------------------------------------------------
# views
#
# Not frozen, but never changed once built (hashable as if they were): one is
# built per routed stanza, and a frozen dataclass's ``__init__`` (one
# ``object.__setattr__`` a field) costs several times a plain one's.


@dataclass(slots=True, unsafe_hash=True)
class Message:
    """A validated view of a ``<message/>`` stanza (RFC 6121 §5).

    A missing ``type``, and (RFC 6121 §5.2.2: the recipient "MUST consider"
    it so) an unknown one, are :attr:`MessageType.NORMAL`.
    """

    element: Element
    to: JID | None
    from_: JID | None
    type: MessageType
    id: str | None
    lang: str | None

    @classmethod
    def from_element(cls, el: Element, from_: JID | None = None) -> Self:
        """Validate ``el``; raise :class:`StanzaValueError` if it is invalid.
        ``from_``: the JID its ``from`` attribute holds, already validated."""
        found = _STANZA_TAGS.get(el.tag)  # _require_kind, inline: every routed message
        if found is None or found[0] is not _MESSAGE_KIND:
            raise UnknownStanza(f"not a {StanzaKind.MESSAGE} stanza: {el.tag!r}")
        get = el.get
        raw = get("type")
        type_ = _NORMAL if raw is None else _MESSAGE_TYPES.get(raw, _NORMAL)
        if from_ is None:  # _common, inline
            from_ = _parse_jid(el, "from")
        to = get("to")
        if to is not None:  # _parse_jid, inline: the same error for a bad address
            try:
                parsed_to: JID | None = JID.parse(to)
            except ValueError as exc:
                raise StanzaValueError(
                    StanzaErrorCondition.JID_MALFORMED, f"invalid 'to' address {to!r}: {exc}"
                ) from exc
        else:
            parsed_to = None
        return cls(el, parsed_to, from_, type_, get("id"), get(ns.XML_LANG))

    @property
    def namespace(self) -> str:
        """The stanza's content namespace (``jabber:client`` or ``jabber:server``)."""
        return split_tag(self.element.tag)[0]

    @property
    def body_element(self) -> Element | None:
        """The first ``<body/>`` in the stanza's language or without
        ``xml:lang`` (RFC 6121 §5.2.3); failing that the first body; else None."""
        return _select_lang(self.element.findall(f"{{{self.namespace}}}body"), self.lang)

    @property
    def body(self) -> str | None:
        """Text of :attr:`body_element` (RFC 6121 §5.2.3), if any."""
        return _text(self.body_element)

    @property
    def subject_element(self) -> Element | None:
        """The ``<subject/>`` chosen like :attr:`body_element` (RFC 6121 §5.2.4)."""
        return _select_lang(self.element.findall(f"{{{self.namespace}}}subject"), self.lang)

    @property
    def subject(self) -> str | None:
        """Text of :attr:`subject_element` (RFC 6121 §5.2.4), if any."""
        return _text(self.subject_element)

    @property
    def thread(self) -> str | None:
        """Text of the ``<thread/>`` child (RFC 6121 §5.2.5), if any."""
        return _text(self.element.find(f"{{{self.namespace}}}thread"))

    @property
    def error(self) -> StanzaError | None:
        """The parsed ``<error/>`` child (RFC 6120 §8.3, normally of an error message)."""
        return _error_of(self.element)


_PRIORITY_RE = re.compile(r"[+-]?[0-9]+")


@dataclass(slots=True, unsafe_hash=True)
class Presence:
    """A validated view of a ``<presence/>`` stanza (RFC 6121 §4.7).

    ``type`` is :attr:`PresenceType.AVAILABLE` when the attribute is missing.
    ``priority`` is the ``<priority/>`` child, an integer in -128..127
    (RFC 6121 §4.7.2.3), 0 when absent; ``show`` is ``None`` when absent.
    """

    element: Element
    to: JID | None
    from_: JID | None
    type: PresenceType
    id: str | None
    lang: str | None
    show: PresenceShow | None
    priority: int

    @classmethod
    def from_element(cls, el: Element, from_: JID | None = None) -> Self:
        """Validate ``el``; raise :class:`StanzaValueError` if it is invalid.
        ``from_``: the JID its ``from`` attribute holds, already validated."""
        namespace = _require_kind(el, _PRESENCE_KIND)
        to, from_, id_, lang = _common(el, from_)
        raw = el.get("type")
        if raw is None:
            type_ = _AVAILABLE
        elif raw in _WIRE_PRESENCE_TYPES:
            type_ = PresenceType(raw)
        else:
            raise StanzaValueError(
                StanzaErrorCondition.BAD_REQUEST, f"unknown presence type {raw!r}"
            )
        show: PresenceShow | None = None
        show_el = el.find(f"{{{namespace}}}show")
        # An empty <show/> is not in the RFC 6121 §4.7.2.1 enumeration, but stock
        # clients send it (go-sendxmpp: <show></show>) meaning "no show": read it
        # as absent rather than refuse the presence with bad-request.
        if show_el is not None and (show_el.text or "").strip():
            try:
                show = PresenceShow((show_el.text or "").strip())
            except ValueError:
                raise StanzaValueError(
                    StanzaErrorCondition.BAD_REQUEST, f"invalid <show/> {show_el.text!r}"
                ) from None
        priority = 0
        priority_el = el.find(f"{{{namespace}}}priority")
        if priority_el is not None:
            text = (priority_el.text or "").strip()
            if not _PRIORITY_RE.fullmatch(text) or not -128 <= int(text) <= 127:
                raise StanzaValueError(
                    StanzaErrorCondition.BAD_REQUEST, f"invalid <priority/> {priority_el.text!r}"
                )
            priority = int(text)
        return cls(el, to, from_, type_, id_, lang, show, priority)

    @property
    def namespace(self) -> str:
        """The stanza's content namespace (``jabber:client`` or ``jabber:server``)."""
        return split_tag(self.element.tag)[0]

    @property
    def status_element(self) -> Element | None:
        """The ``<status/>`` in the stanza's language or without ``xml:lang``
        (RFC 6121 §4.7.2.2); failing that the first; else None."""
        return _select_lang(self.element.findall(f"{{{self.namespace}}}status"), self.lang)

    @property
    def status(self) -> str | None:
        """Text of :attr:`status_element`, if any."""
        return _text(self.status_element)

    @property
    def show_element(self) -> Element | None:
        """The ``<show/>`` child :attr:`show` was read from, if any."""
        return self.element.find(f"{{{self.namespace}}}show")

    @property
    def priority_element(self) -> Element | None:
        """The ``<priority/>`` child :attr:`priority` was read from, if any."""
        return self.element.find(f"{{{self.namespace}}}priority")

    @property
    def error(self) -> StanzaError | None:
        """The parsed ``<error/>`` child (RFC 6120 §8.3, normally of an error presence)."""
        return _error_of(self.element)


@dataclass(slots=True, unsafe_hash=True)
class Iq:
    """A validated view of an ``<iq/>`` stanza (RFC 6120 §8.2.3).

    ``id`` is required. ``get``/``set`` carry exactly one payload child,
    ``result`` zero or one, ``error`` an ``<error/>`` child and optionally the
    original payload. ``payload`` is that child (never the ``<error/>``).
    """

    element: Element
    to: JID | None
    from_: JID | None
    type: IqType
    id: str
    lang: str | None
    payload: Element | None

    @classmethod
    def from_element(cls, el: Element, from_: JID | None = None) -> Self:
        """Validate ``el``; raise :class:`StanzaValueError` if it is invalid.
        ``from_``: the JID its ``from`` attribute holds, already validated."""
        namespace = _require_kind(el, _IQ_KIND)
        to, from_, id_, lang = _common(el, from_)
        if id_ is None:
            raise StanzaValueError(StanzaErrorCondition.BAD_REQUEST, "iq without 'id'")
        raw = el.get("type")
        type_ = None if raw is None else _IQ_TYPES.get(raw)
        if type_ is None:
            raise StanzaValueError(StanzaErrorCondition.BAD_REQUEST, f"bad iq type {raw!r}")
        children = list(el)
        error_tag = f"{{{namespace}}}error"
        if type_ in (IqType.GET, IqType.SET):
            if len(children) != 1:
                raise StanzaValueError(
                    StanzaErrorCondition.BAD_REQUEST,
                    f"iq {type_} must have exactly one child, has {len(children)}",
                )
            payload: Element | None = children[0]
        elif type_ is IqType.RESULT:
            if len(children) > 1:
                raise StanzaValueError(
                    StanzaErrorCondition.BAD_REQUEST, "iq result with more than one child"
                )
            payload = children[0] if children else None
        else:
            if not any(child.tag == error_tag for child in children):
                raise StanzaValueError(
                    StanzaErrorCondition.BAD_REQUEST, "iq error without <error/>"
                )
            payload = next((c for c in children if c.tag != error_tag), None)
        return cls(el, to, from_, type_, id_, lang, payload)

    @property
    def is_request(self) -> bool:
        """True for ``get`` and ``set``."""
        return self.type in (IqType.GET, IqType.SET)

    @property
    def error_element(self) -> Element | None:
        """The ``<error/>`` child of an ``error`` iq (RFC 6120 §8.3.2); else None."""
        if self.type is not IqType.ERROR:
            return None
        return self.element.find(f"{{{split_tag(self.element.tag)[0]}}}error")

    @property
    def error(self) -> StanzaError | None:
        """:attr:`error_element`, parsed (RFC 6120 §8.3.2)."""
        return _error_of(self.element, self.type is IqType.ERROR)


Stanza = Message | Presence | Iq


def parse_stanza(el: Element, from_: JID | None = None) -> Message | Presence | Iq:
    """Validate a top-level stanza and return its view. ``from_``, if given,
    is the JID its ``from`` attribute holds, already validated (the router
    stamps a bound session's JID, RFC 6120 §8.1.2.1): it is not parsed again.

    Raises :class:`UnknownStanza` when ``el`` is not a message, presence or iq
    in ``jabber:client``/``jabber:server``, and :class:`StanzaValueError` when it
    is one but invalid.
    """
    kind = stanza_kind(el)
    if kind is _MESSAGE_KIND:
        return Message.from_element(el, from_)
    if kind is _PRESENCE_KIND:
        return Presence.from_element(el, from_)
    if kind is _IQ_KIND:
        return Iq.from_element(el, from_)
    raise UnknownStanza(f"not a stanza: {el.tag!r}")


# ---------------------------------------------------------------------------
# builders


def _attrs(**values: str | JID | None) -> dict[str, str]:
    """Attributes in the order given, ``None`` left out, ``from_`` as ``from``, ``lang``
    as ``xml:lang`` (the one attribute builder of stanzas and objects)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is not None:
            out[_ATTR_NAMES.get(key, key)] = str(value)
    return out


_ATTR_NAMES = {"from_": "from", "lang": _XML_LANG}


def text_child(namespace: str, local: str, text: str) -> Element:
    """``<local xmlns=namespace>text</local>``, e.g. a ``<body/>``."""
    child = Element(f"{{{namespace}}}{local}")
    child.text = text
    return child


def make_message(
    to: JID | str | None,
    body: str | None = None,
    type: MessageType = MessageType.NORMAL,
    from_: JID | str | None = None,
    id: str | None = None,
    ns: str = _CLIENT,
    *,
    lang: str | None = None,
) -> Element:
    """Build a ``<message/>`` (the ``type`` attribute is always written)."""
    el = Element(f"{{{ns}}}message", _attrs(to=to, from_=from_, type=type.value, id=id, lang=lang))
    if body is not None:
        el.append(text_child(ns, "body", body))
    return el


def make_presence(
    to: JID | str | None = None,
    type: PresenceType = PresenceType.AVAILABLE,
    *,
    show: PresenceShow | None = None,
    status: str | None = None,
    priority: int | None = None,
    from_: JID | str | None = None,
    id: str | None = None,
    ns: str = _CLIENT,
    lang: str | None = None,
) -> Element:
    """Build a ``<presence/>``; no ``type`` attribute for available presence."""
    wire_type = None if type is PresenceType.AVAILABLE else type.value
    el = Element(f"{{{ns}}}presence", _attrs(to=to, from_=from_, type=wire_type, id=id, lang=lang))
    for name, value in (
        ("show", None if show is None else show.value),
        ("status", status),
        ("priority", None if priority is None else str(priority)),
    ):
        if value is not None:
            el.append(text_child(ns, name, value))
    return el


def make_iq(
    type: IqType,
    id: str,
    payload: Element | None = None,
    to: JID | str | None = None,
    from_: JID | str | None = None,
    ns: str = _CLIENT,
    *,
    lang: str | None = None,
) -> Element:
    """Build an ``<iq/>`` with at most one payload child."""
    el = Element(f"{{{ns}}}iq", _attrs(type=type.value, id=id, to=to, from_=from_, lang=lang))
    if payload is not None:
        el.append(payload)
    return el


def iq_result(request_el: Element, payload: Element | None = None) -> Element:
    """The ``result`` reply to an iq ``get``/``set`` (RFC 6120 §8.2.3).

    Same tag and ``id``; ``to`` is the request's ``from`` and ``from`` its ``to``
    (either left out when the request had none).
    """
    if stanza_kind(request_el) is not StanzaKind.IQ or request_el.get("type") not in (
        IqType.GET,
        IqType.SET,
    ):
        raise ValueError("iq_result needs an iq get or set")
    el = Element(
        request_el.tag,
        _attrs(
            type=IqType.RESULT.value,
            id=request_el.get("id"),
            to=request_el.get("from"),
            from_=request_el.get("to"),
        ),
    )
    if payload is not None:
        el.append(payload)
    return el


def can_reply_with_error(el: Element) -> bool:
    """Whether an error stanza may be sent in reply to ``el``.

    False for any stanza of type ``error`` (RFC 6120 §8.3.1: an entity MUST NOT
    respond to an error stanza with an error) and for an iq ``result``
    (RFC 6120 §8.2.3: responses are not answered with responses).
    """
    type_ = el.get("type")
    if type_ == "error":
        return False
    return not (stanza_kind(el) is StanzaKind.IQ and type_ == IqType.RESULT)


def error_reply(
    stanza_el: Element,
    condition: StanzaErrorCondition,
    *,
    type: StanzaErrorType | None = None,
    text: str | None = None,
    by: str | None = None,
) -> Element:
    """The error stanza in reply to ``stanza_el`` (RFC 6120 §8.3.1, §8.3.2).

    Same tag, ``id`` and other attributes (e.g. ``xml:lang``); ``to`` is the
    original ``from`` and ``from`` the original ``to`` (left out when missing);
    ``type='error'``. Message and presence keep the original children (which
    RFC 6120 §8.3.1 allows); for an iq the original payload is omitted. Then
    ``<error type=...>`` (``type`` defaults to the condition's RFC 6120 §8.3.3
    type) holds the defined condition and the optional ``<text/>``.

    Raises :class:`ValueError` if :func:`can_reply_with_error` is false.
    """
    if not can_reply_with_error(stanza_el):
        raise ValueError("must not reply to an error or an iq result with an error")
    error_type = condition.default_type if type is None else type
    attrib = dict(stanza_el.attrib)
    attrib.pop("to", None)
    attrib.pop("from", None)
    attrib.update(_attrs(to=stanza_el.get("from"), from_=stanza_el.get("to"), type="error"))
    el = Element(stanza_el.tag, attrib)
    if stanza_kind(stanza_el) is not StanzaKind.IQ:
        el.text = stanza_el.text
        el.extend(list(stanza_el))
    namespace = split_tag(stanza_el.tag)[0]
    error_attrs = {"type": error_type.value}
    if by is not None:
        error_attrs["by"] = by
    error = Element(f"{{{namespace}}}error" if namespace else "error", error_attrs)
    error.append(Element(f"{{{ns.STANZA_ERRORS}}}{condition.value}"))
    if text is not None:
        text_el = Element(f"{{{ns.STANZA_ERRORS}}}text")
        text_el.text = text
        error.append(text_el)
    el.append(error)
    return el


@dataclass(frozen=True, slots=True)
class StanzaError:
    """The contents of a stanza ``<error/>`` (RFC 6120 §8.3.2)."""

    type: StanzaErrorType
    condition: StanzaErrorCondition
    text: str | None = None
    app_condition: Element | None = None
    by: str | None = None


def parse_error(el: Element) -> StanzaError:
    """Read the ``<error/>`` of an error stanza (or the ``<error/>`` itself).

    An unknown or missing defined condition gives ``undefined-condition``; an
    unknown error type gives the condition's default type. Raises
    :class:`StanzaValueError` (bad-request) when there is no ``<error/>``.
    """
    namespace, local = split_tag(el.tag)
    if local == "error" and stanza_kind(el) is None:
        error: Element | None = el
    else:
        error = el.find(f"{{{namespace}}}error" if namespace else "error")
    if error is None:
        raise StanzaValueError(StanzaErrorCondition.BAD_REQUEST, "no <error/> child")
    condition = StanzaErrorCondition.UNDEFINED_CONDITION
    found_condition = False
    text: str | None = None
    app: Element | None = None
    for child in error:
        child_ns, child_local = split_tag(child.tag)
        if child_ns == ns.STANZA_ERRORS:
            if child_local == "text":
                if text is None:
                    text = child.text or ""
            elif not found_condition:
                found_condition = True
                try:
                    condition = StanzaErrorCondition(child_local)
                except ValueError:
                    condition = StanzaErrorCondition.UNDEFINED_CONDITION
        elif app is None:
            app = child
    try:
        error_type = StanzaErrorType(error.get("type", ""))
    except ValueError:
        error_type = condition.default_type
    return StanzaError(error_type, condition, text, app, error.get("by"))


def stream_error_element(
    condition: StreamErrorCondition,
    text: str | None = None,
    *,
    lang: str | None = None,
    extra: Element | None = None,
) -> Element:
    """``<stream:error>`` with the condition, optional text (in ``lang``) and an
    optional application-specific condition ``extra`` (RFC 6120 §4.9.2, §4.9.4)."""
    el = Element(f"{{{ns.STREAMS}}}error")
    el.append(Element(f"{{{ns.STREAM_ERRORS}}}{condition.value}"))
    if text is not None:
        el.append(Element(f"{{{ns.STREAM_ERRORS}}}text", _attrs(lang=lang)))
        el[-1].text = text
    if extra is not None:
        el.append(extra)
    return el
