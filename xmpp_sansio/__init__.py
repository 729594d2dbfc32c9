"""A sans-IO XMPP library: protocol state machines and pure functions, no I/O.

The public API, importable from here (``from xmpp_sansio import JID,
ClientConnection``): JIDs (RFC 7622), errors, the stream connections with
their configs and events (RFC 6120; XEP-0114 components), stanza views and builders, the stanza
objects (``to_dict``/``from_dict``), IQ tracking, XEP-0198 state and the
client-side services (:mod:`xmpp_sansio.client`). The server core lives in
:mod:`xmpp_sansio.server`. See docs/client.md and docs/architecture.md.
"""

from .client import Addressing as Addressing
from .client import CapsCache as CapsCache
from .client import ClientServices as ClientServices
from .client import DiscoResponder as DiscoResponder
from .client import IqDispatcher as IqDispatcher
from .client import IqOutcome as IqOutcome
from .client import PresenceTracker as PresenceTracker
from .client import ReconnectPolicy as ReconnectPolicy
from .client import RosterCache as RosterCache
from .errors import LocalProtocolError as LocalProtocolError
from .errors import ProtocolError as ProtocolError
from .errors import RemoteProtocolError as RemoteProtocolError
from .errors import StanzaErrorCondition as StanzaErrorCondition
from .errors import StanzaErrorType as StanzaErrorType
from .errors import StreamErrorCondition as StreamErrorCondition
from .iq import IqError as IqError
from .iq import IqResult as IqResult
from .iq import IqTimeout as IqTimeout
from .iq import IqTracker as IqTracker
from .jid import JID as JID
from .jid import InvalidJID as InvalidJID
from .objects import IqObject as IqObject
from .objects import MessageObject as MessageObject
from .objects import PresenceObject as PresenceObject
from .objects import StanzaObject as StanzaObject
from .objects import object_from_dict as object_from_dict
from .objects import object_from_element as object_from_element
from .sm import SMState as SMState
from .stanza import Iq as Iq
from .stanza import IqType as IqType
from .stanza import Message as Message
from .stanza import MessageType as MessageType
from .stanza import Presence as Presence
from .stanza import PresenceShow as PresenceShow
from .stanza import PresenceType as PresenceType
from .stanza import StanzaError as StanzaError
from .stanza import StanzaKind as StanzaKind
from .stanza import StanzaValueError as StanzaValueError
from .stanza import can_reply_with_error as can_reply_with_error
from .stanza import error_reply as error_reply
from .stanza import iq_result as iq_result
from .stanza import make_iq as make_iq
from .stanza import make_message as make_message
from .stanza import make_presence as make_presence
from .stanza import parse_stanza as parse_stanza
from .stanza import stanza_kind as stanza_kind
from .stream.component import ComponentClientConnection as ComponentClientConnection
from .stream.component import ComponentServerConnection as ComponentServerConnection
from .stream.config import ClientConfig as ClientConfig
from .stream.config import ComponentClientConfig as ComponentClientConfig
from .stream.config import ComponentServerConfig as ComponentServerConfig
from .stream.config import Limits as Limits
from .stream.config import ServerConfig as ServerConfig
from .stream.connection import ClientConnection as ClientConnection
from .stream.connection import ServerConnection as ServerConnection
from .stream.events import Authenticated as Authenticated
from .stream.events import AuthenticationFailed as AuthenticationFailed
from .stream.events import BindRequested as BindRequested
from .stream.events import ClientStateChanged as ClientStateChanged
from .stream.events import ConnectionClosed as ConnectionClosed
from .stream.events import CredentialsRequested as CredentialsRequested
from .stream.events import CredentialsUpgradable as CredentialsUpgradable
from .stream.events import DerivationRequested as DerivationRequested
from .stream.events import NegotiationFailed as NegotiationFailed
from .stream.events import RegistrationRequested as RegistrationRequested
from .stream.events import ResourceBound as ResourceBound
from .stream.events import ResumeFailed as ResumeFailed
from .stream.events import ResumeRequested as ResumeRequested
from .stream.events import StanzaReceived as StanzaReceived
from .stream.events import StanzasAcknowledged as StanzasAcknowledged
from .stream.events import StreamClosed as StreamClosed
from .stream.events import StreamErrorReceived as StreamErrorReceived
from .stream.events import StreamManagementEnabled as StreamManagementEnabled
from .stream.events import StreamManagementFailed as StreamManagementFailed
from .stream.events import StreamOpened as StreamOpened
from .stream.events import StreamResumed as StreamResumed
from .stream.events import TLSRequested as TLSRequested

__all__ = [
    "JID",
    "Addressing",
    "Authenticated",
    "AuthenticationFailed",
    "BindRequested",
    "CapsCache",
    "ClientConfig",
    "ClientConnection",
    "ClientServices",
    "ClientStateChanged",
    "ComponentClientConfig",
    "ComponentClientConnection",
    "ComponentServerConfig",
    "ComponentServerConnection",
    "ConnectionClosed",
    "CredentialsRequested",
    "CredentialsUpgradable",
    "DerivationRequested",
    "DiscoResponder",
    "InvalidJID",
    "Iq",
    "IqDispatcher",
    "IqError",
    "IqObject",
    "IqOutcome",
    "IqResult",
    "IqTimeout",
    "IqTracker",
    "IqType",
    "Limits",
    "LocalProtocolError",
    "Message",
    "MessageObject",
    "MessageType",
    "NegotiationFailed",
    "Presence",
    "PresenceObject",
    "PresenceShow",
    "PresenceTracker",
    "PresenceType",
    "ProtocolError",
    "ReconnectPolicy",
    "RegistrationRequested",
    "RemoteProtocolError",
    "ResourceBound",
    "ResumeFailed",
    "ResumeRequested",
    "RosterCache",
    "SMState",
    "ServerConfig",
    "ServerConnection",
    "StanzaError",
    "StanzaErrorCondition",
    "StanzaErrorType",
    "StanzaKind",
    "StanzaObject",
    "StanzaReceived",
    "StanzaValueError",
    "StanzasAcknowledged",
    "StreamClosed",
    "StreamErrorCondition",
    "StreamErrorReceived",
    "StreamManagementEnabled",
    "StreamManagementFailed",
    "StreamOpened",
    "StreamResumed",
    "TLSRequested",
    "can_reply_with_error",
    "error_reply",
    "iq_result",
    "make_iq",
    "make_message",
    "make_presence",
    "object_from_dict",
    "object_from_element",
    "parse_stanza",
    "stanza_kind",
]
