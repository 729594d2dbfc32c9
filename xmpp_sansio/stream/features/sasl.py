"""SASL (RFC 6120 §6.4): the server's stream feature plug-in.

The mechanisms themselves live in :mod:`xmpp_sansio.sasl`; this plug-in
offers them, carries their steps over ``<auth/>``, ``<challenge/>``,
``<response/>``, ``<success/>`` and ``<failure/>``, and asks the I/O layer
for stored credentials (:class:`CredentialsRequested`, answered with
``CredentialsProvided`` or ``CredentialsRefused``) or a PLAIN derivation
(:class:`DerivationRequested`, answered with ``DerivationProvided``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement

from ... import sasl
from ...errors import LocalProtocolError, StreamErrorCondition
from ...jid import JID, InvalidJID
from ...sasl.credentials import HASHES
from ...xml import ns
from ..answers import Answer, CredentialsProvided, CredentialsRefused, DerivationProvided
from ..config import ServerConfig
from ..events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    CredentialsUpgradable,
    DerivationRequested,
)
from ..state import Input, State
from .base import FeatureHost, Stage, _b64decode, _b64encode, _sasl_element

__all__ = ["MAX_UNCOUNTED_HASH_MISSES", "SASLFeature", "offered_mechanisms"]

#: SCRAM attempts per stream at a hash the account has no credentials for
#: that do not count toward ``max_auth_attempts``: the hashes a SHA-1-only
#: account lacks (SHA-512, SHA-256), each tried once.
MAX_UNCOUNTED_HASH_MISSES = len(HASHES) - 1

_SERVER_MECHANISMS = (
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
    "EXTERNAL",
    "ANONYMOUS",
)


class SASLFeature:
    """RFC 6120 §6.4.1: ``<mechanisms/>``; with ``-PLUS`` mechanisms, the channel
    binding types of this connection (XEP-0440 §2)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        mechanisms = offered_mechanisms(conn)
        if not mechanisms:
            return
        mechs = Element(ns.MECHANISMS_TAG)
        for name in mechanisms:
            SubElement(mechs, ns.MECHANISM_TAG).text = name
        yield mechs
        if any(name.endswith("-PLUS") for name in mechanisms):
            cb_types = Element(ns.SASL_CB_TAG)
            for binding in conn.tls_info.channel_bindings:
                SubElement(cb_types, "{" + ns.SASL_CB + "}channel-binding", type=binding.type)
            yield cb_types

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        if stage is Stage.BEFORE_AUTH:
            return (ns.AUTH_TAG, ns.RESPONSE_TAG, ns.ABORT_TAG)
        return ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        return _handle(conn, el)

    def answers(self) -> tuple[type[Answer], ...]:
        return (CredentialsProvided, CredentialsRefused, DerivationProvided)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        """The stored credentials (``None``: no such account), a refusal
        without a lookup (e.g. while backing off after repeated failures,
        §6.5.12 ``temporary-auth-failure``: it counts toward
        ``max_auth_attempts`` like any failure, §6.4.5), or PLAIN's PBKDF2
        result."""
        mech = conn._mechanism
        if isinstance(answer, DerivationProvided):
            if conn.state is not State.AWAIT_DERIVATION or mech is None:
                raise LocalProtocolError("no derivation was requested")
            conn._fire(Input.LOCAL_DERIVED)
            salted = answer.salted_password
            _step(conn, lambda: mech.provide_derived(salted))
        elif conn.state is not State.AWAIT_CREDENTIALS or mech is None:
            raise LocalProtocolError("no credentials were requested")
        elif isinstance(answer, CredentialsProvided):
            conn._fire(Input.LOCAL_CREDENTIALS)
            credentials = answer.credentials
            _step(conn, lambda: mech.provide_credentials(credentials))
        else:
            assert isinstance(answer, CredentialsRefused)
            if answer.condition is sasl.SASLCondition.ABORTED:
                raise LocalProtocolError("only the client aborts an exchange")
            _failure(conn, answer.condition)
        conn._process()


def offered_mechanisms(conn: FeatureHost) -> list[str]:
    """SASL mechanisms offered in the current features (RFC 6120 §6.4.1)."""
    if conn.authenticated_jid is not None:
        return []
    if conn.config.require_tls and not conn.tls_active:
        return []
    cfg = conn.config
    if conn.domain in cfg.anonymous_domains:
        return ["ANONYMOUS"]  # an anonymous-only host
    cb = bool(conn.tls_info.channel_bindings)
    names = []
    for name in _SERVER_MECHANISMS:
        if name.endswith("-PLUS") and not cb:
            continue
        if name == "PLAIN" and not (cfg.allow_plain and conn.tls_active):
            continue
        if name == "ANONYMOUS" and not cfg.allow_anonymous:
            continue
        if name == "EXTERNAL" and not (cfg.allow_external and conn._external_identity):
            continue
        names.append(name)
    return names


def _handle(conn: FeatureHost, el: Element) -> bool:
    """``<auth/>``, ``<response/>``, ``<abort/>`` before authentication
    (RFC 6120 §6.4.2-§6.4.4); one out of place is ``malformed-request``.
    Whether ``el`` was SASL's."""
    tag = el.tag
    state = conn.state
    if tag == ns.AUTH_TAG and state is State.NEGOTIATING:
        _start(conn, el)
    elif tag == ns.RESPONSE_TAG and state is State.SASL and conn._mechanism is not None:
        try:
            data = _b64decode(el.text)
        except ValueError:
            _failure(conn, sasl.SASLCondition.INCORRECT_ENCODING)
            return True
        mech = conn._mechanism
        _step(conn, lambda: mech.respond(data or b""))
    elif tag == ns.ABORT_TAG and state in (
        State.SASL,
        State.AWAIT_CREDENTIALS,
        State.AWAIT_DERIVATION,
    ):
        _failure(conn, sasl.SASLCondition.ABORTED)
    elif tag in (ns.AUTH_TAG, ns.RESPONSE_TAG, ns.ABORT_TAG):
        _failure(conn, sasl.SASLCondition.MALFORMED_REQUEST)
    else:
        return False
    return True


def _start(conn: FeatureHost, el: Element) -> None:
    _begin(conn, el.get("mechanism", ""), el.text)


def _begin(conn: FeatureHost, name: str, initial_text: str | None) -> None:
    """Start mechanism ``name`` with the base64 ``initial_text`` (RFC 6120
    §6.4.2; XEP-0388 §2.3 ``<initial-response/>``)."""
    if conn.config.require_tls and not conn.tls_active:
        _failure(conn, sasl.SASLCondition.ENCRYPTION_REQUIRED)
        return
    if name not in offered_mechanisms(conn):
        if name == "PLAIN" and not conn.tls_active:
            _failure(conn, sasl.SASLCondition.ENCRYPTION_REQUIRED)
        else:
            _failure(conn, sasl.SASLCondition.INVALID_MECHANISM)
        return
    try:
        initial = _b64decode(initial_text)
    except ValueError:
        _failure(conn, sasl.SASLCondition.INCORRECT_ENCODING)
        return
    offered = offered_mechanisms(conn)
    # RFC 5802 §6 treats "y" as a downgrade when -PLUS was offered; not once
    # this client tried -PLUS and was refused its binding type (XEP-0440
    # §4: e.g. tls-unique on TLS 1.3): "y" is then what it truly sees.
    advertised_plus = any(m.endswith("-PLUS") for m in offered) and not conn._cb_type_refused
    advertised = None
    if conn._sasl_ns == ns.SASL2:  # XEP-0474 downgrade protection (SASL2 streams)
        announced = any(m.endswith("-PLUS") for m in offered)  # <sasl-channel-binding/>
        types = tuple(b.type for b in conn.tls_info.channel_bindings) if announced else None
        advertised = (tuple(offered), types)
    try:
        mech = sasl.create_server_mechanism(
            name,
            nonce=conn.config.rng(18),
            channel_binding=conn.tls_info.channel_bindings,
            advertised_plus=advertised_plus,
            external_identity=conn._external_identity,
            decoy_key=conn.config.decoy_key,
            decoy_iterations=conn.config.decoy_iterations,
            advertised=advertised,
        )
    except sasl.SASLFailure as exc:
        _failure(conn, exc.condition, exc.text)
        return
    conn._mechanism = mech
    conn._fire(Input.SASL_STARTED)
    _step(conn, lambda: mech.start(initial))


def _step(conn: FeatureHost, step: Callable[[], sasl.ServerStep]) -> None:
    mech = conn._mechanism
    assert mech is not None
    try:
        result = step()
    except sasl.SASLFailure as exc:
        if isinstance(exc, sasl.UnsupportedChannelBinding):
            conn._cb_type_refused = True
        counts = exc.counts
        if isinstance(exc, sasl.MissingCredentials):
            # An account lacking this hash (imported with SHA-1 only): a
            # client trying SHA-512 then SHA-256 misses twice; more misses
            # on one stream count, so no stream probes without end.
            counts = conn._hash_misses >= MAX_UNCOUNTED_HASH_MISSES
            conn._hash_misses += 1
        _failure(conn, exc.condition, exc.text, checked=exc.checked, counts=counts)
        return
    if isinstance(result, sasl.Challenge):
        conn._send_element(_element(conn, "challenge", _b64encode(result.data, empty=None)))
    elif isinstance(result, sasl.NeedCredentials):
        conn._fire(Input.NEED_CREDENTIALS)
        conn._pending_username = result.username
        conn._events.append(CredentialsRequested(result.username, mech.hash_name or "sha256"))
    elif isinstance(result, sasl.NeedDerivation):
        conn._fire(Input.NEED_DERIVATION)
        conn._events.append(
            DerivationRequested(result.password, result.salt, result.iterations, result.hash_name)
        )
    else:
        assert isinstance(result, sasl.Authenticated)
        _success(conn, mech.name, result)


def _success(conn: FeatureHost, mechanism: str, result: sasl.Authenticated) -> None:
    assert conn.domain is not None
    try:
        if result.username is None:  # ANONYMOUS: a fresh random account name
            jid = JID.from_parts(conn.config.rng(8).hex(), conn.domain, None)
        else:
            jid = JID.from_parts(result.username, conn.domain, None)
    except InvalidJID:
        _failure(conn, sasl.SASLCondition.NOT_AUTHORIZED)
        return
    if result.authzid:
        try:
            authz = JID.parse(result.authzid)
        except InvalidJID:
            authz = None
        if authz != jid:  # RFC 6120 §6.4.6: we only allow authorizing as oneself
            _failure(conn, sasl.SASLCondition.INVALID_AUTHZID)
            return
    sasl2 = conn._sasl_ns == ns.SASL2
    if sasl2:  # XEP-0388 §2.6.1: sent once the inline steps are done (bind2.py)
        success = Element("{" + ns.SASL2 + "}success")
        if result.additional_data is not None:
            SubElement(success, "{" + ns.SASL2 + "}additional-data").text = _b64encode(
                result.additional_data
            )
        SubElement(success, "{" + ns.SASL2 + "}authorization-identifier").text = str(jid)
    else:
        conn._send_element(_sasl_element("success", _b64encode(result.additional_data)))
    conn.authenticated_jid = jid
    conn._mechanism = None
    if result.upgrade_password is not None:
        conn._events.append(CredentialsUpgradable(jid, result.upgrade_password))
    conn._events.append(Authenticated(jid, mechanism, conn._user_agent if sasl2 else None))
    if sasl2:
        conn._sasl_ns = ns.SASL
        conn._fire(Input.SASL2_SUCCEEDED)
        conn._sasl2_authenticated(success)  # the inline steps read the user agent
    else:
        conn._user_agent = None
        # RFC 6120 §6.4.6: the receiving entity restarts on sending <success/>.
        conn._fire(Input.SASL_SUCCEEDED)


def _element(conn: FeatureHost, name: str, text: str | None = None) -> Element:
    """``name`` in the namespace of the exchange (RFC 6120 SASL or XEP-0388)."""
    el = Element("{" + conn._sasl_ns + "}" + name)
    el.text = text
    return el


def _failure(
    conn: FeatureHost,
    condition: sasl.SASLCondition,
    text: str | None = None,
    username: str | None = None,
    *,
    checked: bool = False,
    counts: bool = True,
) -> None:
    """Send ``<failure/>`` (RFC 6120 §6.4.5) and count the attempt.

    Every failure counts toward ``max_auth_attempts``, ``<abort/>`` and
    malformed requests included (§6.4.5: the receiving entity "SHOULD
    allow a configurable but reasonable number of retries"), except a
    channel binding type the connection lacks (``counts`` false: the
    client may pick another on this stream); ``checked`` tells the I/O
    layer's back-off whether a credential was verified.
    """
    # XEP-0388 §2.6.2: SASL2's <failure/> carries RFC 6120's condition.
    failure = _element(conn, "failure")
    SubElement(failure, "{" + ns.SASL + "}" + condition.value)
    if text:
        SubElement(failure, "{" + conn._sasl_ns + "}text").text = text
    conn._sasl_ns = ns.SASL
    conn._user_agent = None
    conn._inline = None  # XEP-0388 §2.6.2: no inline feature of a failed exchange
    conn._send_element(failure)
    conn._mechanism = None
    conn._fire(Input.SASL_FAILED)
    if counts:
        conn.auth_failures += 1
    conn._events.append(
        AuthenticationFailed(
            condition.value,
            text,
            username or conn._pending_username,
            credentials_checked=checked,
            counted=counts,
        )
    )
    conn._pending_username = None
    if conn.auth_failures >= conn.config.limits.max_auth_attempts:
        # RFC 6120 §6.4.5: too many retries -> <policy-violation/>.
        conn._stream_error(
            StreamErrorCondition.POLICY_VIOLATION, "too many authentication attempts"
        )
