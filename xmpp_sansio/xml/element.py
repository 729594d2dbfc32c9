"""Elements: the stdlib ``xml.etree.ElementTree.Element``, plus small helpers.

The element type is the C-accelerated :class:`xml.etree.ElementTree.Element`
(tags in Clark notation ``{namespace}local``). Keeping the stdlib type means the
parser builds elements in C and users already know the API. Elements handed
out by this library are owned by the receiver; the library never mutates an
element it was given.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from xml.etree.ElementTree import Element

__all__ = ["Element", "canonical", "element", "elements_equal", "split_tag", "with_attrs"]


def element(
    tag: str,
    attrs: Mapping[str, str | None] | None = None,
    children: Iterable[Element] = (),
    text: str | None = None,
) -> Element:
    """Build an element; attributes whose value is ``None`` are left out."""
    el = Element(tag, {k: v for k, v in attrs.items() if v is not None} if attrs else {})
    if text is not None:
        el.text = text
    el.extend(children)
    return el


def with_attrs(el: Element, **changes: str | None) -> Element:
    """Return a shallow copy of ``el`` with attributes set (``None`` removes one).

    Use ``from_`` for the ``from`` attribute.
    """
    new = copy.copy(el)
    new.attrib = dict(el.attrib)
    for key, value in changes.items():
        name = "from" if key == "from_" else key
        if value is None:
            new.attrib.pop(name, None)
        else:
            new.attrib[name] = value
    return new


def split_tag(tag: str) -> tuple[str, str]:
    """Split a Clark-notation tag into ``(namespace, local)``; ``""`` for no namespace."""
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def canonical(el: Element) -> tuple[object, ...]:
    """A hashable, comparable form of an element tree.

    Attribute order does not matter; missing text and empty text are the
    same; the tail of ``el`` itself is ignored (it belongs to the parent).
    """
    return (
        el.tag,
        tuple(sorted(el.attrib.items())),
        el.text or "",
        tuple((canonical(child), child.tail or "") for child in el),
    )


def elements_equal(a: Element, b: Element) -> bool:
    """True when two element trees are the same XML (see :func:`canonical`)."""
    return canonical(a) == canonical(b)
