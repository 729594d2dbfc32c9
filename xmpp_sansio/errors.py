"""Error conditions and the exception hierarchy.

Stream error conditions are RFC 6120 §4.9.3, stanza error conditions RFC 6120 §8.3.3
with the default error types RFC 6120 gives for each. Exceptions follow h11: a
:class:`LocalProtocolError` means this side misused the API, a
:class:`RemoteProtocolError` means the peer violated the protocol, and its
``condition`` names the stream error that the connection has already queued.
"""

from __future__ import annotations

from enum import StrEnum


class StreamErrorCondition(StrEnum):
    """Defined stream error conditions (RFC 6120 §4.9.3)."""

    BAD_FORMAT = "bad-format"
    BAD_NAMESPACE_PREFIX = "bad-namespace-prefix"
    CONFLICT = "conflict"
    CONNECTION_TIMEOUT = "connection-timeout"
    HOST_GONE = "host-gone"
    HOST_UNKNOWN = "host-unknown"
    IMPROPER_ADDRESSING = "improper-addressing"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    INVALID_FROM = "invalid-from"
    INVALID_NAMESPACE = "invalid-namespace"
    INVALID_XML = "invalid-xml"
    NOT_AUTHORIZED = "not-authorized"
    NOT_WELL_FORMED = "not-well-formed"
    POLICY_VIOLATION = "policy-violation"
    REMOTE_CONNECTION_FAILED = "remote-connection-failed"
    RESET = "reset"
    RESOURCE_CONSTRAINT = "resource-constraint"
    RESTRICTED_XML = "restricted-xml"
    SEE_OTHER_HOST = "see-other-host"
    SYSTEM_SHUTDOWN = "system-shutdown"
    UNDEFINED_CONDITION = "undefined-condition"
    UNSUPPORTED_ENCODING = "unsupported-encoding"
    UNSUPPORTED_FEATURE = "unsupported-feature"
    UNSUPPORTED_STANZA_TYPE = "unsupported-stanza-type"
    UNSUPPORTED_VERSION = "unsupported-version"


class StanzaErrorType(StrEnum):
    """The ``type`` attribute of a stanza ``<error/>`` (RFC 6120 §8.3.2)."""

    AUTH = "auth"
    CANCEL = "cancel"
    CONTINUE = "continue"
    MODIFY = "modify"
    WAIT = "wait"


class StanzaErrorCondition(StrEnum):
    """Defined stanza error conditions (RFC 6120 §8.3.3)."""

    BAD_REQUEST = "bad-request"
    CONFLICT = "conflict"
    FEATURE_NOT_IMPLEMENTED = "feature-not-implemented"
    FORBIDDEN = "forbidden"
    GONE = "gone"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    ITEM_NOT_FOUND = "item-not-found"
    JID_MALFORMED = "jid-malformed"
    NOT_ACCEPTABLE = "not-acceptable"
    NOT_ALLOWED = "not-allowed"
    NOT_AUTHORIZED = "not-authorized"
    POLICY_VIOLATION = "policy-violation"
    RECIPIENT_UNAVAILABLE = "recipient-unavailable"
    REDIRECT = "redirect"
    REGISTRATION_REQUIRED = "registration-required"
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"
    REMOTE_SERVER_TIMEOUT = "remote-server-timeout"
    RESOURCE_CONSTRAINT = "resource-constraint"
    SERVICE_UNAVAILABLE = "service-unavailable"
    SUBSCRIPTION_REQUIRED = "subscription-required"
    UNDEFINED_CONDITION = "undefined-condition"
    UNEXPECTED_REQUEST = "unexpected-request"

    @property
    def default_type(self) -> StanzaErrorType:
        """The error type RFC 6120 §8.3.3 shows for this condition."""
        return _DEFAULT_TYPES[self]


_C = StanzaErrorCondition
_T = StanzaErrorType
_DEFAULT_TYPES: dict[StanzaErrorCondition, StanzaErrorType] = {
    _C.BAD_REQUEST: _T.MODIFY,
    _C.CONFLICT: _T.CANCEL,
    _C.FEATURE_NOT_IMPLEMENTED: _T.CANCEL,
    _C.FORBIDDEN: _T.AUTH,
    _C.GONE: _T.CANCEL,
    _C.INTERNAL_SERVER_ERROR: _T.CANCEL,
    _C.ITEM_NOT_FOUND: _T.CANCEL,
    _C.JID_MALFORMED: _T.MODIFY,
    _C.NOT_ACCEPTABLE: _T.MODIFY,
    _C.NOT_ALLOWED: _T.CANCEL,
    _C.NOT_AUTHORIZED: _T.AUTH,
    _C.POLICY_VIOLATION: _T.MODIFY,
    _C.RECIPIENT_UNAVAILABLE: _T.WAIT,
    _C.REDIRECT: _T.MODIFY,
    _C.REGISTRATION_REQUIRED: _T.AUTH,
    _C.REMOTE_SERVER_NOT_FOUND: _T.CANCEL,
    _C.REMOTE_SERVER_TIMEOUT: _T.WAIT,
    _C.RESOURCE_CONSTRAINT: _T.WAIT,
    _C.SERVICE_UNAVAILABLE: _T.CANCEL,
    _C.SUBSCRIPTION_REQUIRED: _T.AUTH,
    _C.UNDEFINED_CONDITION: _T.CANCEL,
    _C.UNEXPECTED_REQUEST: _T.WAIT,
}


class ProtocolError(Exception):
    """Base class of the protocol errors this library raises."""


class LocalProtocolError(ProtocolError):
    """This side tried to do something the protocol or the current state forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol.

    The connection has already queued the stream error named by ``condition``
    and the closing ``</stream:stream>``: flush ``data_to_send()`` and close.
    """

    def __init__(self, condition: StreamErrorCondition, text: str | None = None) -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text
