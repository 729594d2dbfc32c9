"""Namespace names used across the library (RFC 6120, RFC 6121 and XEPs).

Tags are written in Clark notation, ``"{namespace}local"``, the form
:mod:`xml.etree.ElementTree` uses.
"""

from typing import Final

STREAMS: Final = "http://etherx.jabber.org/streams"
CLIENT: Final = "jabber:client"
SERVER: Final = "jabber:server"
COMPONENT_ACCEPT: Final = "jabber:component:accept"
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

XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"


def qname(namespace: str, local: str) -> str:
    """Return the Clark-notation tag ``{namespace}local``."""
    return f"{{{namespace}}}{local}"
