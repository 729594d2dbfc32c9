"""The hosts table: which handler answers for each address (RFC 6120 §10).

A stanza's ``to`` domain chooses its handler before anything else is looked
at: an *account host* (a domain with user accounts: sessions, rosters,
offline storage... everything :class:`~xmpp_sansio.server.router.Router` and
its :class:`~xmpp_sansio.server.service.Service` list do), a *service host*
(a domain that one :class:`HostService` answers for as a whole: ``echo.``,
later ``conference.``, ``pubsub.``, an external component), or, for every
domain not in the table, the remote route (federation; until it exists,
``remote-server-not-found``).

Per-host settings hang off the entries: an account host may be
anonymous-only (SASL ANONYMOUS and nothing else, as operators set up
``anon.DOMAIN``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from ..disco import DiscoInfo, DiscoItem, DiscoItems, Identity, build_disco_info, build_disco_items
from ..jid import JID
from ..stanza import Iq, IqType, iq_result
from ..xml import ns
from .effects import Reply

if TYPE_CHECKING:
    from ..stanza import Stanza
    from .effects import Outcome
    from .stages import Context
    from .view import ServerView

_INFO_QUERY = f"{{{ns.DISCO_INFO}}}query"
_ITEMS_QUERY = f"{{{ns.DISCO_ITEMS}}}query"

__all__ = ["AccountHost", "Authentication", "HostService", "Hosts"]


class Authentication(Enum):
    """How users of an account host log in."""

    PASSWORD = "password"  # accounts with SCRAM credentials (PLAIN over TLS)
    ANONYMOUS = "anonymous"  # SASL ANONYMOUS only, a fresh account per login (RFC 4505)


@dataclass(frozen=True, slots=True)
class AccountHost:
    """A domain with user accounts, and its settings."""

    domain: str
    authentication: Authentication = Authentication.PASSWORD


class HostService:
    """A handler that answers for a whole domain: every stanza addressed to
    the domain or to any JID at it (``room@conference.example``) goes to
    :meth:`handle`, ``from`` stamped by the router. Like a
    :class:`~xmpp_sansio.server.service.Service`, it owns no I/O and never
    holds the router: it sees a read-only
    :class:`~xmpp_sansio.server.view.ServerView` and returns outcomes.

    ``identities`` and ``features`` are its disco#info (XEP-0030 §3), which the
    base class answers for the bare domain unless :meth:`handle` does; ``name``
    labels it in the server's disco#items.
    """

    name: ClassVar[str | None] = None
    identities: ClassVar[tuple[Identity, ...]] = ()
    features: ClassVar[tuple[str, ...]] = ()

    #: The server this service is plugged into (set by :meth:`attach`).
    server: ServerView

    def attach(self, server: ServerView, domain: str) -> None:
        """Called once by the router that will route to this service."""
        self.server = server
        self.domain = domain

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        """A stanza for this service's domain (or a JID at it); ``ctx`` has
        the time and entropy of the router call, as for the stages."""
        raise NotImplementedError

    def answer_disco(self, iq: Iq) -> list[Outcome] | None:
        """Answer a disco#info or disco#items get to the bare domain without a
        node (XEP-0030 §3.1, §4.1) from ``identities`` and ``features``;
        ``None`` if ``iq`` is no such query."""
        payload = iq.payload
        if iq.type is not IqType.GET or payload is None or payload.get("node") is not None:
            return None
        if iq.to is None or iq.to.local is not None or iq.to.resource is not None:
            return None
        if payload.tag == _INFO_QUERY:
            features = tuple(sorted({ns.DISCO_INFO, *self.features}))
            query = build_disco_info(DiscoInfo(self.identities, features))
        elif payload.tag == _ITEMS_QUERY:
            query = build_disco_items(DiscoItems())
        else:
            return None
        return [Reply(iq_result(iq.element, query))]


@dataclass(slots=True)
class Hosts:
    """The hosts table: account hosts and service hosts by domain (IDNA
    normalised); every other domain is remote."""

    accounts: dict[str, AccountHost] = field(default_factory=dict)
    services: dict[str, HostService] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        account_domains: Iterable[str | AccountHost],
        services: Mapping[str, HostService] | None = None,
    ) -> Hosts:
        """A table from account domains (names, or :class:`AccountHost` with
        settings) and service hosts; a domain may not be both."""
        hosts = cls()
        for entry in account_domains:
            host = entry if isinstance(entry, AccountHost) else AccountHost(entry)
            domain = JID.parse(host.domain).domain
            hosts.accounts[domain] = AccountHost(domain, host.authentication)
        for name, service in (services or {}).items():
            domain = JID.parse(name).domain
            if domain in hosts.accounts:
                raise ValueError(f"{domain} is an account host and a service host")
            hosts.services[domain] = service
        return hosts

    @property
    def account_domains(self) -> frozenset[str]:
        return frozenset(self.accounts)

    def service_items(self) -> tuple[DiscoItem, ...]:
        """The service hosts as the server's disco#items (XEP-0030 §4)."""
        return tuple(
            DiscoItem(JID.from_parts(None, domain, None), name=service.name)
            for domain, service in sorted(self.services.items())
        )
