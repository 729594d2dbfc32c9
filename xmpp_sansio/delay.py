"""Delayed delivery (XEP-0203) and the XEP-0082 DateTime profile.

Times are UNIX seconds (``float``), the unit of the ``clock`` callables the
server services are given; this module only converts them, with
:mod:`datetime` in UTC, and never reads a clock itself.

* :func:`format_datetime` / :func:`parse_datetime`: the XEP-0082 §3.2
  DateTime profile, ``CCYY-MM-DDThh:mm:ss[.sss]TZD``. Output is always UTC
  with ``Z`` (XEP-0203 §2: the stamp "MUST be expressed in UTC"); input may
  carry any offset, which is applied.
* :class:`Delay`, :func:`delay_element`, :func:`parse_delay`,
  :func:`find_delay` and :func:`with_delay`: the ``<delay
  xmlns='urn:xmpp:delay'/>`` child (XEP-0203 §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from xml.etree.ElementTree import Element

from .jid import JID, InvalidJID
from .stanza import with_attrs
from .xml import ns

__all__ = [
    "DELAY_TAG",
    "Delay",
    "delay_element",
    "find_delay",
    "format_datetime",
    "parse_datetime",
    "parse_delay",
    "with_delay",
]

DELAY_TAG: Final = f"{{{ns.DELAY}}}delay"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# XEP-0082 §3.2: CCYY-MM-DDThh:mm:ss[.sss]TZD, TZD = "Z" | [+-]hh:mm. The
# fraction "MAY contain any number of digits" (§2.1).
_DATETIME_RE: Final = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>Z)|(?P<sign>[+-])(?P<tzh>[0-9]{2}):(?P<tzm>[0-9]{2}))",
    re.ASCII,
)


def format_datetime(seconds: float, *, digits: int = 0) -> str:
    """UNIX ``seconds`` as an XEP-0082 §3.2 DateTime in UTC.

    ``digits`` (0-6) is the number of fraction-of-second digits to write
    (truncated, never rounded up into the next second); with 0 there is no
    fraction: ``2002-09-10T23:08:25Z``.
    """
    if not 0 <= digits <= 6:
        raise ValueError("digits must be between 0 and 6")
    moment = _EPOCH + timedelta(seconds=seconds)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + "Z"


def parse_datetime(text: str) -> float:
    """Parse an XEP-0082 §3.2 DateTime into UNIX seconds.

    The time zone definition is required (``Z`` or ``±hh:mm``); fractions of a
    second are kept to the microsecond. Surrounding whitespace is allowed (XML
    Schema ``dateTime`` collapses it). Raises :class:`ValueError` for anything
    else, including out-of-range fields.
    """
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an XEP-0082 DateTime: {text!r}")
    fraction = match["fraction"] or ""
    microsecond = int((fraction + "000000")[:6])
    try:
        moment = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            microsecond,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise ValueError(f"not an XEP-0082 DateTime: {text!r} ({exc})") from None
    if match["utc"] is None:
        hours, minutes = int(match["tzh"]), int(match["tzm"])
        if hours > 14 or minutes > 59:
            raise ValueError(f"not an XEP-0082 time zone offset: {text!r}")
        offset = timedelta(hours=hours, minutes=minutes)
        moment = moment - offset if match["sign"] == "+" else moment + offset
    return (moment - _EPOCH).total_seconds()


@dataclass(frozen=True, slots=True)
class Delay:
    """The content of a ``<delay/>`` element (XEP-0203 §2).

    ``stamp`` is when the stanza was originally sent (UNIX seconds); ``from_``
    the entity that delayed it (RECOMMENDED); ``reason`` the optional
    natural-language description.
    """

    stamp: float
    from_: JID | None = None
    reason: str | None = None


def delay_element(
    stamp: float, from_: JID | str | None = None, reason: str | None = None
) -> Element:
    """Build ``<delay xmlns='urn:xmpp:delay' from=... stamp=...>reason</delay>``
    (XEP-0203 §2); the stamp has whole seconds."""
    attrs = {"stamp": format_datetime(stamp)}
    if from_ is not None:
        attrs["from"] = str(from_)
    el = Element(DELAY_TAG, attrs)
    if reason:
        el.text = reason
    return el


def parse_delay(el: Element) -> Delay:
    """Read a ``<delay/>`` element. Raises :class:`ValueError` if it is not one,
    or its ``stamp`` (REQUIRED) or ``from`` is missing or invalid."""
    if el.tag != DELAY_TAG:
        raise ValueError(f"not a delay element: {el.tag!r}")
    stamp = el.get("stamp")
    if stamp is None:
        raise ValueError("delay without 'stamp'")
    from_text = el.get("from")
    try:
        from_ = None if from_text is None else JID.parse(from_text)
    except InvalidJID as exc:
        raise ValueError(f"delay with an invalid 'from': {exc}") from None
    reason = (el.text or "").strip() or None
    return Delay(parse_datetime(stamp), from_, reason)


def find_delay(stanza: Element) -> Delay | None:
    """The first valid ``<delay/>`` child of ``stanza``, or ``None``
    (XEP-0203 §2 allows one and only one)."""
    for child in stanza.iterfind(DELAY_TAG):
        try:
            return parse_delay(child)
        except ValueError:
            continue
    return None


def with_delay(
    stanza: Element, stamp: float, from_: JID | str, reason: str | None = None
) -> Element:
    """A copy of ``stanza`` with a ``<delay/>`` from ``from_`` appended.

    Any ``<delay/>`` the stanza already carries with the same ``from`` is
    removed first: XEP-0203 §5 says a server SHOULD discard a delayed delivery
    notation whose ``from`` is its own JID (it can only be forged), and this
    makes the added notation the only one from ``from_``. ``stanza`` is not
    modified.
    """
    own = str(from_)
    copy = with_attrs(stanza)
    for child in list(copy):
        if child.tag == DELAY_TAG and child.get("from") == own:
            copy.remove(child)
    copy.append(delay_element(stamp, own, reason))
    return copy
