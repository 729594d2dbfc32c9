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

__all__ = ["inbound_is_hosted", "remote_route"]


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
