"""The server's own ad-hoc commands (XEP-0050) as a service: ``<command/>``
iqs to the server's domain, disco#items of the ``commands`` node and
disco#info of each command node (XEP-0050 §2), the session expiry timer.

It also keeps who is online (``SessionBound``/``SessionUnbound``), which the
XEP-0133 commands read. With ``defer_derivations``, the writes that need
PBKDF2 (XEP-0133 §4.1 add-user, §4.7 change-user-password) are held, with
the answer they carry, until the I/O layer derived the SCRAM credentials off
the event loop (:meth:`AdhocService.take_derivations`,
:meth:`AdhocService.derived`), as XEP-0077 password changes are. Placed before :class:`~xmpp_sansio.server.disco.DiscoService`
so that the command nodes are answered here; it costs nothing to stanzas
that are not iqs to the server.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, Final

from ...disco import DiscoInfo, DiscoItems, Identity, build_disco_info, build_disco_items
from ...errors import StanzaErrorCondition
from ...jid import JID
from ...sasl.credentials import ScramCredentials
from ...stanza import Iq, IqType, iq_result
from ..effects import AccountCreate, AccountPassword, Bounce, Outcome, Persist, Reply
from ..service import Deferred, IqService
from ..stages import Committed, Context, Event, Request, SessionBound, SessionUnbound, Stage
from .engine import NS_COMMANDS, AdhocEngine
from .xep0133 import GROUPS, AdminCommands

__all__ = ["AdhocService"]

_COMMAND: Final = f"{{{NS_COMMANDS}}}command"
_INFO: Final = "{http://jabber.org/protocol/disco#info}query"
_ITEMS: Final = "{http://jabber.org/protocol/disco#items}query"
_DISCO_INFO_NS: Final = "http://jabber.org/protocol/disco#info"
_DISCO_ITEMS_NS: Final = "http://jabber.org/protocol/disco#items"


class AdhocService(IqService):
    """Answers ad-hoc commands sent to the server (``to`` a local domain or none)."""

    server_features: ClassVar[tuple[str, ...]] = (NS_COMMANDS,)
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.TIMER})
    observes: ClassVar[tuple[type[Event], ...]] = (SessionBound, SessionUnbound, Committed)
    handles: ClassVar[tuple[type[Request], ...]] = IqService.handles

    def __init__(
        self,
        engine: AdhocEngine,
        admin: AdminCommands | None = None,
        *,
        defer_derivations: bool = False,
    ) -> None:
        self.engine = engine
        #: The XEP-0133 commands, for the message of the day (sent at login).
        self.admin = admin
        #: The full JIDs of the bound sessions.
        self.online: set[JID] = set()
        self.defer_derivations = defer_derivations
        self._derivations: list[Persist] = []
        #: Set when a derivation is held (shared with the registration service).
        self.deferred = Deferred()

    @property
    def derivations_pending(self) -> bool:
        """Whether :meth:`take_derivations` has something to hand out."""
        return bool(self._derivations)

    def take_derivations(self) -> list[Persist]:
        """The held writes whose SCRAM credentials the I/O layer must derive
        (oldest first), each an ``AccountCreate`` or ``AccountPassword``
        without ``credentials``; answer each with :meth:`derived`."""
        held, self._derivations = self._derivations, []
        return held

    def derived(
        self, persist: Persist, credentials: tuple[ScramCredentials, ...] | None
    ) -> list[Outcome]:
        """Go on with a held write: commit it with ``credentials`` (then its
        answer follows), or, ``None`` (an invalid password), answer the
        command with ``not-acceptable`` (RFC 6120 §8.3.3.12)."""
        if credentials is None:
            if persist.stanza is None:
                return []
            return [Bounce(persist.stanza, StanzaErrorCondition.NOT_ACCEPTABLE)]
        op = persist.op
        assert isinstance(op, AccountCreate | AccountPassword)
        return [replace(persist, op=replace(op, credentials=credentials))]

    def _hold_derivations(self, outcomes: list[Outcome]) -> list[Outcome]:
        kept: list[Outcome] = []
        for outcome in outcomes:
            if isinstance(outcome, Persist):
                op = outcome.op
                if isinstance(op, AccountCreate | AccountPassword) and op.credentials is None:
                    self._derivations.append(outcome)
                    self.deferred.pending = True
                    continue
            kept.append(outcome)
        return kept

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        if type(event) is SessionBound:
            self.online.add(event.session.jid)
            if self.admin is not None and self.admin.motd:
                return self.admin.motd_for(event.session.jid)
        elif type(event) is SessionUnbound:
            self.online.discard(event.session.jid)
        elif type(event) is Committed and self.admin is not None and not event.failed:
            for op in event.ops:
                self.admin.committed(op)
        return []

    def next_deadline(self) -> float | None:
        return self.engine.next_deadline()

    def handle_timer(self, ctx: Context) -> list[Outcome]:
        self.engine.expire(ctx.now)
        return []

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        payload = iq.payload
        if to is not None or payload is None or not iq.is_request or iq.from_ is None:
            return None
        tag = payload.tag
        entity = JID(None, iq.to.domain if iq.to is not None else iq.from_.domain, None)
        if tag == _COMMAND:
            outcomes = self.engine.handle(ctx, iq, entity)
            if self.defer_derivations and outcomes:
                return self._hold_derivations(outcomes)
            return outcomes
        if tag not in (_INFO, _ITEMS) or iq.type is not IqType.GET:
            return None
        node = payload.get("node")
        admin = self.admin
        if admin is not None and node != NS_COMMANDS and admin.is_admin(iq.from_.bare):
            answered = self._admin_disco(iq, tag, node, entity, admin)
            if answered is not None:
                return answered
        if node is None:
            return None
        if tag == _ITEMS:
            if node != NS_COMMANDS:
                return None
            items = self.engine.items(iq.from_, entity)
            return [Reply(iq_result(iq.element, build_disco_items(items)))]
        if node == NS_COMMANDS:
            return None
        info = self.engine.info(node, iq.from_)
        if info is None:
            if node in self.engine.commands:
                return [Bounce(iq.element, StanzaErrorCondition.FORBIDDEN)]
            return None
        return [Reply(iq_result(iq.element, build_disco_info(info)))]

    def _admin_disco(
        self, iq: Iq, tag: str, node: str | None, entity: JID, admin: AdminCommands
    ) -> list[Outcome] | None:
        """The seed's listing for administrators (XEP-0133 §3): the group
        nodes after the service hosts, and each group's items and info."""
        if tag == _ITEMS:
            group = admin.group_items(node, entity)
            if group is None:
                return None
            items = (
                group.items if node is not None else (*self.server.service_items(), *group.items)
            )
            answer = build_disco_items(DiscoItems(items, node))
            return [Reply(iq_result(iq.element, answer))]
        if node is None or node not in GROUPS:
            return None
        info = DiscoInfo(
            (Identity("hierarchy", "branch", GROUPS[node][0]),),
            (_DISCO_INFO_NS, _DISCO_ITEMS_NS),
            node=node,
        )
        return [Reply(iq_result(iq.element, build_disco_info(info)))]
