"""Typed, JSON-friendly stanza objects: everyday code without XML.

:class:`MessageObject`, :class:`PresenceObject` and :class:`IqObject` are frozen,
slotted, keyword-only dataclasses holding what applications read and write
(body, subject, show, status, chat state, ...). Each converts both ways:

* ``from_element(el)`` / ``to_element(ns=...)``: to and from the stdlib
  :class:`~xml.etree.ElementTree.Element` a stream hands out or sends;
* ``to_dict()`` / ``from_dict(d)``: to and from plain JSON-serialisable dicts
  (JIDs as strings, enums as their wire values, unknown extension elements as
  serialised XML strings).

Anything that is not modelled is kept verbatim in ``extensions`` (a tuple of
elements), so a stanza read and written again loses nothing an application
could care about: unknown payloads, error elements, bodies in other languages.

Conventions:

* Objects are namespace-neutral. ``to_element`` writes ``jabber:client`` unless
  told otherwise; ``from_element`` accepts ``jabber:client`` and
  ``jabber:server`` stanzas. Extension children in the stanza's own namespace
  (``<error/>``, extra ``<body/>``\\ s) are held in ``jabber:client`` and written
  in the namespace ``to_element`` is asked for.
* Equality and hashing compare extension elements by their XML content
  (:func:`xmpp_sansio.xml.element.canonical`), not by identity.
* ``from_element`` copies the extension elements it keeps (the object does not
  alias the stanza it came from); ``to_element`` puts the object's extension
  elements into the new stanza by reference (ElementTree allows sharing), so do
  not mutate the result's children if the object is still in use.
* A message's ``type`` is always written (``normal`` when it was missing on the
  wire, RFC 6121 §5.2.2); available presence is written without ``type``.
* ``body``/``subject``/``status`` are the child in the stanza's language or
  without ``xml:lang`` (RFC 6121 §5.2.3), else the first one; the others stay in
  ``extensions``.

Supported extensions: chat states (XEP-0085), delayed delivery (XEP-0203),
entity capabilities (XEP-0115, the ``<c/>`` element's ``node``/``ver``/``hash``)
and ping (XEP-0199, as the typed iq payload :class:`Ping`). An extension element
of one of these kinds that carries something the fields cannot hold (an unknown
attribute, child elements, a second copy) is kept verbatim instead.

Invalid input raises :class:`~xmpp_sansio.stanza.StanzaValueError` (from
``from_element``, with the stanza error condition to answer with) or
:class:`ValueError` (from ``from_dict``, naming the offending key).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Self, TypeAlias
from xml.etree.ElementTree import Element

from xmpp_sansio._object_dicts import (
    _DictReader,
    _put,
    _put_extensions,
    _retag,
    parse_fragment,
    serialize_fragment,
)
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    Message,
    MessageType,
    Presence,
    PresenceShow,
    PresenceType,
    StanzaError,
    StanzaKind,
    StanzaValueError,
    UnknownStanza,
    _attrs,
    _text,
    make_message,
    make_presence,
    parse_error,
    stanza_kind,
    text_child,
)
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import canonical, split_tag

__all__ = [
    "CAPS_NS",
    "CHATSTATES_NS",
    "ChatState",
    "IqObject",
    "MessageObject",
    "Ping",
    "PresenceObject",
    "StanzaObject",
    "object_from_dict",
    "object_from_element",
    "parse_fragment",
    "serialize_fragment",
]

CHATSTATES_NS: Final = "http://jabber.org/protocol/chatstates"
"""XEP-0085 chat state notifications."""
CAPS_NS: Final = "http://jabber.org/protocol/caps"
"""XEP-0115 entity capabilities."""

_CLIENT: Final = ns.CLIENT
_DELAY_TAG: Final = f"{{{ns.DELAY}}}delay"
_CAPS_TAG: Final = f"{{{CAPS_NS}}}c"
_PING_TAG: Final = f"{{{ns.PING}}}ping"


class ChatState(StrEnum):
    """XEP-0085 chat states; the value is the element's local name."""

    ACTIVE = "active"
    COMPOSING = "composing"
    PAUSED = "paused"
    INACTIVE = "inactive"
    GONE = "gone"


_CHAT_STATES: Final = frozenset(state.value for state in ChatState)


@dataclass(frozen=True, slots=True)
class Ping:
    """The XEP-0199 ``<ping xmlns='urn:xmpp:ping'/>`` iq payload."""

    def to_element(self) -> Element:
        """The ``<ping/>`` element."""
        return Element(_PING_TAG)


# ---------------------------------------------------------------------------
# helpers


def _keep(el: Element) -> Element:
    """A private copy of an extension element: no tail, stanza namespace normalised."""
    kept = copy.deepcopy(el)
    kept.tail = None
    return _retag(kept, _CLIENT)


def _has_no_content(el: Element) -> bool:
    return len(el) == 0 and not (el.text or "").strip()


def _jid_or_none(value: str | None) -> JID | None:
    if value is None:
        return None
    try:
        return JID.parse(value)
    except ValueError:
        return None


def _extension_children(extensions: tuple[Element, ...], namespace: str) -> list[Element]:
    return [_retag(ext, namespace) for ext in extensions]


def _error_from_extensions(extensions: tuple[Element, ...]) -> StanzaError | None:
    for ext in extensions:
        if ext.tag == f"{{{_CLIENT}}}error":
            return parse_error(ext)
    return None


def _element_key(el: Element | None) -> tuple[object, ...] | None:
    return None if el is None else canonical(el)


class _Equality:
    """Equality and hashing through ``_key()``, comparing elements by content."""

    __slots__ = ()

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Equality)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))


# ---------------------------------------------------------------------------
# message


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MessageObject(_Equality):
    """A message stanza (RFC 6121 §5) as plain data.

    ``thread_parent`` is the ``parent`` attribute of ``<thread/>`` (RFC 6121
    §5.2.5). ``delay`` is the XEP-0203 ``stamp`` (an XEP-0082 date-time string,
    not parsed), ``delay_from`` and ``delay_reason`` its ``from`` and text.
    ``chat_state`` is the XEP-0085 state, if any.
    """

    to: JID | None = None
    from_: JID | None = None
    type: MessageType = MessageType.NORMAL
    id: str | None = None
    lang: str | None = None
    body: str | None = None
    subject: str | None = None
    thread: str | None = None
    thread_parent: str | None = None
    chat_state: ChatState | None = None
    delay: str | None = None
    delay_from: JID | None = None
    delay_reason: str | None = None
    extensions: tuple[Element, ...] = ()

    def __post_init__(self) -> None:
        if self.thread_parent is not None and self.thread is None:
            raise ValueError("thread_parent needs a thread")
        if (self.delay_from is not None or self.delay_reason is not None) and self.delay is None:
            raise ValueError("delay_from and delay_reason need a delay stamp")
        if self.delay_reason == "":
            object.__setattr__(self, "delay_reason", None)

    def _key(self) -> tuple[object, ...]:
        return (
            self.to,
            self.from_,
            self.type,
            self.id,
            self.lang,
            self.body,
            self.subject,
            self.thread,
            self.thread_parent,
            self.chat_state,
            self.delay,
            self.delay_from,
            self.delay_reason,
            tuple(canonical(ext) for ext in self.extensions),
        )

    @property
    def error(self) -> StanzaError | None:
        """The ``<error/>`` of an error message (RFC 6120 §8.3), parsed; else None."""
        return _error_from_extensions(self.extensions)

    @classmethod
    def from_element(cls, el: Element) -> Self:
        """Read a ``<message/>``; raise :class:`StanzaValueError` if it is invalid."""
        view = Message.from_element(el)
        thread_tag = f"{{{view.namespace}}}thread"
        body_el = view.body_element
        subject_el = view.subject_element
        thread_el: Element | None = None
        state_el: Element | None = None
        delay_el: Element | None = None
        extensions: list[Element] = []
        for child in el:
            if child is body_el or child is subject_el:
                continue
            if (
                thread_el is None
                and child.tag == thread_tag
                and set(child.attrib) <= {"parent"}
                and len(child) == 0
            ):
                thread_el = child
            elif (
                state_el is None
                and child.tag.startswith(f"{{{CHATSTATES_NS}}}")
                and split_tag(child.tag)[1] in _CHAT_STATES
                and not child.attrib
                and _has_no_content(child)
            ):
                state_el = child
            elif (
                delay_el is None
                and child.tag == _DELAY_TAG
                and child.get("stamp") is not None
                and set(child.attrib) <= {"stamp", "from"}
                and len(child) == 0
                and (child.get("from") is None or _jid_or_none(child.get("from")) is not None)
            ):
                delay_el = child
            else:
                extensions.append(_keep(child))
        return cls(
            to=view.to,
            from_=view.from_,
            type=view.type,
            id=view.id,
            lang=view.lang,
            body=_text(body_el),
            subject=_text(subject_el),
            thread=None if thread_el is None else (thread_el.text or ""),
            thread_parent=None if thread_el is None else thread_el.get("parent"),
            chat_state=None if state_el is None else ChatState(split_tag(state_el.tag)[1]),
            delay=None if delay_el is None else delay_el.get("stamp"),
            delay_from=None if delay_el is None else _jid_or_none(delay_el.get("from")),
            delay_reason=None if delay_el is None else (delay_el.text or None),
            extensions=tuple(extensions),
        )

    def to_element(self, ns: str = _CLIENT) -> Element:
        """The ``<message/>`` in namespace ``ns`` (``jabber:client`` by default)."""
        el = make_message(self.to, self.body, self.type, self.from_, self.id, ns, lang=self.lang)
        if self.subject is not None:
            el.append(text_child(ns, "subject", self.subject))
        if self.thread is not None:
            thread = text_child(ns, "thread", self.thread)
            if self.thread_parent is not None:
                thread.set("parent", self.thread_parent)
            el.append(thread)
        if self.chat_state is not None:
            el.append(Element(f"{{{CHATSTATES_NS}}}{self.chat_state.value}"))
        if self.delay is not None:
            delay = Element(_DELAY_TAG, {"stamp": self.delay})
            if self.delay_from is not None:
                delay.set("from", str(self.delay_from))
            delay.text = self.delay_reason
            el.append(delay)
        el.extend(_extension_children(self.extensions, ns))
        return el

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``None`` fields and empty extensions left out)."""
        out: dict[str, Any] = {"kind": "message", "type": self.type.value}
        for key, value in (
            ("to", self.to),
            ("from", self.from_),
            ("id", self.id),
            ("lang", self.lang),
            ("body", self.body),
            ("subject", self.subject),
            ("thread", self.thread),
            ("thread_parent", self.thread_parent),
            ("chat_state", None if self.chat_state is None else self.chat_state.value),
            ("delay", self.delay),
            ("delay_from", self.delay_from),
            ("delay_reason", self.delay_reason),
        ):
            _put(out, key, value)
        _put_extensions(out, self.extensions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of :meth:`to_dict`; raise :class:`ValueError` naming a bad key."""
        r = _DictReader(data, "message", _MESSAGE_KEYS)
        return cls(
            to=r.jid("to"),
            from_=r.jid("from"),
            type=r.enum("type", MessageType) or MessageType.NORMAL,
            id=r.str_("id"),
            lang=r.str_("lang"),
            body=r.str_("body"),
            subject=r.str_("subject"),
            thread=r.str_("thread"),
            thread_parent=r.str_("thread_parent"),
            chat_state=r.enum("chat_state", ChatState),
            delay=r.str_("delay"),
            delay_from=r.jid("delay_from"),
            delay_reason=r.str_("delay_reason"),
            extensions=r.extensions(),
        )


_MESSAGE_KEYS: Final = frozenset(
    {
        "kind",
        "to",
        "from",
        "type",
        "id",
        "lang",
        "body",
        "subject",
        "thread",
        "thread_parent",
        "chat_state",
        "delay",
        "delay_from",
        "delay_reason",
        "extensions",
    }
)


# ---------------------------------------------------------------------------
# presence


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PresenceObject(_Equality):
    """A presence stanza (RFC 6121 §4) as plain data.

    ``type`` is :attr:`PresenceType.AVAILABLE` for presence without a ``type``
    attribute. ``priority`` is ``None`` when there is no ``<priority/>``
    (which means 0, RFC 6121 §4.7.2.3). ``caps_node``, ``caps_ver`` and
    ``caps_hash`` are the XEP-0115 ``<c/>`` attributes, if present.
    """

    to: JID | None = None
    from_: JID | None = None
    type: PresenceType = PresenceType.AVAILABLE
    id: str | None = None
    lang: str | None = None
    show: PresenceShow | None = None
    status: str | None = None
    priority: int | None = None
    caps_node: str | None = None
    caps_ver: str | None = None
    caps_hash: str | None = None
    extensions: tuple[Element, ...] = ()

    def __post_init__(self) -> None:
        if self.priority is not None and not -128 <= self.priority <= 127:
            raise ValueError(f"priority must be in -128..127, got {self.priority}")

    def _key(self) -> tuple[object, ...]:
        return (
            self.to,
            self.from_,
            self.type,
            self.id,
            self.lang,
            self.show,
            self.status,
            self.priority,
            self.caps_node,
            self.caps_ver,
            self.caps_hash,
            tuple(canonical(ext) for ext in self.extensions),
        )

    @property
    def error(self) -> StanzaError | None:
        """The ``<error/>`` of an error presence (RFC 6120 §8.3), parsed; else None."""
        return _error_from_extensions(self.extensions)

    @property
    def has_caps(self) -> bool:
        """True when any XEP-0115 attribute is set."""
        return (self.caps_node, self.caps_ver, self.caps_hash) != (None, None, None)

    @classmethod
    def from_element(cls, el: Element) -> Self:
        """Read a ``<presence/>``; raise :class:`StanzaValueError` if it is invalid."""
        view = Presence.from_element(el)
        status_el = view.status_element
        show_el = view.show_element  # the ones the view validated
        priority_el = view.priority_element
        caps_el: Element | None = None
        extensions: list[Element] = []
        for child in el:
            if child is status_el or child is show_el or child is priority_el:
                continue
            if (
                caps_el is None
                and child.tag == _CAPS_TAG
                and set(child.attrib) <= {"node", "ver", "hash"}
                and _has_no_content(child)
            ):
                caps_el = child
            else:
                extensions.append(_keep(child))
        return cls(
            to=view.to,
            from_=view.from_,
            type=view.type,
            id=view.id,
            lang=view.lang,
            show=view.show,
            status=_text(status_el),
            priority=None if priority_el is None else view.priority,
            caps_node=None if caps_el is None else caps_el.get("node"),
            caps_ver=None if caps_el is None else caps_el.get("ver"),
            caps_hash=None if caps_el is None else caps_el.get("hash"),
            extensions=tuple(extensions),
        )

    def to_element(self, ns: str = _CLIENT) -> Element:
        """The ``<presence/>`` in namespace ``ns``; no ``type`` for available presence."""
        el = make_presence(
            self.to,
            self.type,
            show=self.show,
            status=self.status,
            priority=self.priority,
            from_=self.from_,
            id=self.id,
            ns=ns,
            lang=self.lang,
        )
        if self.has_caps:
            caps = {"hash": self.caps_hash, "node": self.caps_node, "ver": self.caps_ver}
            el.append(Element(_CAPS_TAG, {k: v for k, v in caps.items() if v is not None}))
        el.extend(_extension_children(self.extensions, ns))
        return el

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``None`` fields and empty extensions left out)."""
        out: dict[str, Any] = {"kind": "presence", "type": self.type.value}
        for key, value in (
            ("to", self.to),
            ("from", self.from_),
            ("id", self.id),
            ("lang", self.lang),
            ("show", None if self.show is None else self.show.value),
            ("status", self.status),
            ("priority", self.priority),
            ("caps_node", self.caps_node),
            ("caps_ver", self.caps_ver),
            ("caps_hash", self.caps_hash),
        ):
            _put(out, key, value)
        _put_extensions(out, self.extensions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of :meth:`to_dict`; raise :class:`ValueError` naming a bad key."""
        r = _DictReader(data, "presence", _PRESENCE_KEYS)
        priority = r.int_("priority")
        if priority is not None and not -128 <= priority <= 127:
            raise ValueError(f"key 'priority': must be in -128..127, got {priority}")
        return cls(
            to=r.jid("to"),
            from_=r.jid("from"),
            type=r.enum("type", PresenceType) or PresenceType.AVAILABLE,
            id=r.str_("id"),
            lang=r.str_("lang"),
            show=r.enum("show", PresenceShow),
            status=r.str_("status"),
            priority=priority,
            caps_node=r.str_("caps_node"),
            caps_ver=r.str_("caps_ver"),
            caps_hash=r.str_("caps_hash"),
            extensions=r.extensions(),
        )


_PRESENCE_KEYS: Final = frozenset(
    {
        "kind",
        "to",
        "from",
        "type",
        "id",
        "lang",
        "show",
        "status",
        "priority",
        "caps_node",
        "caps_ver",
        "caps_hash",
        "extensions",
    }
)


# ---------------------------------------------------------------------------
# iq


IqPayload: TypeAlias = Element | Ping


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class IqObject(_Equality):
    """An iq stanza (RFC 6120 §8.2.3) as plain data.

    ``payload`` is the one child of a ``get``/``set`` (required), the optional
    child of a ``result``, or the optional original payload of an ``error``;
    an XEP-0199 ping is the typed :class:`Ping`, anything else the element.
    ``error`` is the ``<error/>`` element of an ``error`` iq (required there,
    absent otherwise); :attr:`stanza_error` parses it.
    """

    to: JID | None = None
    from_: JID | None = None
    type: IqType
    id: str
    lang: str | None = None
    payload: IqPayload | None = None
    error: Element | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("an iq needs a non-empty id (RFC 6120 §8.2.3)")
        if self.type in (IqType.GET, IqType.SET) and self.payload is None:
            raise ValueError(f"an iq {self.type} needs a payload")
        if (self.type is IqType.ERROR) != (self.error is not None):
            raise ValueError("an iq has an error element exactly when its type is error")
        if self.error is not None and split_tag(self.error.tag)[1] != "error":
            raise ValueError(f"error must be an <error/> element, got {self.error.tag!r}")

    def _key(self) -> tuple[object, ...]:
        payload = self.payload
        return (
            self.to,
            self.from_,
            self.type,
            self.id,
            self.lang,
            payload if isinstance(payload, Ping) else _element_key(payload),
            _element_key(self.error),
        )

    @property
    def stanza_error(self) -> StanzaError | None:
        """:attr:`error`, parsed (RFC 6120 §8.3.2)."""
        return None if self.error is None else parse_error(self.error)

    @classmethod
    def from_element(cls, el: Element) -> Self:
        """Read an ``<iq/>``; raise :class:`StanzaValueError` if it is invalid."""
        view = Iq.from_element(el)
        payload: IqPayload | None = None
        if view.payload is not None:
            raw = view.payload
            if raw.tag == _PING_TAG and not raw.attrib and _has_no_content(raw):
                payload = Ping()
            else:
                payload = _keep(raw)
        error_el = view.error_element
        try:
            return cls(
                to=view.to,
                from_=view.from_,
                type=view.type,
                id=view.id,
                lang=view.lang,
                payload=payload,
                error=None if error_el is None else _keep(error_el),
            )
        except ValueError as exc:  # e.g. an empty id
            raise StanzaValueError(StanzaErrorCondition.BAD_REQUEST, str(exc)) from None

    def to_element(self, ns: str = _CLIENT) -> Element:
        """The ``<iq/>`` in namespace ``ns``."""
        el = Element(
            f"{{{ns}}}iq",
            _attrs(to=self.to, from_=self.from_, type=self.type.value, id=self.id, lang=self.lang),
        )
        if self.payload is not None:
            payload = self.payload
            el.append(payload.to_element() if isinstance(payload, Ping) else payload)
        if self.error is not None:
            el.append(_retag(self.error, ns))
        return el

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``payload`` is XML text or ``{"kind": "ping"}``."""
        out: dict[str, Any] = {"kind": "iq", "type": self.type.value, "id": self.id}
        for key, value in (("to", self.to), ("from", self.from_), ("lang", self.lang)):
            _put(out, key, value)
        if isinstance(self.payload, Ping):
            out["payload"] = {"kind": "ping"}
        elif self.payload is not None:
            out["payload"] = serialize_fragment(self.payload)
        if self.error is not None:
            out["error"] = serialize_fragment(self.error)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of :meth:`to_dict`; raise :class:`ValueError` naming a bad key."""
        r = _DictReader(data, "iq", _IQ_KEYS)
        raw_payload = r.data.get("payload")
        payload: IqPayload | None
        if isinstance(raw_payload, Mapping):
            if dict(raw_payload) != {"kind": "ping"}:
                raise ValueError(
                    "key 'payload': a typed payload must be {'kind': 'ping'}, "
                    f"got {dict(raw_payload)!r}"
                )
            payload = Ping()
        else:
            payload = r.element("payload")
        type_ = r.enum("type", IqType)
        if type_ is None:
            raise ValueError("key 'type': required in an iq dict")
        error = r.element("error")
        try:
            return cls(
                to=r.jid("to"),
                from_=r.jid("from"),
                type=type_,
                id=r.required_str("id"),
                lang=r.str_("lang"),
                payload=payload,
                error=None if error is None else _retag(error, _CLIENT),
            )
        except ValueError as exc:
            raise ValueError(f"invalid iq dict: {exc}") from None


_IQ_KEYS: Final = frozenset({"kind", "to", "from", "type", "id", "lang", "payload", "error"})


# ---------------------------------------------------------------------------
# dispatch

StanzaObject: TypeAlias = MessageObject | PresenceObject | IqObject


def object_from_element(el: Element) -> StanzaObject:
    """The object for any stanza element.

    Raises :class:`~xmpp_sansio.stanza.UnknownStanza` for a non-stanza and
    :class:`~xmpp_sansio.stanza.StanzaValueError` for an invalid one.
    """
    kind = stanza_kind(el)
    if kind is StanzaKind.MESSAGE:
        return MessageObject.from_element(el)
    if kind is StanzaKind.PRESENCE:
        return PresenceObject.from_element(el)
    if kind is StanzaKind.IQ:
        return IqObject.from_element(el)
    raise UnknownStanza(f"not a stanza: {el.tag!r}")


def object_from_dict(data: Mapping[str, Any]) -> StanzaObject:
    """The object for a dict made by any ``to_dict`` (dispatching on ``"kind"``)."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == "message":
        return MessageObject.from_dict(data)
    if kind == "presence":
        return PresenceObject.from_dict(data)
    if kind == "iq":
        return IqObject.from_dict(data)
    raise ValueError(f"key 'kind': expected 'message', 'presence' or 'iq', got {kind!r}")
