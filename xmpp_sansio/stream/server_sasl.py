"""The SASL part of the server side of a c2s stream (RFC 6120 §6.4).

The mechanisms themselves live in :mod:`xmpp_sansio.sasl`; this part carries
their steps over ``<auth/>``, ``<challenge/>``, ``<response/>``, ``<success/>``
and ``<failure/>``, and asks the I/O layer for stored credentials
(:class:`CredentialsRequested`) or a PLAIN derivation (:class:`DerivationRequested`).
"""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element, SubElement

from .. import sasl
from ..errors import LocalProtocolError, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..sasl.credentials import ScramCredentials
from ..xml import ns
from .events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
)
from .features import _b64decode, _b64encode, _sasl_element
from .server_role import _ServerRole
from .state import Input, State


class _ServerSASL(_ServerRole):
    """SASL on the server side (RFC 6120 §6.4)."""

    def provide_credentials(self, credentials: ScramCredentials | None) -> None:
        """Answer a :class:`CredentialsRequested` event (``None``: no such account)."""
        if self._state is not State.AWAIT_CREDENTIALS or self._mechanism is None:
            raise LocalProtocolError("no credentials were requested")
        self._fire(Input.LOCAL_CREDENTIALS)
        mech = self._mechanism
        self._sasl_step(lambda: mech.provide_credentials(credentials))
        self._process()

    def provide_derived(self, salted_password: bytes) -> None:
        """Answer a :class:`DerivationRequested` event with the PBKDF2 result."""
        if self._state is not State.AWAIT_DERIVATION or self._mechanism is None:
            raise LocalProtocolError("no derivation was requested")
        self._fire(Input.LOCAL_DERIVED)
        mech = self._mechanism
        self._sasl_step(lambda: mech.provide_derived(salted_password))
        self._process()

    def refuse_credentials(
        self, condition: sasl.SASLCondition = sasl.SASLCondition.TEMPORARY_AUTH_FAILURE
    ) -> None:
        """Answer a :class:`CredentialsRequested` event with a SASL failure
        without looking the credentials up, e.g. while backing off after
        repeated failures (RFC 6120 §6.5.12 ``temporary-auth-failure``).

        Like any failure it emits :class:`AuthenticationFailed` and counts
        toward ``max_auth_attempts``; until that limit the stream stays open
        and the client may try again (RFC 6120 §6.4.5).
        """
        if self._state is not State.AWAIT_CREDENTIALS or self._mechanism is None:
            raise LocalProtocolError("no credentials were requested")
        if condition is sasl.SASLCondition.ABORTED:
            raise LocalProtocolError("only the client aborts an exchange")
        self._sasl_failure(condition)
        self._process()

    def _handle_sasl_element(self, el: Element) -> bool:
        """``<auth/>``, ``<response/>``, ``<abort/>`` before authentication
        (RFC 6120 §6.4.2-§6.4.4); one out of place is ``malformed-request``.
        Whether ``el`` was SASL's."""
        tag = el.tag
        state = self._state
        if tag == ns.AUTH_TAG and state is State.NEGOTIATING:
            self._start_sasl(el)
        elif tag == ns.RESPONSE_TAG and state is State.SASL and self._mechanism is not None:
            try:
                data = _b64decode(el.text)
            except ValueError:
                self._sasl_failure(sasl.SASLCondition.INCORRECT_ENCODING)
                return True
            mech = self._mechanism
            self._sasl_step(lambda: mech.respond(data or b""))
        elif tag == ns.ABORT_TAG and state in (
            State.SASL,
            State.AWAIT_CREDENTIALS,
            State.AWAIT_DERIVATION,
        ):
            self._sasl_failure(sasl.SASLCondition.ABORTED)
        elif tag in (ns.AUTH_TAG, ns.RESPONSE_TAG, ns.ABORT_TAG):
            self._sasl_failure(sasl.SASLCondition.MALFORMED_REQUEST)
        else:
            return False
        return True

    def _start_sasl(self, el: Element) -> None:
        name = el.get("mechanism", "")
        if self.config.require_tls and not self.tls_active:
            self._sasl_failure(sasl.SASLCondition.ENCRYPTION_REQUIRED)
            return
        if name not in self.offered_mechanisms:
            if name == "PLAIN" and not self.tls_active:
                self._sasl_failure(sasl.SASLCondition.ENCRYPTION_REQUIRED)
            else:
                self._sasl_failure(sasl.SASLCondition.INVALID_MECHANISM)
            return
        try:
            initial = _b64decode(el.text)
        except ValueError:
            self._sasl_failure(sasl.SASLCondition.INCORRECT_ENCODING)
            return
        offered = self.offered_mechanisms
        # RFC 5802 §6 treats "y" as a downgrade when -PLUS was offered; not once
        # this client tried -PLUS and was refused its binding type (XEP-0440
        # §4: e.g. tls-unique on TLS 1.3): "y" is then what it truly sees.
        advertised_plus = any(m.endswith("-PLUS") for m in offered) and not self._cb_type_refused
        try:
            mech = sasl.create_server_mechanism(
                name,
                nonce=self.config.rng(18),
                channel_binding=self._tls_info.channel_bindings,
                advertised_plus=advertised_plus,
                external_identity=self._external_identity,
                decoy_key=self.config.decoy_key,
                decoy_iterations=self.config.decoy_iterations,
            )
        except sasl.SASLFailure as exc:
            self._sasl_failure(exc.condition, exc.text)
            return
        self._mechanism = mech
        self._fire(Input.SASL_STARTED)
        self._sasl_step(lambda: mech.start(initial))

    def _sasl_step(self, step: Callable[[], sasl.ServerStep]) -> None:
        mech = self._mechanism
        assert mech is not None
        try:
            result = step()
        except sasl.SASLFailure as exc:
            if isinstance(exc, sasl.UnsupportedChannelBinding):
                self._cb_type_refused = True
            self._sasl_failure(exc.condition, exc.text, checked=exc.checked, counts=exc.counts)
            return
        if isinstance(result, sasl.Challenge):
            self._send_element(_sasl_element("challenge", _b64encode(result.data, empty=None)))
        elif isinstance(result, sasl.NeedCredentials):
            self._fire(Input.NEED_CREDENTIALS)
            self._pending_username = result.username
            self._events.append(CredentialsRequested(result.username, mech.hash_name or "sha256"))
        elif isinstance(result, sasl.NeedDerivation):
            self._fire(Input.NEED_DERIVATION)
            self._events.append(
                DerivationRequested(
                    result.password, result.salt, result.iterations, result.hash_name
                )
            )
        else:
            assert isinstance(result, sasl.Authenticated)
            self._sasl_success(mech.name, result)

    def _sasl_success(self, mechanism: str, result: sasl.Authenticated) -> None:
        assert self.domain is not None
        try:
            if result.username is None:  # ANONYMOUS: a fresh random account name
                jid = JID.from_parts(self.config.rng(8).hex(), self.domain, None)
            else:
                jid = JID.from_parts(result.username, self.domain, None)
        except InvalidJID:
            self._sasl_failure(sasl.SASLCondition.NOT_AUTHORIZED)
            return
        if result.authzid:
            try:
                authz = JID.parse(result.authzid)
            except InvalidJID:
                authz = None
            if authz != jid:  # RFC 6120 §6.4.6: we only allow authorizing as oneself
                self._sasl_failure(sasl.SASLCondition.INVALID_AUTHZID)
                return
        self._send_element(_sasl_element("success", _b64encode(result.additional_data)))
        self.authenticated_jid = jid
        self._mechanism = None
        self._events.append(Authenticated(jid, mechanism))
        # RFC 6120 §6.4.6: the receiving entity restarts on sending <success/>.
        self._fire(Input.SASL_SUCCEEDED)

    def _sasl_failure(
        self,
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
        failure = _sasl_element("failure")
        SubElement(failure, "{" + ns.SASL + "}" + condition.value)
        if text:
            SubElement(failure, "{" + ns.SASL + "}text").text = text
        self._send_element(failure)
        self._mechanism = None
        self._fire(Input.SASL_FAILED)
        if counts:
            self.auth_failures += 1
        self._events.append(
            AuthenticationFailed(
                condition.value,
                text,
                username or self._pending_username,
                credentials_checked=checked,
                counted=counts,
            )
        )
        self._pending_username = None
        if self.auth_failures >= self.config.limits.max_auth_attempts:
            # RFC 6120 §6.4.5: too many retries -> <policy-violation/>.
            self._stream_error(
                StreamErrorCondition.POLICY_VIOLATION, "too many authentication attempts"
            )
