"""The one-message mechanisms: PLAIN (RFC 4616), ANONYMOUS (RFC 4505), EXTERNAL (RFC 4422).

Each client sends everything in its initial response, so any challenge, and any
additional data with ``<success/>``, is a protocol error on the server's part.
A server that got no initial response sends an empty challenge first
(RFC 6120 §6.4.2) and takes the message from the client's response.
"""

from __future__ import annotations

import hmac
from abc import abstractmethod
from typing import Final

from .common import (
    Authenticated,
    Challenge,
    ClientMechanism,
    NeedCredentials,
    NeedDerivation,
    SASLClientError,
    SASLCondition,
    ServerMechanism,
    ServerStep,
    decode_utf8,
    prepare_username,
)
from .credentials import (
    HASHES,
    ScramCredentials,
    keys_from_salted_password,
    normalize_password,
)

MAX_TRACE_LENGTH: Final = 255
"""Longest ANONYMOUS trace information in characters (RFC 4505 §3)."""


class _OneShotClient(ClientMechanism):
    def __init__(self, name: str, message: bytes) -> None:
        super().__init__(name)
        self._message = message

    def _initial_response(self) -> bytes | None:
        return self._message

    def _challenge(self, data: bytes) -> bytes:
        raise SASLClientError(f"unexpected challenge in {self.name}")

    def _success(self, data: bytes | None) -> None:
        if data:
            raise SASLClientError(f"unexpected additional data with success in {self.name}")


class PlainClient(_OneShotClient):
    """PLAIN: ``[authzid] NUL authcid NUL passwd`` in UTF-8 (RFC 4616 §2).

    The username is prepared (:func:`.common.prepare_username`) and the
    password normalised with OpaqueString; invalid ones raise ValueError, as
    does an authzid containing NUL. Use it only over TLS (RFC 4616, Security
    Considerations).
    """

    def __init__(self, *, username: str, password: str, authzid: str | None = None) -> None:
        if authzid is not None and "\x00" in authzid:
            raise ValueError("the authzid must not contain NUL")
        message = "\x00".join(
            (authzid or "", prepare_username(username), normalize_password(password))
        )
        super().__init__("PLAIN", message.encode("utf-8"))


class AnonymousClient(_OneShotClient):
    """ANONYMOUS with optional trace information (RFC 4505 §2)."""

    def __init__(self, *, trace: str = "") -> None:
        if len(trace) > MAX_TRACE_LENGTH or "\x00" in trace:
            raise ValueError("invalid ANONYMOUS trace information")
        super().__init__("ANONYMOUS", trace.encode("utf-8"))


class ExternalClient(_OneShotClient):
    """EXTERNAL: the message is the authzid, or empty for none (RFC 4422 Appendix A)."""

    def __init__(self, *, authzid: str | None = None) -> None:
        if authzid is not None and "\x00" in authzid:
            raise ValueError("the authzid must not contain NUL")
        super().__init__("EXTERNAL", (authzid or "").encode("utf-8"))


class _OneShotServer(ServerMechanism):
    """Takes one client message, from the initial response or after an empty challenge."""

    def __init__(self, name: str, hash_name: str | None) -> None:
        super().__init__(name, hash_name)
        self._awaiting_message = False

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            self._awaiting_message = True
            return Challenge(b"")
        return self._message(initial_response)

    def _respond(self, data: bytes) -> ServerStep:
        if not self._awaiting_message:
            self._fail(SASLCondition.MALFORMED_REQUEST, "unexpected response")
        self._awaiting_message = False
        return self._message(data)

    @abstractmethod
    def _message(self, data: bytes) -> ServerStep: ...


class PlainServer(_OneShotServer):
    """PLAIN, verified against stored SCRAM credentials (RFC 4616 §2).

    After :class:`.common.NeedCredentials` the mechanism asks for the PBKDF2
    of the password with the salt and iteration count of the provided
    credentials (of any hash; ``hash_name`` asks for SHA-256) with a
    :class:`.common.NeedDerivation` step; :meth:`provide_derived` then
    compares the StoredKey in constant time. The mechanism never derives
    itself, so the I/O layer can run the derivation off its event loop.

    An unknown user (and a password that is not valid OpaqueString) asks for
    the same derivation as a real account: SHA-256 with ``decoy_iterations``
    (set it to the iteration count of stored credentials) and a 16-byte salt
    derived from ``decoy_key`` and the username, so neither the request nor
    its cost tells it apart (RFC 6120 §13.7.1 leaves enumeration to the
    server; we refuse to help it). Malformed messages (not UTF-8, not exactly
    two NULs, empty authcid or password) fail with ``malformed-request``
    before any check; a wrong password and an unknown user fail with
    ``not-authorized``, marked as checked. Verified against credentials of
    another hash than SHA-256 (an imported SHA-1-only account), the result
    carries ``upgrade_password`` so the caller can add the missing hashes.
    """

    def __init__(self, *, decoy_iterations: int = 4096, decoy_key: bytes | None = None) -> None:
        if decoy_iterations < 1:
            raise ValueError("decoy_iterations must be positive")
        super().__init__("PLAIN", "sha256")
        self._decoy_iterations = decoy_iterations
        self._decoy_key = decoy_key if decoy_key is not None else b"PLAIN decoy"
        self._authzid: str | None = None
        self._authcid = ""
        self._password: str | None = None
        self._credentials: ScramCredentials | None = None
        self._derivation: NeedDerivation | None = None

    def _message(self, data: bytes) -> ServerStep:
        text = decode_utf8(data)
        if text is None:
            self._fail(SASLCondition.MALFORMED_REQUEST, "PLAIN message is not UTF-8")
        parts = text.split("\x00")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            self._fail(SASLCondition.MALFORMED_REQUEST, "malformed PLAIN message")
        authzid, self._authcid, self._password = parts
        self._authzid = authzid or None
        return NeedCredentials(self._authcid)

    def _provide_credentials(self, credentials: ScramCredentials | None) -> ServerStep:
        password, self._password = self._password, None
        if password is None:
            self._fail(SASLCondition.MALFORMED_REQUEST, "no credentials were asked for")
        if credentials is not None and credentials.hash_name not in HASHES:
            raise ValueError(f"unsupported credentials hash {credentials.hash_name!r}")
        if credentials is None:
            hash_name, iterations = "sha256", self._decoy_iterations
            salt = hmac.new(
                self._decoy_key,
                b"PLAIN decoy salt\x00" + self._authcid.encode("utf-8"),
                "sha256",
            ).digest()[:16]
        else:
            hash_name, salt, iterations = (
                credentials.hash_name,
                credentials.salt,
                credentials.iterations,
            )
        try:
            normalize_password(password)
        except ValueError:  # not a valid OpaqueString: no stored password can match
            password, credentials = "invalid", None
        self._credentials = credentials
        self._derivation = NeedDerivation(password, hash_name, salt, iterations)
        return self._derivation

    def _provide_derived(self, salted_password: bytes) -> ServerStep:
        derivation, self._derivation = self._derivation, None
        credentials, self._credentials = self._credentials, None
        if derivation is None:
            self._fail(SASLCondition.MALFORMED_REQUEST, "no derivation was asked for")
        _, stored_key, _ = keys_from_salted_password(salted_password, derivation.hash_name)
        if credentials is None or not hmac.compare_digest(stored_key, credentials.stored_key):
            self._fail(SASLCondition.NOT_AUTHORIZED, checked=True)
        # Verified against another hash than the preferred one (an account
        # imported with SHA-1 only): hand the password on for the upgrade.
        upgrade = derivation.password if credentials.hash_name != self.hash_name else None
        return Authenticated(
            username=self._authcid,
            authzid=self._authzid,
            additional_data=None,
            upgrade_password=upgrade,
        )


class AnonymousServer(_OneShotServer):
    """ANONYMOUS (RFC 4505 §3): any trace of at most 255 UTF-8 characters is accepted.

    The trace is not kept; an invalid one fails with ``malformed-request``.
    Offering ANONYMOUS at all is the caller's policy (RFC 4505, Security Considerations).
    """

    def __init__(self) -> None:
        super().__init__("ANONYMOUS", None)

    def _message(self, data: bytes) -> ServerStep:
        trace = decode_utf8(data)
        if trace is None or len(trace) > MAX_TRACE_LENGTH:
            self._fail(SASLCondition.MALFORMED_REQUEST, "invalid trace information")
        return Authenticated(username=None, authzid=None, additional_data=None)


class ExternalServer(_OneShotServer):
    """EXTERNAL (RFC 4422 Appendix A): the identity comes from outside SASL.

    ``external_identity`` is what the I/O layer established, e.g. from a
    verified client certificate (XEP-0178); without one the exchange fails with
    ``not-authorized``. The client's message is an optional authzid: UTF-8
    without NUL, empty for none.
    """

    def __init__(self, *, external_identity: str | None) -> None:
        super().__init__("EXTERNAL", None)
        self._identity = external_identity

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if self._identity is None:
            self._fail(SASLCondition.NOT_AUTHORIZED, "no external identity established")
        return super()._start(initial_response)

    def _message(self, data: bytes) -> ServerStep:
        authzid = decode_utf8(data)
        if authzid is None or "\x00" in authzid:
            self._fail(SASLCondition.MALFORMED_REQUEST, "invalid authzid")
        return Authenticated(username=self._identity, authzid=authzid or None, additional_data=None)
