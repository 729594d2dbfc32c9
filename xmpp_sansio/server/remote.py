"""The remote route of the router (RFC 6120 §10.4.3, §13): what a stanza for
another domain becomes with federation on, and the checks on a stanza that
arrives over a server-to-server stream before the local delivery rules take
it (:meth:`~xmpp_sansio.server.router.Router.route_from_remote`).

The stream (:mod:`xmpp_sansio.stream.s2s`) has already closed a stream whose
stanza's ``from``/``to`` domains are not an authenticated pair
(``invalid-from``); the router checks again that the sender is at the
stream's domain (a mismatch is the I/O layer's bug) and that the recipient's
domain is one of ours: a server does not relay between two others.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError
from ..jid import JID, InvalidJID
from .effects import RouteRemote
from .hosts import Hosts

__all__ = ["inbound_is_hosted", "ping_answered", "remote_route", "server_ping", "without_payload"]

_IQ = "{jabber:client}iq"
_PING = "{urn:xmpp:ping}ping"


def remote_route(element: Element) -> RouteRemote | None:
    """The :class:`RouteRemote` for a stanza with ``from`` and a valid ``to``,
    else None (then it bounces as before)."""
    to = element.get("to")
    if to is None or element.get("from") is None:
        return None
    try:
        return RouteRemote(element, JID.parse(to).domain)
    except InvalidJID:
        return None


def without_payload(element: Element) -> Element:
    """What a stanza that could not be sent to a remote server is bounced as:
    its name and attributes, without its payload. Including the original XML
    in an error is a courtesy the sender must not depend on (RFC 6120 §8.3.1);
    a link's whole queue bounces at once, and with the payloads a queue of
    large stanzas would land on the sender in one burst over its XEP-0198
    unacknowledged bound (``sm_max_unacked_bytes``), closing its stream with
    ``resource-constraint``. Prosody's bounces carry no payload either."""
    return Element(element.tag, element.attrib)


def server_ping(local: str, remote: str, ping_id: str) -> Element:
    """XEP-0199 §4.3: a server-to-server ping, from our domain to the
    remote server itself, to find out whether an idle link still works."""
    iq = Element(_IQ, {"type": "get", "from": local, "to": remote, "id": ping_id})
    iq.append(Element(_PING))
    return iq


def ping_answered(element: Element, local: str, remote: str) -> str | None:
    """The id when ``element`` answers a :func:`server_ping` from ``local``
    to ``remote``: an iq result, or an error (a server without XEP-0199 says
    ``service-unavailable``, §4.3; it still answered); else None."""
    if (
        element.tag == _IQ
        and element.get("type") in ("result", "error")
        and element.get("from") == remote
        and element.get("to") == local
    ):
        return element.get("id")
    return None


def inbound_is_hosted(element: Element, origin: str, hosts: Hosts) -> bool:
    """Whether a stanza from the s2s stream authenticated for ``origin`` is for
    a domain of ``hosts`` (else it is not relayed: ``item-not-found``).

    Raises :class:`LocalProtocolError` when ``from``/``to`` are missing or
    invalid, or ``from`` is not at ``origin``: the stream checks these first
    (RFC 6120 §4.9.3.9 ``invalid-from``, §4.9.3.7 ``improper-addressing``).
    """
    try:
        sender = JID.parse(element.get("from") or "")
        to = JID.parse(element.get("to") or "")
    except InvalidJID:
        raise LocalProtocolError("a stanza from a remote server needs from and to") from None
    if sender.domain != origin:
        raise LocalProtocolError(f"{sender.domain} is not the stream's domain {origin}")
    return to.domain in hosts.accounts or to.domain in hosts.services
