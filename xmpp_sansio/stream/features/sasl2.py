"""SASL2 (XEP-0388): the server's stream feature plug-in.

The same mechanisms as RFC 6120 SASL (:mod:`.sasl`, whose steps it shares:
credential look-ups, PLAIN's derivation, counting failures), carried over
``<authenticate/>``, ``<challenge/>``, ``<response/>``, ``<abort/>``,
``<success/>`` and ``<failure/>`` in ``urn:xmpp:sasl:2``; success needs no
stream restart (§2.6.1): the post-authentication features follow it.
Offered only with ``ServerConfig.sasl2``, with Bind 2 and XEP-0198
resumption inline (:mod:`.bind2`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement

from ... import sasl
from ...sasl.ht import HT_MECHANISMS
from ...xml import ns
from ..config import ServerConfig
from ..events import UserAgent
from ..state import State
from . import fast, upgrade
from .base import FeatureHost, Stage
from .bind2 import inline_offer, parse_inline
from .sasl import _begin, _failure, _handle, offered_mechanisms

__all__ = ["AUTHENTICATE_TAG", "SASL2Feature", "UserAgent", "parse_user_agent"]

AUTHENTICATE_TAG = "{" + ns.SASL2 + "}authenticate"
_RESPONSE_TAG = "{" + ns.SASL2 + "}response"
_ABORT_TAG = "{" + ns.SASL2 + "}abort"
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_MAX_OFFERS = 32
_Offer = tuple[ServerConfig, Element]
MAX_USER_AGENT_TEXT = 256
"""Longest ``<software/>`` or ``<device/>`` kept, in characters (longer is cut)."""


def parse_user_agent(authenticate: Element) -> UserAgent | None:
    """The ``<user-agent/>`` of ``<authenticate/>`` (None: none sent); raise
    ValueError for an ``id`` that is not a UUID v4 (XEP-0388 §2.3 MUST)."""
    el = authenticate.find("{" + ns.SASL2 + "}user-agent")
    if el is None:
        return None
    agent_id = el.get("id")
    if agent_id is not None:
        agent_id = agent_id.strip().lower()
        if not _UUID4.fullmatch(agent_id):
            raise ValueError("user-agent id is not a UUID v4")

    def text(name: str) -> str | None:
        value = el.findtext("{" + ns.SASL2 + "}" + name)
        return value.strip()[:MAX_USER_AGENT_TEXT] if value else None

    return UserAgent(agent_id, text("software"), text("device"))


class SASL2Feature:
    """XEP-0388 §2.1: ``<authentication/>`` listing the mechanisms RFC 6120
    SASL offers on this stream (never per account: no enumeration)."""

    def __init__(self) -> None:
        #: offers built so far: what they depend on -> (the config, the element)
        self._offers: dict[tuple[int, tuple[str, ...], tuple[str, ...], bool], _Offer] = {}

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        """The element is built once per configuration and what the stream
        offers (mechanisms, FAST's, an anonymous host), and shared by every
        stream that offers the same: serialising never changes it, and a
        classic login does not pay for building the SASL2 offer each time
        (issue 24)."""
        cfg = conn.config
        if not cfg.sasl2:
            return
        mechanisms = tuple(offered_mechanisms(conn))
        if not mechanisms:  # §2.1: never without a mechanism
            return
        key = (
            id(cfg),
            mechanisms,
            tuple(fast.fast_mechanisms(conn)),
            conn.domain in cfg.anonymous_domains,
        )
        cached = self._offers.get(key)
        if cached is not None and cached[0] is cfg:
            yield cached[1]
            return
        authentication = Element("{" + ns.SASL2 + "}authentication")
        for name in mechanisms:
            SubElement(authentication, "{" + ns.SASL2 + "}mechanism").text = name
        inline = SubElement(authentication, "{" + ns.SASL2 + "}inline")
        inline.extend(inline_offer(conn))
        inline.extend(fast.inline_offer(conn))
        if not key[3]:  # accounts to upgrade
            authentication.extend(upgrade.offer())  # XEP-0480 §2.1
        if len(self._offers) >= _MAX_OFFERS:  # a few configs and TLS setups at most
            self._offers.clear()
        self._offers[key] = (cfg, authentication)
        yield authentication

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        if stage is Stage.BEFORE_AUTH and config.sasl2:
            return (AUTHENTICATE_TAG, _RESPONSE_TAG, _ABORT_TAG)
        if stage is Stage.BIND and config.sasl2:  # XEP-0480 tasks after authentication
            return (upgrade.NEXT_TAG, upgrade.TASK_DATA_TAG)
        return ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        if stage is Stage.BIND:
            upgrade.handle(conn, el)
            return True
        tag = el.tag
        in_classic = conn.state is not State.NEGOTIATING and conn._sasl_ns != ns.SASL2
        conn._sasl_ns = ns.SASL2
        if tag == AUTHENTICATE_TAG and conn.state is State.NEGOTIATING:
            try:
                conn._user_agent = parse_user_agent(el)
                conn._inline = parse_inline(el)
            except ValueError as exc:
                _failure(conn, sasl.SASLCondition.MALFORMED_REQUEST, str(exc))
                return True
            initial = el.find("{" + ns.SASL2 + "}initial-response")
            # §2.2: <initial-response/> with no text is an empty response.
            text = None if initial is None else (initial.text or "").strip() or "="
            mechanism = el.get("mechanism", "")
            if mechanism in HT_MECHANISMS:  # a FAST token (XEP-0484 §3.3)
                fast.begin(conn, mechanism, text)
            else:
                _begin(conn, mechanism, text)
            return True
        if in_classic:  # SASL2 elements inside an RFC 6120 exchange
            _failure(conn, sasl.SASLCondition.MALFORMED_REQUEST)
            return True
        # <response/>, <abort/> (or an <authenticate/> out of place): the
        # classic steps, answered in SASL2's namespace.
        classic = Element(_CLASSIC.get(tag, ns.AUTH_TAG))
        classic.text = el.text
        return _handle(conn, classic)


_CLASSIC = {_RESPONSE_TAG: ns.RESPONSE_TAG, _ABORT_TAG: ns.ABORT_TAG}
