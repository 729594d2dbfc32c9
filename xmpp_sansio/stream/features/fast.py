"""FAST (XEP-0484) on the server: the plug-in that offers the HT mechanisms
inline in SASL2, checks a token login, and issues, rotates and invalidates
tokens in ``<success/>``.

Theory of operation
-------------------
Offered (``<fast/>`` in SASL2's ``<inline/>``, §3.1) on a TLS stream with
``ServerConfig.fast_token_lifetime``: ``HT-SHA-256-NONE`` always, and each
``-UNIQ``/``-EXPR``/``-ENDP`` whose channel binding the connection has.

A token login (``<authenticate mechanism='HT-…'>`` with ``<fast/>``, §3.3)
needs the user-agent id (§4.1); the plug-in asks the I/O layer for that
client's tokens (:class:`FastTokensRequested`, answered with
``FastTokensProvided``), and accepts the first one, "new" slot first
(§5.1), that was issued for this mechanism, matches the HMAC (constant
time), has a ``count`` above the last one seen when a count is sent
(replay, §3.3), and has not expired (``credentials-expired``, §4.2). Any
other outcome is ``not-authorized``, counted like a wrong password. No
PBKDF2 runs: the HMAC is the whole check.

After any successful SASL2 login (:func:`after_auth`, before Bind 2):
a used token is reported (:class:`FastTokenUsed`: count, promotion of the
"new" slot, or invalidation, §3.5), and a token is issued
(:class:`FastTokenIssued`, ``<token/>`` in ``<success/>``) when the client
asked (``<request-token/>``, §3.2) or its token is within
``fast_rotate_within`` of expiry (§3.4), never after ``invalidate`` without
a request.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement

from ... import sasl
from ...errors import LocalProtocolError
from ...sasl.ht import HT_MECHANISMS, ht_channel_binding, ht_responder, parse_ht_initial, verify_ht
from ..answers import Answer, FastTokensProvided
from ..events import FastTokenIssued, FastTokensRequested, FastTokenUsed
from ..state import Input, State
from .base import FeatureHost, _b64decode
from .inline import FAST_NS, FastAttempt, FastLogin
from .sasl import _failure, _success

__all__ = ["FAST_NS", "FastAttempt", "FastFeature", "FastLogin", "fast_mechanisms"]

_TOKEN_BYTES = 32


def fast_mechanisms(conn: FeatureHost) -> list[str]:
    """The HT mechanisms this stream offers (XEP-0484 §3.1), or offered
    before authentication."""
    cfg = conn.config
    if not (cfg.sasl2 and cfg.fast_token_lifetime > 0 and conn.tls_active):
        return []
    if conn.domain in cfg.anonymous_domains:  # no accounts there: nothing to hold a token
        return []
    bindings = conn.tls_info.channel_bindings
    return [m for m in HT_MECHANISMS if ht_channel_binding(m, bindings) is not None]


def inline_offer(conn: FeatureHost) -> Iterator[Element]:
    """``<fast/>`` with its mechanisms, for SASL2's ``<inline/>``."""
    mechanisms = fast_mechanisms(conn)
    if mechanisms:
        fast = Element("{" + FAST_NS + "}fast")
        for name in mechanisms:
            SubElement(fast, "{" + FAST_NS + "}mechanism").text = name
        yield fast


def begin(conn: FeatureHost, mechanism: str, initial_text: str | None) -> None:
    """``<authenticate/>`` with an HT mechanism (XEP-0484 §3.3)."""
    inline = conn._inline
    agent = conn._user_agent
    if mechanism not in fast_mechanisms(conn):
        _failure(conn, sasl.SASLCondition.INVALID_MECHANISM)
        return
    if inline is None or inline.fast is None or agent is None or agent.id is None:
        # §3.3: a token login carries <fast/>; §4.1: and the user-agent id.
        _failure(
            conn, sasl.SASLCondition.MALFORMED_REQUEST, "FAST needs <fast/> and a user-agent id"
        )
        return
    try:
        username, hashed = parse_ht_initial(_b64decode(initial_text))
    except ValueError:
        _failure(conn, sasl.SASLCondition.INCORRECT_ENCODING)
        return
    except sasl.SASLFailure as exc:
        _failure(conn, exc.condition, exc.text)
        return
    cb_data = ht_channel_binding(mechanism, conn.tls_info.channel_bindings)
    assert cb_data is not None  # offered only with its binding
    conn._fast_attempt = FastAttempt(
        mechanism, username, agent.id, hashed, cb_data, inline.fast.count, inline.fast.invalidate
    )
    conn._fire(Input.SASL_STARTED)
    conn._fire(Input.NEED_CREDENTIALS)
    conn._pending_username = username
    conn._events.append(FastTokensRequested(username, agent.id, mechanism))


class FastFeature:
    """XEP-0484: offered inline by :class:`~.sasl2.SASL2Feature`; this plug-in
    takes the I/O layer's token answers."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        return iter(())

    def answers(self) -> tuple[type[Answer], ...]:
        return (FastTokensProvided,)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        assert isinstance(answer, FastTokensProvided)
        attempt = conn._fast_attempt
        if conn.state is not State.AWAIT_CREDENTIALS or attempt is None:
            raise LocalProtocolError("no FAST tokens were requested")
        conn._fast_attempt = None
        conn._fire(Input.LOCAL_CREDENTIALS)
        _check(conn, attempt, answer)
        conn._process()


def _check(conn: FeatureHost, attempt: FastAttempt, answer: FastTokensProvided) -> None:
    clock = conn.config.clock
    assert clock is not None
    now = clock()
    ordered = sorted(answer.tokens, key=lambda t: t.slot != "new")  # §5.1: "new" first
    for token in ordered:
        if token.mechanism != attempt.mechanism:
            continue  # §3.3: bound to the mechanism it was issued for
        if not verify_ht(token.secret, attempt.hashed, attempt.cb_data):
            continue
        if attempt.count is not None and attempt.count <= token.count:
            _failure(conn, sasl.SASLCondition.NOT_AUTHORIZED, checked=True)  # a replay
            return
        if token.expiry <= now:
            _failure(conn, sasl.SASLCondition.CREDENTIALS_EXPIRED)  # §4.2
            return
        conn._fast_login = FastLogin(
            attempt.mechanism, token.slot, token.expiry, attempt.count, attempt.invalidate
        )
        responder = ht_responder(token.secret, attempt.cb_data)
        _success(conn, attempt.mechanism, sasl.Authenticated(attempt.username, None, responder))
        return
    _failure(conn, sasl.SASLCondition.NOT_AUTHORIZED, checked=True)


def after_auth(conn: FeatureHost, success: Element) -> None:
    """Report the token used, and issue one when asked or due (module docstring)."""
    login, conn._fast_login = conn._fast_login, None
    agent = conn._user_agent
    jid = conn.authenticated_jid
    assert jid is not None
    clock = conn.config.clock
    if clock is None or agent is None or agent.id is None:
        return
    now = clock()
    invalidate = login is not None and login.invalidate
    rotate = False
    if login is not None:
        conn._events.append(FastTokenUsed(jid, agent.id, login.slot, login.count, invalidate))
        rotate = not invalidate and login.expiry - now < conn.config.fast_rotate_within
    requested = conn._inline.request_token if conn._inline is not None else None
    offered = fast_mechanisms(conn)
    if requested is not None and requested not in offered:
        requested = None
    mechanism = requested or (login.mechanism if rotate and login is not None else None)
    if mechanism is None:
        return
    token = base64.b64encode(conn.config.rng(_TOKEN_BYTES)).decode("ascii")
    expiry = now + conn.config.fast_token_lifetime
    stamp = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    SubElement(success, "{" + FAST_NS + "}token", expiry=stamp, token=token)
    conn._events.append(FastTokenIssued(jid, agent, mechanism, token.encode(), expiry))
