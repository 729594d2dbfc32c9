"""The client side of the modern login: SASL2 (XEP-0388) with Bind2 (XEP-0386),
inline XEP-0198 enable/resume, FAST tokens (XEP-0484), SCRAM upgrade tasks
(XEP-0480) and SCRAM downgrade protection (XEP-0474).

The client's SASL step (:mod:`.client_features`) calls :func:`begin`, which
sends ``<authenticate/>`` when the server lists ``<authentication/>`` (after
TLS only, §7) with everything the login can do inline; its binding step
calls :func:`finish`, which takes the ``<stream:features/>`` that follow
``<success/>`` (§2.6.1: no restart) and makes the stream ready from what ``<success/>`` carried (a
resumed session, or a bound resource with SM enabled), or hands over to
classic binding. The exchange between them is :func:`handle_sasl2`.

FAST: with a token for an offered mechanism the login is one HT exchange
(no PBKDF2 on either side); a ``<failure/>`` then drops the token
(:class:`FastTokenRejected`) and the same stream logs in again with the
password (XEP-0484 §4.1). A password login asks for a token
(``<request-token/>``) when the client has a user-agent id; new and rotated
tokens come out as :class:`FastTokenGranted`, a used one as
:class:`FastTokenAccepted` (its count raised), for the application to store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, replace
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from .. import sasl
from ..errors import StreamErrorCondition
from ..jid import JID, InvalidJID
from ..sasl.credentials import normalize_password
from ..sasl.ht_client import HTClient, ht_binding_type, is_ht_mechanism
from ..sasl.scram import ssdp_hash, ssdp_of
from ..sm import Failed, HandledCountTooHigh, Resume, SMParseError, SMState, build_nonza
from ..sm import parse_nonza as parse_sm
from ..xml import ns
from .answers import TLSInfo
from .config import ClientConfig
from .events import Authenticated, AuthenticationFailed, Event, ResourceBound, ResumeFailed
from .login_options import (
    FAST_MECHANISM_PREFERENCE,
    FastTokenAccepted,
    FastTokenGranted,
    FastTokenInvalidated,
    FastTokenRejected,
    SavedFastToken,
)
from .state import Input, State

__all__ = [
    "BIND2",
    "FAST",
    "SASL2_CLIENT_TAGS",
    "FastTokenAccepted",
    "FastTokenGranted",
    "FastTokenRejected",
    "SASL2Offer",
    "advertised_channel_bindings",
    "begin",
    "check_downgrade_hash",
    "finish",
    "handle_sasl2",
    "parse_offer",
]

BIND2 = "urn:xmpp:bind:0"
FAST = "urn:xmpp:fast:0"
CARBONS = "urn:xmpp:carbons:2"
UPGRADE = "urn:xmpp:sasl:upgrade:0"
SCRAM_UPGRADE = "urn:xmpp:scram-upgrade:0"
_S2 = "{" + ns.SASL2 + "}"
AUTHENTICATION_TAG = _S2 + "authentication"
SASL2_CLIENT_TAGS = frozenset(
    _S2 + name for name in ("challenge", "success", "failure", "continue", "task-data")
)
"""What the server may send during a SASL2 exchange (XEP-0388 §2.4-§2.6)."""
MAX_UPGRADE_ITERATIONS = 10_000_000
"""Most PBKDF2 iterations an upgrade task may ask of the client (XEP-0480 §4)."""


@dataclass(frozen=True, slots=True)
class SASL2Offer:
    """What ``<authentication xmlns='urn:xmpp:sasl:2'/>`` offers (§2.1)."""

    mechanisms: tuple[str, ...]
    bind2: bool = False
    bind2_features: frozenset[str] = frozenset()
    inline_sm: bool = False
    fast_mechanisms: tuple[str, ...] = ()
    upgrades: tuple[str, ...] = ()


def parse_offer(features: Element) -> SASL2Offer | None:
    """The SASL2 offer in ``<stream:features/>``, None when there is none."""
    auth = features.find(AUTHENTICATION_TAG)
    if auth is None:
        return None
    mechanisms = tuple((m.text or "").strip() for m in auth.iterfind(_S2 + "mechanism"))
    inline = auth.find(_S2 + "inline")
    bind = fast = None
    sm = False
    if inline is not None:
        bind = inline.find("{" + BIND2 + "}bind")
        fast = inline.find("{" + FAST + "}fast")
        sm = inline.find(ns.SM_TAG) is not None or inline.find(ns.SM_RESUME_TAG) is not None
    bind_features = frozenset(
        f.get("var", "")
        for f in (
            bind.iterfind(f"{{{BIND2}}}inline/{{{BIND2}}}feature") if bind is not None else ()
        )
    )
    fast_mechs = tuple(
        (m.text or "").strip()
        for m in (fast.iterfind("{" + FAST + "}mechanism") if fast is not None else ())
    )
    upgrades = tuple((u.text or "").strip() for u in auth.iterfind("{" + UPGRADE + "}upgrade"))
    return SASL2Offer(mechanisms, bind is not None, bind_features, sm, fast_mechs, upgrades)


def advertised_channel_bindings(features: Element) -> frozenset[str] | None:
    """The channel binding types of XEP-0440 §2 (None: not advertised)."""
    el = features.find(ns.SASL_CB_TAG)
    if el is None:
        return None
    return frozenset(c.get("type", "") for c in el.iterfind("{" + ns.SASL_CB + "}channel-binding"))


def check_downgrade_hash(
    mechanism: str, server_first: bytes, mechanisms: list[str], bindings: frozenset[str] | None
) -> str | None:
    """XEP-0474 §4.2: the server-first-message's ``h`` must be the hash of
    what we saw advertised; the reason if not (None: fine, or no ``h``)."""
    hash_name = sasl.scram_hash_name(mechanism)
    got = ssdp_of(server_first) if hash_name is not None else None
    if hash_name is None or got is None:
        return None
    if not hmac.compare_digest(got.encode(), ssdp_hash(mechanisms, bindings, hash_name).encode()):
        return "the advertised mechanisms or channel bindings were altered (XEP-0474)"
    return None


class LoginHost(Protocol):
    """What the SASL2 steps read of, and call on, the client connection."""

    config: ClientConfig
    tls_active: bool
    authenticated: bool
    used_sasl2: bool
    jid: JID | None
    csi_offered: bool
    _tls_info: TLSInfo
    _events: list[Event]
    _sm: SMState | None
    _sm_live: bool
    _sm_offered: bool
    _previous_sm: SMState | None
    _sasl2: Exchange | None

    @property
    def state(self) -> State: ...
    def _send_element(self, el: Element) -> None: ...
    def _fire(self, event: Input) -> None: ...
    def _stream_error(self, condition: StreamErrorCondition, text: str | None = None) -> None: ...
    def _server_not_verified(self, reason: str) -> None: ...
    def _password_mechanism(
        self, offered: list[str], bindings: frozenset[str] | None
    ) -> sasl.ClientMechanism | None: ...
    def _handle_resume_answer(self, el: Element) -> None: ...
    def _handle_enable_answer(self, el: Element) -> None: ...
    def _fail_negotiation(self, reason: str) -> None: ...


@dataclass
class Exchange:
    """One SASL2 login on a stream, from ``<authenticate/>`` to the features after it."""

    offer: SASL2Offer
    bindings: frozenset[str] | None
    mechanism: sasl.ClientMechanism
    token: SavedFastToken | None = None
    requested_token: str | None = None
    challenged: bool = False
    task: str | None = None
    success: Element | None = None
    resume: SMState | None = None


def begin(conn: LoginHost, features: Element) -> bool:
    """XEP-0388 §2.2: authenticate with SASL2 when offered (after TLS only,
    §7); whether this was the step."""
    if conn.authenticated or not conn.config.login.sasl2 or not conn.tls_active:
        return False
    offer = parse_offer(features)
    if offer is None or not offer.mechanisms:
        return False
    start(conn, offer, advertised_channel_bindings(features))
    return True


def finish(conn: LoginHost, features: Element) -> bool:
    """The features after SASL2's ``<success/>``: ready at once when it carried
    ``<resumed/>`` or ``<bound/>`` (XEP-0198 §5, XEP-0386 §2.2); False when
    the classic steps must go on."""
    ex = conn._sasl2
    if ex is None or ex.success is None:
        return False
    conn._sasl2 = None
    return _finish(conn, features, ex)


def start(
    conn: LoginHost, offer: SASL2Offer, bindings: frozenset[str] | None, *, retry: bool = False
) -> None:
    """Send ``<authenticate/>``: the FAST token's mechanism when it can be
    used, else the best password mechanism, with the inline requests."""
    cfg = conn.config
    opts = cfg.login
    mechanism: sasl.ClientMechanism | None = None
    token = opts.fast_token if opts.fast and not retry and opts.user_agent_id else None
    if token is not None and token.mechanism in offer.fast_mechanisms:
        mechanism = _ht_mechanism(conn, token)
    if mechanism is None:
        token = None
        mechanism = conn._password_mechanism(list(offer.mechanisms), bindings)
    if mechanism is None:
        conn._fail_negotiation(f"no acceptable SASL mechanism among {list(offer.mechanisms)}")
        return
    ex = Exchange(offer, bindings, mechanism, token)
    el = Element(_S2 + "authenticate", mechanism=mechanism.name)
    initial = mechanism.initial_response()
    if initial is not None:  # §2.2: an empty element is an empty response
        SubElement(el, _S2 + "initial-response").text = base64.b64encode(initial).decode() or None
    if opts.user_agent_id or opts.software or opts.device:
        agent = SubElement(el, _S2 + "user-agent")
        if opts.user_agent_id:
            agent.set("id", opts.user_agent_id)
        for name in ("software", "device"):
            value = getattr(opts, name)
            if value:
                SubElement(agent, _S2 + name).text = value
    if token is None and opts.upgrade:
        for task in offer.upgrades:
            if sasl.scram_hash_name(task.removeprefix("UPGR-")) is not None:
                SubElement(el, "{" + UPGRADE + "}upgrade").text = task
    previous = conn._previous_sm
    resumable = previous is not None and previous.resume and bool(previous.id) and previous.jid
    if resumable and offer.inline_sm:
        assert previous is not None and previous.id is not None
        el.append(build_nonza(Resume(previous.id, previous.inbound)))
        ex.resume = previous
    if offer.bind2 and opts.bind2 and cfg.jid.resource is None and (ex.resume or not resumable):
        _bind_request(el, conn, offer)
    if token is not None:
        fast = SubElement(el, "{" + FAST + "}fast", count=str(token.count + 1))
        if opts.invalidate_token:
            fast.set("invalidate", "true")
    elif opts.fast and opts.user_agent_id and offer.fast_mechanisms and not opts.invalidate_token:
        wanted = _token_mechanism(conn, offer.fast_mechanisms)
        if wanted is not None:
            SubElement(el, "{" + FAST + "}request-token", mechanism=wanted)
            ex.requested_token = wanted
    conn._sasl2 = ex
    conn._send_element(el)
    if not retry:
        conn._fire(Input.SASL_STARTED)


def _bind_request(el: Element, conn: LoginHost, offer: SASL2Offer) -> None:
    """XEP-0386 §2.2: ``<bind/>`` with a tag and the inline features asked for."""
    cfg = conn.config
    opts = cfg.login
    bind = SubElement(el, "{" + BIND2 + "}bind")
    tag = opts.bind_tag or opts.software
    if tag:
        SubElement(bind, "{" + BIND2 + "}tag").text = tag
    if cfg.stream_management and ns.SM in offer.bind2_features:
        attrs = {"resume": "true"} if cfg.sm_resume else {}
        if cfg.sm_max is not None:
            attrs["max"] = str(cfg.sm_max)
        SubElement(bind, ns.SM_ENABLE_TAG, attrs)
    if opts.carbons and CARBONS in offer.bind2_features:
        SubElement(bind, "{" + CARBONS + "}enable")
    if opts.inactive and ns.CSI in offer.bind2_features:
        SubElement(bind, ns.CSI_INACTIVE_TAG)


def _binding(conn: LoginHost, cb_type: str | None) -> sasl.ChannelBinding | None:
    for binding in conn._tls_info.channel_bindings:
        if binding.type == cb_type:
            return binding
    return None


def _ht_mechanism(conn: LoginHost, token: SavedFastToken) -> sasl.ClientMechanism | None:
    if not is_ht_mechanism(token.mechanism):
        return None
    cb_type = ht_binding_type(token.mechanism)
    binding = _binding(conn, cb_type)
    if cb_type is not None and binding is None:
        return None
    try:
        return HTClient(
            token.mechanism,
            username=conn.config.jid.local or "",
            token=token.token,
            channel_binding=binding,
        )
    except ValueError:
        return None


def _token_mechanism(conn: LoginHost, offered: tuple[str, ...]) -> str | None:
    """The FAST mechanism to ask a token for: the most preferred offered one
    whose channel binding this connection has (XEP-0484 §3.1)."""
    for name in FAST_MECHANISM_PREFERENCE:
        if name in offered:
            cb_type = ht_binding_type(name)
            if cb_type is None or _binding(conn, cb_type) is not None:
                return name
    return None


def _b64(el: Element | None) -> bytes | None:
    """The base64 payload of ``el`` (§2.2: no '=' special case); raises ValueError."""
    if el is None:
        return None
    try:
        return base64.b64decode("".join((el.text or "").split()), validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc


def handle_sasl2(conn: LoginHost, el: Element) -> None:
    """A ``<challenge/>``, ``<success/>``, ``<failure/>``, ``<continue/>`` or
    ``<task-data/>`` from the server (XEP-0388 §2.4-§2.6, XEP-0480 §4)."""
    ex = conn._sasl2
    assert ex is not None
    local = el.tag.removeprefix(_S2)
    if local == "failure":
        _failure(conn, ex, el)
        return
    mech = ex.mechanism
    try:
        if local == "challenge":
            data = _b64(el) or b""
            if not ex.challenged:
                ex.challenged = True
                reason = check_downgrade_hash(
                    mech.name, data, list(ex.offer.mechanisms), ex.bindings
                )
                if reason is not None:
                    raise sasl.SASLClientError(reason)
            answer = mech.challenge(data)
            response = Element(_S2 + "response")
            response.text = base64.b64encode(answer).decode() or None
            conn._send_element(response)
            return
        if local in ("success", "continue") and not mech.complete:
            mech.success(_b64(el.find(_S2 + "additional-data")))
    except (ValueError, sasl.SASLClientError) as exc:
        conn._server_not_verified(str(exc))
        return
    if local == "continue":
        _continue(conn, ex, el)
    elif local == "task-data":
        _task_data(conn, ex, el)
    else:
        _success(conn, ex, el)


def _failure(conn: LoginHost, ex: Exchange, el: Element) -> None:
    condition = "not-authorized"
    for child in el:
        if child.tag.startswith("{" + ns.SASL + "}"):
            condition = child.tag.partition("}")[2]
            break
    text = el.findtext(_S2 + "text")
    if ex.token is not None:
        # XEP-0484 §4.1: drop the token, fall back to the password.
        conn._events.append(FastTokenRejected(ex.token.mechanism, condition))
        conn.config = replace(conn.config, login=replace(conn.config.login, fast_token=None))
        start(conn, ex.offer, ex.bindings, retry=True)
        return
    conn._sasl2 = None
    conn._events.append(AuthenticationFailed(condition, text))
    conn._fire(Input.SASL_FAILED)


def _continue(conn: LoginHost, ex: Exchange, el: Element) -> None:
    """§2.6.3: take the first task we can do (XEP-0480 SCRAM upgrades), else abort."""
    tasks = [(t.text or "").strip() for t in el.iterfind(f"{_S2}tasks/{_S2}task")]
    for task in tasks:
        if task.startswith("UPGR-") and sasl.scram_hash_name(task[5:]) is not None:
            ex.task = task
            conn._send_element(Element(_S2 + "next", task=task))
            return
    conn._send_element(Element(_S2 + "abort"))
    conn._sasl2 = None
    conn._events.append(AuthenticationFailed("aborted", f"no supported task among {tasks}"))
    conn._fire(Input.SASL_FAILED)


def _task_data(conn: LoginHost, ex: Exchange, el: Element) -> None:
    """XEP-0480 §4: answer the salt of a SCRAM upgrade with SaltedPassword."""
    salt_el = el.find("{" + SCRAM_UPGRADE + "}salt")
    hash_name = sasl.scram_hash_name((ex.task or "").removeprefix("UPGR-"))
    try:
        salt = _b64(salt_el)
        iterations = int(salt_el.get("iterations", "")) if salt_el is not None else 0
    except ValueError:
        salt, iterations = None, 0
    if hash_name is None or not salt or not 1 <= iterations <= MAX_UPGRADE_ITERATIONS:
        conn._stream_error(StreamErrorCondition.BAD_FORMAT, "bad upgrade task data")
        return
    password = normalize_password(conn.config.password).encode()
    salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
    answer = Element(_S2 + "task-data")
    SubElement(answer, "{" + SCRAM_UPGRADE + "}hash").text = base64.b64encode(salted).decode()
    conn._send_element(answer)


def _success(conn: LoginHost, ex: Exchange, el: Element) -> None:
    """§2.6.1: authenticated; the features follow without a restart."""
    cfg = conn.config
    text = (el.findtext(_S2 + "authorization-identifier") or "").strip()
    try:
        jid = JID.parse(text) if text else cfg.jid.bare
    except InvalidJID:
        jid = None
    if jid is None or jid.bare != cfg.jid.bare:
        conn._stream_error(StreamErrorCondition.INVALID_XML, "success for another account")
        return
    token_el = el.find("{" + FAST + "}token")
    name = ex.requested_token or (ex.token.mechanism if ex.token is not None else None)
    if token_el is not None and token_el.get("token") and name is not None:
        issued = SavedFastToken(
            mechanism=name, token=token_el.get("token", ""), expiry=token_el.get("expiry")
        )
        conn._events.append(FastTokenGranted(issued))
    elif ex.token is not None and conn.config.login.invalidate_token:
        conn._events.append(FastTokenInvalidated(ex.token.mechanism))
    elif ex.token is not None:
        conn._events.append(FastTokenAccepted(replace(ex.token, count=ex.token.count + 1)))
    ex.success = el
    conn.authenticated = conn.used_sasl2 = True
    conn._events.append(Authenticated(cfg.jid.bare, ex.mechanism.name))
    conn._fire(Input.SASL2_SUCCEEDED)


def _finish(conn: LoginHost, features: Element, ex: Exchange) -> bool:
    """Make the stream ready from ``<success/>``'s inline results; False when
    classic resumption or binding must follow."""
    el = ex.success
    assert el is not None
    conn._sm_offered = features.find(ns.SM_TAG) is not None
    conn.csi_offered = features.find(ns.CSI_TAG) is not None
    previous = ex.resume
    if previous is not None:
        resumed = el.find(ns.SM_RESUMED_TAG)
        if resumed is not None:
            conn._fire(Input.RESUME_STARTED)
            conn._handle_resume_answer(resumed)
            return True
        failed = el.find(ns.SM_FAILED_TAG)
        h = None
        condition: str | None = "item-not-found"
        if failed is not None:
            try:
                answer = parse_sm(failed)
            except SMParseError:
                answer = None
            if isinstance(answer, Failed):
                condition, h = answer.condition, answer.h
                if h is not None:
                    try:
                        previous.ack(h)
                    except HandledCountTooHigh:
                        h = None
        conn._previous_sm = None
        conn._events.append(ResumeFailed(condition, h, previous.take_unacked()))
    bound = el.find("{" + BIND2 + "}bound")
    if bound is None:
        return False
    text = (el.findtext(_S2 + "authorization-identifier") or "").strip()
    try:
        jid = JID.parse(text)
    except InvalidJID:
        jid = None
    if jid is None or jid.resource is None:
        conn._stream_error(StreamErrorCondition.INVALID_XML, "Bind2 without a full JID")
        return True
    conn.csi_offered = conn.csi_offered or ns.CSI in ex.offer.bind2_features
    conn.jid = jid
    conn._fire(Input.BIND_STARTED)
    conn._fire(Input.BOUND)
    conn._events.append(ResourceBound(jid))
    answer_el = bound.find(ns.SM_ENABLED_TAG)
    if answer_el is None:
        answer_el = bound.find(ns.SM_FAILED_TAG)
    if answer_el is not None:
        conn._sm = SMState(jid=jid)
        conn._handle_enable_answer(answer_el)
    return True
