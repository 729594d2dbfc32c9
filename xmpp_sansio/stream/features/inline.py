"""The inline requests of SASL2's ``<authenticate/>`` (XEP-0388 §2.3):
Bind 2 (XEP-0386 §3.2) and XEP-0198 ``<resume/>``, parsed; handled in
:mod:`.bind2`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeVar
from xml.etree.ElementTree import Element

from ...sm import Enable, Resume, SMParseError, parse_nonza
from ...xml import ns

__all__ = [
    "BIND2_NS",
    "CARBONS_NS",
    "FAST_NS",
    "MAX_TAG",
    "UPGRADE_NS",
    "Bind2Request",
    "FastAttempt",
    "FastLogin",
    "FastRequest",
    "InlineRequest",
    "UpgradeState",
    "parse_inline",
]

BIND2_NS: Final = "urn:xmpp:bind:0"
FAST_NS: Final = "urn:xmpp:fast:0"
UPGRADE_NS: Final = "urn:xmpp:sasl:upgrade:0"
CARBONS_NS: Final = "urn:xmpp:carbons:2"
MAX_TAG: Final = 64
"""Longest ``<tag/>`` kept as the resource prefix, in characters (longer is cut)."""


@dataclass(frozen=True, slots=True)
class Bind2Request:
    """XEP-0386 §3.2: the client's ``<tag/>`` and the session features it wants
    on at once: XEP-0198 ``<enable/>``, XEP-0280 ``<enable/>``, XEP-0352
    ``<active/>``/``<inactive/>`` (None: not said)."""

    tag: str | None = None
    sm_enable: Enable | None = None
    carbons: bool = False
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class FastRequest:
    """XEP-0484 §3.3, §3.5: ``<fast/>`` (a token login), its ``count`` (None:
    not sent) and ``invalidate``."""

    count: int | None = None
    invalidate: bool = False


@dataclass(frozen=True, slots=True)
class InlineRequest:
    """What ``<authenticate/>`` asked for beside authentication (XEP-0388 §2.3):
    Bind 2, XEP-0198 resumption, a FAST token (``request_token``: its
    mechanism, XEP-0484 §3.1) and a FAST login's ``<fast/>``."""

    bind: Bind2Request | None = None
    resume: Resume | None = None
    request_token: str | None = None
    fast: FastRequest | None = None
    upgrades: tuple[str, ...] = ()


N = TypeVar("N", Enable, Resume)


def _nonza(el: Element | None, kind: type[N]) -> N | None:
    """A XEP-0198 ``<enable/>`` or ``<resume/>`` (None: absent); ValueError if malformed."""
    if el is None:
        return None
    try:
        parsed = parse_nonza(el)
    except SMParseError as exc:
        raise ValueError(str(exc)) from None
    assert isinstance(parsed, kind)
    return parsed


def _parse_fast(authenticate: Element) -> tuple[str | None, FastRequest | None]:
    request = authenticate.find("{" + FAST_NS + "}request-token")
    mechanism = None if request is None else request.get("mechanism") or None
    el = authenticate.find("{" + FAST_NS + "}fast")
    if el is None:
        return mechanism, None
    count: int | None = None
    raw = el.get("count")
    if raw is not None:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) < 1:
            raise ValueError("FAST count must be a positive integer")
        count = int(raw)
    return mechanism, FastRequest(count, el.get("invalidate") in ("1", "true"))


def parse_inline(authenticate: Element) -> InlineRequest:
    """The inline requests of ``<authenticate/>``; raise ValueError for a
    malformed XEP-0198 element (XEP-0388: ``malformed-request``)."""
    bind_el = authenticate.find("{" + BIND2_NS + "}bind")
    resume = _nonza(authenticate.find(ns.SM_RESUME_TAG), Resume)
    request_token, fast = _parse_fast(authenticate)
    upgrades = tuple(
        (el.text or "").strip() for el in authenticate.iterfind("{" + UPGRADE_NS + "}upgrade")
    )
    if bind_el is None:
        return InlineRequest(None, resume, request_token, fast, upgrades)
    tag = (bind_el.findtext("{" + BIND2_NS + "}tag") or "").strip()[:MAX_TAG] or None
    sm_enable = _nonza(bind_el.find(ns.SM_ENABLE_TAG), Enable)
    active: bool | None = None
    if bind_el.find(ns.CSI_INACTIVE_TAG) is not None:
        active = False
    elif bind_el.find(ns.CSI_ACTIVE_TAG) is not None:
        active = True
    carbons = bind_el.find("{" + CARBONS_NS + "}enable") is not None
    bind = Bind2Request(tag, sm_enable, carbons, active)
    return InlineRequest(bind, resume, request_token, fast, upgrades)


@dataclass(frozen=True, slots=True)
class FastAttempt:
    """A token login waiting for the client's stored tokens."""

    mechanism: str
    username: str
    agent_id: str
    hashed: bytes
    cb_data: bytes
    count: int | None
    invalidate: bool


@dataclass(frozen=True, slots=True)
class FastLogin:
    """The token a login succeeded with, for :func:`after_auth`."""

    mechanism: str
    slot: str
    expiry: float
    count: int | None
    invalidate: bool


@dataclass(slots=True)
class UpgradeState:
    """XEP-0480 tasks in progress: the held ``<success/>``, the tasks left
    (``UPGR-SCRAM-SHA-…``), the current one and the salt sent for it."""

    success: Element
    tasks: list[str]
    current: str | None = None
    salt: bytes = b""
