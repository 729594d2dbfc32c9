"""What every SASL mechanism shares: failure conditions, errors, server steps and bases.

The mechanisms are pure objects: they never do I/O, read a clock or draw random
numbers. Nonces come in as arguments, credential look-ups are asked for with a
:class:`NeedCredentials` step, and the bytes they take and give are the raw
mechanism data: the stream layer does the base64 of RFC 6120 §6.4.2 (an empty
response is ``b""``, sent as ``=``; no response at all is ``None``).
"""

from __future__ import annotations

import base64
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn, TypeAlias

import precis_i18n

if TYPE_CHECKING:
    from .credentials import ScramCredentials


class SASLCondition(StrEnum):
    """SASL failure conditions of RFC 6120 §6.5; the values are the element names."""

    ABORTED = "aborted"
    ACCOUNT_DISABLED = "account-disabled"
    CREDENTIALS_EXPIRED = "credentials-expired"
    ENCRYPTION_REQUIRED = "encryption-required"
    INCORRECT_ENCODING = "incorrect-encoding"
    INVALID_AUTHZID = "invalid-authzid"
    INVALID_MECHANISM = "invalid-mechanism"
    MALFORMED_REQUEST = "malformed-request"
    MECHANISM_TOO_WEAK = "mechanism-too-weak"
    NOT_AUTHORIZED = "not-authorized"
    TEMPORARY_AUTH_FAILURE = "temporary-auth-failure"


class SASLFailure(Exception):
    """A server mechanism failed the exchange (RFC 6120 §6.4.5); always final.

    ``text`` is safe to send in the ``<text/>`` child of ``<failure/>``: a wrong
    password and an unknown user fail with the same condition and text, so the
    failure never tells which of the two it was.

    ``checked`` is true only when a credential was actually verified and found
    wrong (a wrong password or proof, or an unknown user given the same
    treatment): the failures a login back-off counts. Failures before any
    check (bad syntax, an unsupported channel binding, a detected downgrade)
    leave it false.

    ``counts`` is whether the failure counts as an authentication attempt
    (RFC 6120 §6.4.5 retries): False only for a channel binding type the
    connection lacks, which the client may correct on the same stream.
    """

    counts: bool = True

    def __init__(
        self, condition: SASLCondition, text: str | None = None, *, checked: bool = False
    ) -> None:
        super().__init__(condition.value if text is None else f"{condition.value}: {text}")
        self.condition = condition
        self.text = text
        self.checked = checked


class UnsupportedChannelBinding(SASLFailure):
    """A ``-PLUS`` mechanism asked for a channel binding type this connection
    lacks (RFC 5802 §6, ``unsupported-channel-binding-type`` in §7).

    ``not-authorized`` on the wire, before any credential was looked at, so it
    does not count as an attempt: the client may try another type or mechanism
    (XEP-0440 lists the supported types).
    """

    counts = False

    def __init__(self, cb_type: str) -> None:
        super().__init__(
            SASLCondition.NOT_AUTHORIZED, f"unsupported-channel-binding-type {cb_type!r}"
        )
        self.cb_type = cb_type


class MissingCredentials(SASLFailure):
    """The account exists but has no credentials for this mechanism's hash
    (e.g. imported with SCRAM-SHA-1 only, XEP-0227): ``not-authorized`` on
    the wire, exactly as for an unknown user (RFC 6120 §13.7.1), after the
    same decoy exchange; nothing was checked, so it neither counts as an
    attempt (§6.4.5) nor feeds a back-off: the client may try its next
    mechanism on the same stream.
    """

    counts = False

    def __init__(self) -> None:
        super().__init__(SASLCondition.NOT_AUTHORIZED)


class SASLClientError(Exception):
    """The server misbehaved: malformed challenge, bad nonce or server signature, ``e=``."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client in a ``<challenge/>`` (RFC 6120 §6.4.3)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NeedCredentials:
    """Look up the stored credentials of ``username`` and call ``provide_credentials``.

    ``username`` is the authentication identity exactly as the client sent it
    (unescaped, not case-folded): mapping it to an account is the caller's job.
    """

    username: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The client authenticated (RFC 6120 §6.4.6).

    ``username`` is ``None`` for ANONYMOUS. ``authzid`` is the requested
    authorization identity, unchecked: the caller decides whether to allow it
    (and fails with :attr:`SASLCondition.INVALID_AUTHZID` if not).
    ``additional_data`` goes in ``<success/>`` (SCRAM's server-final-message).
    """

    username: str | None
    authzid: str | None
    additional_data: bytes | None
    upgrade_password: str | None = field(default=None, repr=False)
    """PLAIN only: the verified password, when the account lacked the
    preferred hash, so the caller can add the missing credentials (the
    password upgrade of XEP-0480 §1, done at the one moment it is known)."""


@dataclass(frozen=True, slots=True)
class NeedDerivation:
    """Run PBKDF2 (RFC 8018 §5.2; SCRAM's ``Hi()``, RFC 5802 §2.2) on
    ``password`` with ``salt``, ``iterations`` and ``hash_name`` and call
    ``provide_derived`` with the salted password.

    The derivation is the expensive part of a PLAIN check; the mechanism asks
    for it instead of running it, so the I/O layer can run it off its event
    loop. An unknown user asks for the same derivation (same hash and
    iterations) as a real account, so the request does not tell them apart.
    """

    password: str = field(repr=False)
    hash_name: str
    salt: bytes
    iterations: int


ServerStep: TypeAlias = Challenge | NeedCredentials | NeedDerivation | Authenticated


class ClientMechanism(ABC):
    """The client side of one SASL exchange (RFC 4422 §3, RFC 6120 §6.4).

    Send :meth:`initial_response` in ``<auth/>``, answer each ``<challenge/>``
    with :meth:`challenge` and hand ``<success/>`` to :meth:`success`; only then
    is the exchange :attr:`complete` (for SCRAM: the server proved it knows the
    password). Every :class:`SASLClientError` is final: later calls raise again.
    """

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._complete = False
        self._error: str | None = None

    def initial_response(self) -> bytes | None:
        """The initial response for ``<auth/>`` (raw bytes; ``b""`` is the empty response)."""
        self._check_usable()
        return self._initial_response()

    def challenge(self, data: bytes) -> bytes:
        """Answer a ``<challenge/>``; raise :class:`SASLClientError` on bad input."""
        self._check_usable()
        try:
            return self._challenge(data)
        except SASLClientError as exc:
            self._error = str(exc)
            raise

    def success(self, data: bytes | None) -> None:
        """Take ``<success/>`` and its additional data; raise :class:`SASLClientError` if bad."""
        self._check_usable()
        try:
            self._success(data)
        except SASLClientError as exc:
            self._error = str(exc)
            raise
        self._complete = True

    @property
    def complete(self) -> bool:
        """True once :meth:`success` accepted the outcome."""
        return self._complete

    @abstractmethod
    def _initial_response(self) -> bytes | None: ...

    @abstractmethod
    def _challenge(self, data: bytes) -> bytes: ...

    @abstractmethod
    def _success(self, data: bytes | None) -> None: ...

    def _check_usable(self) -> None:
        if self._error is not None:
            raise SASLClientError(self._error)
        if self._complete:
            raise SASLClientError("the exchange is already complete")


class ServerMechanism(ABC):
    """The server side of one SASL exchange (RFC 4422 §3, RFC 6120 §6.4).

    Call :meth:`start` once, then :meth:`respond` for each client response and
    :meth:`provide_credentials` after each :class:`NeedCredentials` (and
    :meth:`provide_derived` after each :class:`NeedDerivation`). Any call out
    of that order, or after the exchange ended, raises
    ``SASLFailure(MALFORMED_REQUEST)``; every :class:`SASLFailure` is final.

    ``hash_name`` names the stored credentials the caller must look up
    (``"sha1"``, ``"sha256"``, ``"sha512"``), or is ``None`` when none are needed.
    """

    name: str
    hash_name: str | None

    def __init__(self, name: str, hash_name: str | None) -> None:
        self.name = name
        self.hash_name = hash_name
        self._started = False
        self._done = False

    def start(self, initial_response: bytes | None) -> ServerStep:
        """Begin with the ``<auth/>`` initial response (``None`` if none was sent)."""
        if self._started or self._done:
            self._fail(SASLCondition.MALFORMED_REQUEST, "exchange already started")
        self._started = True
        try:
            return self._finish(self._start(initial_response))
        except SASLFailure:
            self._done = True
            raise

    def respond(self, data: bytes) -> ServerStep:
        """Take the data of a client ``<response/>``."""
        self._check_step()
        try:
            return self._finish(self._respond(data))
        except SASLFailure:
            self._done = True
            raise

    def provide_credentials(self, credentials: ScramCredentials | None) -> ServerStep:
        """Continue after :class:`NeedCredentials`; ``None`` means no such user."""
        self._check_step()
        try:
            return self._finish(self._provide_credentials(credentials))
        except SASLFailure:
            self._done = True
            raise

    @abstractmethod
    def _start(self, initial_response: bytes | None) -> ServerStep: ...

    def provide_derived(self, salted_password: bytes) -> ServerStep:
        """Continue after :class:`NeedDerivation` with the PBKDF2 result."""
        self._check_step()
        try:
            return self._finish(self._provide_derived(salted_password))
        except SASLFailure:
            self._done = True
            raise

    def _respond(self, data: bytes) -> ServerStep:
        self._fail(SASLCondition.MALFORMED_REQUEST, "unexpected response")

    def _provide_credentials(self, credentials: ScramCredentials | None) -> ServerStep:
        self._fail(SASLCondition.MALFORMED_REQUEST, "no credentials were asked for")

    def _provide_derived(self, salted_password: bytes) -> ServerStep:
        self._fail(SASLCondition.MALFORMED_REQUEST, "no derivation was asked for")

    def _check_step(self) -> None:
        if not self._started or self._done:
            self._fail(SASLCondition.MALFORMED_REQUEST, "no exchange in progress")

    def _finish(self, step: ServerStep) -> ServerStep:
        if isinstance(step, Authenticated):
            self._done = True
        return step

    def _fail(
        self, condition: SASLCondition, text: str | None = None, *, checked: bool = False
    ) -> NoReturn:
        self._done = True
        raise SASLFailure(condition, text, checked=checked)


# --- helpers shared by the mechanisms ---

_USERNAME = precis_i18n.get_profile("UsernameCasePreserved")
_SASLNAME = re.compile(r"(?:[^=,\x00]|=2C|=3D)+")
_ESCAPES = {"=2C": ",", "=3D": "="}


def escape_saslname(name: str) -> str:
    """Escape ``=`` and ``,`` for a SCRAM/GS2 ``saslname`` (RFC 5802 §5.1)."""
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_saslname(value: str) -> str | None:
    """Undo :func:`escape_saslname`; ``None`` if ``value`` is no valid ``saslname`` (RFC 5802 §7)."""
    if _SASLNAME.fullmatch(value) is None:
        return None
    return re.sub("=2C|=3D", lambda m: _ESCAPES[m.group(0)], value)


def decode_utf8(data: bytes) -> str | None:
    """Strictly decode UTF-8, ``None`` if ``data`` is not valid UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def prepare_username(username: str) -> str:
    """Prepare a client's username with the PRECIS UsernameCasePreserved profile.

    RFC 8265 §3.4 is the successor of the SASLprep (RFC 4013) that RFC 5802 §5.1
    and RFC 4616 §2 ask of authentication identities; case mapping is left to
    the server. Raise ValueError if the username is not valid under the profile.
    """
    try:
        result: str = _USERNAME.enforce(username)
    except UnicodeEncodeError as exc:  # precis-i18n's error type
        raise ValueError(f"invalid username: {exc.reason}") from None
    return result


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) as a str."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 §4), ``None`` if ``text`` is not valid base64."""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None
