"""Choosing and creating SASL mechanisms by name (RFC 6120 §6.3.3, §6.4.2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .channel_binding import ChannelBinding
from .common import (
    ClientMechanism,
    SASLCondition,
    SASLFailure,
    ServerMechanism,
    b64encode,
)
from .scram import SCRAM_MECHANISMS, ScramClient, ScramServer
from .simple import (
    AnonymousClient,
    AnonymousServer,
    ExternalClient,
    ExternalServer,
    PlainClient,
    PlainServer,
)

CLIENT_PREFERENCE: Final[tuple[str, ...]] = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "SCRAM-SHA-1",
    "PLAIN",
)
"""Mechanisms a client picks on its own, most preferred first."""

SERVER_MECHANISMS: Final[tuple[str, ...]] = (
    *SCRAM_MECHANISMS,
    "PLAIN",
    "ANONYMOUS",
    "EXTERNAL",
)
"""Every name :func:`create_server_mechanism` knows."""


def select_client_mechanism(
    offered: Iterable[str], *, tls: bool, channel_binding: bool, allow_plain: bool = True
) -> str | None:
    """The first of :data:`CLIENT_PREFERENCE` that the server offered, or ``None``.

    ``-PLUS`` mechanisms only when ``channel_binding`` (this client has binding
    data for the connection), PLAIN only when ``tls`` and ``allow_plain``
    (RFC 4616, Security Considerations). ANONYMOUS and EXTERNAL are never
    chosen here: a client that wants them asks for them by name.
    """
    names = {name.strip() for name in offered}
    for name in CLIENT_PREFERENCE:
        if name not in names:
            continue
        if name.endswith("-PLUS") and not channel_binding:
            continue
        if name == "PLAIN" and not (tls and allow_plain):
            continue
        return name
    return None


def _printable_nonce(nonce: bytes) -> str:
    if not nonce:
        raise ValueError("the nonce must not be empty")
    return b64encode(nonce).rstrip("=")


def create_client_mechanism(
    name: str,
    *,
    username: str,
    password: str,
    nonce: bytes,
    authzid: str | None = None,
    channel_binding: ChannelBinding | None = None,
    server_supports_plus: bool = False,
) -> ClientMechanism:
    """Create the client side of mechanism ``name``.

    ``nonce`` is raw random bytes (24 or more are good); SCRAM sends them base64
    encoded without padding. Other mechanisms ignore it, and ANONYMOUS and
    EXTERNAL also ignore ``username`` and ``password``. ``server_supports_plus``
    says whether the server offered any ``-PLUS`` mechanism; with
    ``channel_binding`` it decides the SCRAM gs2-cbind-flag (see
    :class:`.scram.ScramClient`). Raise ValueError for an unknown name, an empty
    nonce, a ``-PLUS`` mechanism without ``channel_binding``, or a username,
    password or authzid the mechanism cannot send.
    """
    if name in SCRAM_MECHANISMS:
        return ScramClient(
            name,
            username=username,
            password=password,
            client_nonce=_printable_nonce(nonce),
            authzid=authzid,
            channel_binding=channel_binding,
            server_supports_plus=server_supports_plus,
        )
    if name == "PLAIN":
        return PlainClient(username=username, password=password, authzid=authzid)
    if name == "ANONYMOUS":
        return AnonymousClient()
    if name == "EXTERNAL":
        return ExternalClient(authzid=authzid)
    raise ValueError(f"unknown SASL mechanism {name!r}")


def create_server_mechanism(
    name: str,
    *,
    nonce: bytes,
    channel_binding: ChannelBinding | Iterable[ChannelBinding] | None = None,
    advertised_plus: bool = False,
    external_identity: str | None = None,
    decoy_key: bytes | None = None,
    decoy_iterations: int = 4096,
    advertised: tuple[tuple[str, ...], tuple[str, ...] | None] | None = None,
) -> ServerMechanism:
    """Create the server side of mechanism ``name``, for the client's ``<auth/>``.

    ``nonce`` is raw random bytes for the SCRAM server nonce (sent base64
    encoded without padding). ``channel_binding`` is the binding data of this
    connection, one or several types (XEP-0440); ``advertised_plus`` whether
    ``-PLUS`` mechanisms were offered (for the RFC 5802 §6 downgrade check).
    ``external_identity`` is the identity EXTERNAL authenticates, ``None`` to
    refuse it. ``decoy_key`` (a fixed server secret) and ``decoy_iterations``
    shape the decoy challenge SCRAM sends for unknown users, and the decoy work
    of PLAIN: see :class:`.scram.ScramServer`. ``advertised`` (the mechanisms
    and, if XEP-0440 announced them, channel binding types of the features)
    adds XEP-0474's ``h=`` to SCRAM's server-first-message.

    Raise ``SASLFailure(INVALID_MECHANISM)`` for an unknown name, and for a
    ``-PLUS`` mechanism when there is no channel binding data (such a server
    cannot have offered it). Raise ValueError for an empty SCRAM nonce.
    """
    if channel_binding is None:
        bindings: tuple[ChannelBinding, ...] = ()
    elif isinstance(channel_binding, ChannelBinding):
        bindings = (channel_binding,)
    else:
        bindings = tuple(channel_binding)
    if name in SCRAM_MECHANISMS:
        if name.endswith("-PLUS") and not bindings:
            raise SASLFailure(SASLCondition.INVALID_MECHANISM, f"{name} is not available")
        return ScramServer(
            name,
            server_nonce=_printable_nonce(nonce),
            channel_bindings=bindings,
            advertised_plus=advertised_plus,
            decoy_key=decoy_key,
            decoy_iterations=decoy_iterations,
            advertised=advertised,
        )
    if name == "PLAIN":
        return PlainServer(decoy_iterations=decoy_iterations, decoy_key=decoy_key)
    if name == "ANONYMOUS":
        return AnonymousServer()
    if name == "EXTERNAL":
        return ExternalServer(external_identity=external_identity)
    raise SASLFailure(SASLCondition.INVALID_MECHANISM)
