"""Helpers of :mod:`xmpp_sansio.objects`: XML fragments as text, and typed
reads from the plain dicts of ``from_dict`` (errors name the key)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar
from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import STANZA_NAMESPACES, retag_stanza
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import split_tag
from xmpp_sansio.xml.parser import parse_fragment as _parse_fragment
from xmpp_sansio.xml.writer import serialize

_CLIENT: Final = ns.CLIENT
_FRAGMENT_LIMIT: Final = 1 << 20


# ---------------------------------------------------------------------------
# XML fragments


def serialize_fragment(el: Element) -> str:
    """Serialise ``el`` as self-contained XML text (every namespace declared).

    Raises :class:`ValueError` for text XML cannot carry.
    """
    return serialize(el, default_ns="").decode("utf-8")


def parse_fragment(text: str | bytes, *, max_size: int = _FRAGMENT_LIMIT) -> Element:
    """Parse one XML element, e.g. the output of :func:`serialize_fragment`
    (see :func:`xmpp_sansio.xml.parser.parse_fragment`; at most ``max_size`` bytes)."""
    return _parse_fragment(text, "", max_size=max_size)


def _retag(el: Element, namespace: str) -> Element:
    """``el`` moved to the stanza namespace ``namespace`` when it is in one
    (:func:`~xmpp_sansio.stanza.retag_stanza`); any other element as it is."""
    if split_tag(el.tag)[0] not in STANZA_NAMESPACES:
        return el
    return retag_stanza(el, namespace)


# --- dict reading --------------------------------------------------------------

_T = TypeVar("_T")


class _DictReader:
    """Typed reads from a plain dict, with errors naming the key."""

    def __init__(self, data: object, kind: str, keys: frozenset[str]) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"a {kind} must be a dict, got {type(data).__name__}")
        self.data: Mapping[str, object] = data
        self.kind = kind
        for key in data:
            if key not in keys:
                raise ValueError(
                    f"unknown key {key!r} in a {kind} dict; valid keys: {', '.join(sorted(keys))}"
                )
        found = data.get("kind", kind)
        if found != kind:
            raise ValueError(f"key 'kind': expected {kind!r}, got {found!r}")

    def str_(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"key {key!r}: expected a string, got {type(value).__name__}")
        return value

    def required_str(self, key: str) -> str:
        value = self.str_(key)
        if value is None:
            raise ValueError(f"key {key!r}: required in a {self.kind} dict")
        return value

    def jid(self, key: str) -> JID | None:
        value = self.str_(key)
        if value is None:
            return None
        try:
            return JID.parse(value)
        except ValueError as exc:
            raise ValueError(f"key {key!r}: invalid JID {value!r}: {exc}") from None

    def enum(self, key: str, convert: Callable[[str], _T]) -> _T | None:
        value = self.str_(key)
        if value is None:
            return None
        try:
            return convert(value)
        except ValueError:
            raise ValueError(f"key {key!r}: invalid value {value!r}") from None

    def int_(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"key {key!r}: expected an integer, got {type(value).__name__}")
        return value

    def element(self, key: str) -> Element | None:
        value = self.str_(key)
        if value is None:
            return None
        try:
            return parse_fragment(value)
        except ValueError as exc:
            raise ValueError(f"key {key!r}: {exc}") from None

    def extensions(self) -> tuple[Element, ...]:
        value = self.data.get("extensions", [])
        if not isinstance(value, list | tuple):
            raise ValueError(
                f"key 'extensions': expected a list of XML strings, got {type(value).__name__}"
            )
        out: list[Element] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(
                    f"key 'extensions[{index}]': expected an XML string, got {type(item).__name__}"
                )
            try:
                out.append(_retag(parse_fragment(item), _CLIENT))
            except ValueError as exc:
                raise ValueError(f"key 'extensions[{index}]': {exc}") from None
        return tuple(out)


def _put(out: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        out[key] = str(value) if isinstance(value, JID) else value


def _put_extensions(out: dict[str, Any], extensions: tuple[Element, ...]) -> None:
    if extensions:
        out["extensions"] = [serialize_fragment(ext) for ext in extensions]
