"""Namespace names used across the library (RFC 6120, RFC 6121 and XEPs).

Tags are written in Clark notation, ``"{namespace}local"``, the form
:mod:`xml.etree.ElementTree` uses.
"""

from typing import Final

STREAMS: Final = "http://etherx.jabber.org/streams"
CLIENT: Final = "jabber:client"
SERVER: Final = "jabber:server"
COMPONENT_ACCEPT: Final = "jabber:component:accept"  # XEP-0114
XML: Final = "http://www.w3.org/XML/1998/namespace"
XMLNS: Final = "http://www.w3.org/2000/xmlns/"

TLS: Final = "urn:ietf:params:xml:ns:xmpp-tls"
SASL: Final = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND: Final = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION: Final = "urn:ietf:params:xml:ns:xmpp-session"
STREAM_ERRORS: Final = "urn:ietf:params:xml:ns:xmpp-streams"
STANZA_ERRORS: Final = "urn:ietf:params:xml:ns:xmpp-stanzas"

PING: Final = "urn:xmpp:ping"
DISCO_INFO: Final = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS: Final = "http://jabber.org/protocol/disco#items"
ROSTER: Final = "jabber:iq:roster"
DELAY: Final = "urn:xmpp:delay"
SM: Final = "urn:xmpp:sm:3"  # XEP-0198
CSI: Final = "urn:xmpp:csi:0"  # XEP-0352
SASL_CB: Final = "urn:xmpp:sasl-cb:0"  # XEP-0440 §2
SASL2: Final = "urn:xmpp:sasl:2"  # XEP-0388
REGISTER: Final = "jabber:iq:register"  # XEP-0077
REGISTER_FEATURE: Final = "http://jabber.org/features/iq-register"  # XEP-0077 §8
FRAMING: Final = "urn:ietf:params:xml:ns:xmpp-framing"  # RFC 7395 §3.3

XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"

# Tags of the stream layer (RFC 6120 §4-§7, XEP-0198, XEP-0352, RFC 7395).
STREAM_TAG: Final = "{" + STREAMS + "}stream"
FEATURES_TAG: Final = "{" + STREAMS + "}features"
STREAM_ERROR_TAG: Final = "{" + STREAMS + "}error"
STARTTLS_TAG: Final = "{" + TLS + "}starttls"
PROCEED_TAG: Final = "{" + TLS + "}proceed"
TLS_FAILURE_TAG: Final = "{" + TLS + "}failure"
MECHANISMS_TAG: Final = "{" + SASL + "}mechanisms"
MECHANISM_TAG: Final = "{" + SASL + "}mechanism"
AUTH_TAG: Final = "{" + SASL + "}auth"
CHALLENGE_TAG: Final = "{" + SASL + "}challenge"
RESPONSE_TAG: Final = "{" + SASL + "}response"
SUCCESS_TAG: Final = "{" + SASL + "}success"
FAILURE_TAG: Final = "{" + SASL + "}failure"
ABORT_TAG: Final = "{" + SASL + "}abort"
SASL_CB_TAG: Final = "{" + SASL_CB + "}sasl-channel-binding"
BIND_TAG: Final = "{" + BIND + "}bind"
SESSION_TAG: Final = "{" + SESSION + "}session"
SM_TAG: Final = "{" + SM + "}sm"
SM_ENABLE_TAG: Final = "{" + SM + "}enable"
SM_ENABLED_TAG: Final = "{" + SM + "}enabled"
SM_RESUME_TAG: Final = "{" + SM + "}resume"
SM_RESUMED_TAG: Final = "{" + SM + "}resumed"
SM_FAILED_TAG: Final = "{" + SM + "}failed"
CSI_TAG: Final = "{" + CSI + "}csi"
CSI_ACTIVE_TAG: Final = "{" + CSI + "}active"
CSI_INACTIVE_TAG: Final = "{" + CSI + "}inactive"
REGISTER_QUERY_TAG: Final = "{" + REGISTER + "}query"
IQ_TAG: Final = "{" + CLIENT + "}iq"
OPEN_TAG: Final = "{" + FRAMING + "}open"
CLOSE_TAG: Final = "{" + FRAMING + "}close"
HANDSHAKE_TAG: Final = "{" + COMPONENT_ACCEPT + "}handshake"  # XEP-0114 §3


def qname(namespace: str, local: str) -> str:
    """Return the Clark-notation tag ``{namespace}local``."""
    return f"{{{namespace}}}{local}"
