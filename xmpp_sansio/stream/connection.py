"""Client and server XML stream connections (RFC 6120 §4-§7), sans I/O.

Theory of operation
-------------------
A connection is fed bytes with :meth:`receive_data` (``receive_eof`` at end of
file) and hands back :class:`~xmpp_sansio.stream.events.Event` values from
:meth:`next_event` and bytes to write from :meth:`data_to_send`. Because XMPP
produces unsolicited output (features after a header, errors, a new header
after a restart), every input may queue output: the I/O layer drains
``data_to_send()`` after every call.

Negotiation (RFC 6120 §4.3) runs inside the connection. The server side
advertises features, runs STARTTLS and SASL, and binds a resource; it asks the
I/O layer for a few things only: to wrap the transport in TLS
(:class:`TLSRequested`, answered with :meth:`tls_established`), to look up
stored credentials (:class:`CredentialsRequested`, answered with
:meth:`ServerConnection.provide_credentials`, or refused with
:meth:`ServerConnection.refuse_credentials`) and, for PLAIN, to run the
password derivation (:class:`DerivationRequested`, answered with
:meth:`ServerConnection.provide_derived`): the connection never runs PBKDF2
itself, so the I/O layer can keep it off its event loop. With
``ServerConfig.ask_before_bind`` it also asks before binding a resource
(:class:`BindRequested`, answered with :meth:`ServerConnection.bind_accepted`
or :meth:`ServerConnection.bind_refused`). The client side picks STARTTLS,
the strongest SASL mechanism and binds, on its own.

Stream restarts (§4.3.3) replace the parser and keep the connection; while
negotiating, the parser runs in hold mode so that bytes after the restart
trigger go to the new parser, never to the old stream.

Stream management (XEP-0198) runs inside the connection too, over an
:class:`~xmpp_sansio.sm.SMState` that can outlive it. The server offers
``<sm/>`` with the post-authentication features; the client enables it right
after binding (§3), or, given the state of a previous connection, offers
``<resume/>`` instead of binding (§5). Once enabled, every stanza sent is
counted and queued until acknowledged, every stanza received is counted
(``h``), ``<r/>`` is answered at once, and ``<r/>`` is sent by the
:class:`~xmpp_sansio.sm.AckRequestPolicy` (also when output is drained). The
server asks the I/O layer to find the session to resume
(:class:`ResumeRequested`, answered with :meth:`ServerConnection.resume_accepted`
or :meth:`ServerConnection.resume_failed`), then retransmits what the client
did not handle, once. Client State Indication (XEP-0352) is a server feature
too: while the client is inactive, :meth:`ServerConnection.send` holds
presence updates (the latest per sender) and flushes them on ``<active/>``.

Errors: a protocol violation by the peer queues ``<stream:error/>`` and
``</stream:stream>``, moves to :attr:`State.ERROR`, and makes the next call to
:meth:`next_event` (after the events already produced) raise
:class:`~xmpp_sansio.errors.RemoteProtocolError`. Misuse raises
:class:`~xmpp_sansio.errors.LocalProtocolError`. Any other exception is a bug.

Layout
------
This module is the public entry point; the code lives by what it owns:
``state.py`` (the ``(state, input) -> (action, next state)`` tables, the only
place a transition is written), ``base.py`` (what both roles share and the
table driver), ``sm_stream.py`` (XEP-0198 as both roles share it), ``server.py`` (with
``server_role.py``: the header, the plug-in dispatch and the ready stream),
``features/`` (the server's stream features as plug-ins composed per profile,
a module per feature owning its elements and their handling), ``client.py``
and ``framing.py`` (TCP XML stream or RFC 7395 WebSocket messages beneath them).
"""

from __future__ import annotations

from .answers import TLSInfo
from .client import ClientConnection
from .features import _b64decode as _b64decode  # used by the SASL interop tests
from .features import _b64encode as _b64encode
from .framing import Framing, TCPFraming, WebSocketFraming
from .server import ServerConnection
from .state import State

__all__ = [
    "ClientConnection",
    "Framing",
    "ServerConnection",
    "State",
    "TCPFraming",
    "TLSInfo",
    "WebSocketFraming",
]
