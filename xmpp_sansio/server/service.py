"""Server services: the extension points of the routing core.

Theory of operation
-------------------
The :class:`~xmpp_sansio.server.router.Router` owns the session table and the
RFC 6121 §8 delivery rules. Everything else a server does (rosters, presence
subscriptions, offline storage, blocking, carbons, disco, vCards...) is a
:class:`Service` in the list given to the router. A service *joins* stages of
the pipeline (:mod:`xmpp_sansio.server.stages`) by declaring them:
``stages`` (outbound filter, transform, inbound filter, timer), ``handles``
(the request types it answers or keeps) and ``observes`` (the event types it
watches). The router builds one list of services per stage and per request
or event type when it starts, and calls only those, in list order; a
service that overrides a stage method it did not declare (or declares one it
does not implement) is refused then.

Every stage method gets a :class:`~xmpp_sansio.server.stages.Context` (the
time and the entropy of the router call) and returns outcomes
(:mod:`xmpp_sansio.server.effects`); a filter or handler returns ``None`` to
pass the stanza on.

Services are synchronous and own no I/O, no clock and no randomness: what
they store goes through a storage object passed to their constructor (a
Protocol they define, the contract a backend implements, with an in-memory
implementation for tests; ``xmpp_trio`` supplies SQLite ones). A service
never holds the router: it sees the server as a read-only
:class:`~xmpp_sansio.server.view.ServerView` (``self.server``: who is online,
which domains are local), and asks for everything else with outcomes. To send
a stanza from the server side (a roster push, a presence answer to a probe),
a service builds the element with its ``from`` and ``to`` and returns
:class:`~xmpp_sansio.server.effects.Route` of it, which the router routes by
the normal local delivery rules; a result or error for a request is a
:class:`~xmpp_sansio.server.effects.Reply`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from ..jid import JID
from ..stanza import Iq, StanzaKind
from .stages import Appended, Context, Event, IqReceived, MessageDelivered, Request, Stage

if TYPE_CHECKING:
    from .effects import Outcome
    from .view import BoundSession, ServerView

__all__ = ["Deferred", "IqService", "Service", "check_declaration", "joining"]


class Deferred:
    """Whether a service holds work for the I/O layer to take (a password
    change's PBKDF2, say): services set :attr:`pending` when they defer work,
    the I/O layer clears it when it takes all of it, so that it need not ask
    each service after every stanza (one attribute read)."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = False


class Service:
    """Base class: joins no stage. Declare the stages and override their methods."""

    #: disco#info features this service adds to the server (XEP-0030).
    server_features: ClassVar[tuple[str, ...]] = ()
    #: disco#info features this service adds to each account's bare JID.
    account_features: ClassVar[tuple[str, ...]] = ()

    #: The stages this service joins besides handle and observe.
    stages: ClassVar[frozenset[Stage]] = frozenset()
    #: The stanza kinds :meth:`filter_inbound` sees (``Stage.INBOUND``): the
    #: router never calls it for the others.
    inbound_kinds: ClassVar[frozenset[StanzaKind]] = frozenset(StanzaKind)
    #: The stanza kinds :meth:`filter_outbound` sees (``Stage.OUTBOUND``): the
    #: router never calls it for the others.
    outbound_kinds: ClassVar[frozenset[StanzaKind]] = frozenset(StanzaKind)
    #: The request types :meth:`handle` answers (``IqReceived``, ...).
    handles: ClassVar[tuple[type[Request], ...]] = ()
    #: The event types :meth:`observe` watches (``SessionUnbound``, ...).
    observes: ClassVar[tuple[type[Event], ...]] = ()
    #: Those of :attr:`observes` with nothing to do while :attr:`idle`: the
    #: router does not call :meth:`observe` for them then (see
    #: :mod:`xmpp_sansio.server.pipeline`).
    idle_observes: ClassVar[frozenset[type[Event]]] = frozenset()
    #: Those of :attr:`stages` (the filters, ``Stage.OUTBOUND`` and
    #: ``Stage.INBOUND``) that pass every stanza while :attr:`idle`: the
    #: router does not call them then (blocking while nobody blocks anyone,
    #: XEP-0191).
    idle_stages: ClassVar[frozenset[Stage]] = frozenset()
    #: Those of :attr:`observes` (``MessageDelivered`` only) with nothing to do
    #: for a message whose sender is of a local domain: the router calls
    #: :meth:`observe` for them only when the sender is remote (an archive
    #: keeps a local sender's message when it is sent, XEP-0313 §5.1.1).
    remote_observes: ClassVar[frozenset[type[Event]]] = frozenset()

    #: The server this service is plugged into, read-only (set by :meth:`attach`).
    server: ServerView

    def attach(self, server: ServerView) -> None:
        """Called once by the router that will call the stages."""
        self.server = server

    @property
    def idle(self) -> bool:
        """Whether the observers of :attr:`idle_observes` have nothing to do
        now and the filters of :attr:`idle_stages` pass every stanza. A
        service whose answer changes calls ``self.server.idle_changed()``
        right after the change (before the next stanza is routed)."""
        return False

    # -- Stage.OUTBOUND --------------------------------------------------------------

    def filter_outbound(
        self, ctx: Context, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        """A stanza a local session sent (``from`` already stamped). Return a list
        to stop or take it over (with the outcomes, e.g. an error), ``None`` to
        let it go on."""
        return None

    # -- Stage.TRANSFORM --------------------------------------------------------------

    def transform(
        self, ctx: Context, element: Element, sender: JID, to: JID | None
    ) -> Element | Appended:
        """A message on its way in (from a local session, after the outbound
        filters, or from outside via ``Router.route_inbound``), with its
        ``to`` as the router parsed it (``None`` if absent): return the
        element every later stage sees (``element`` itself to leave it alone;
        never mutate it, build a copy), or :data:`Appended` children to add
        at its end (the cheap way: no copy, no new parse). Stanzas the
        services originate (pushes, carbons) are not transformed."""
        return element

    # -- Stage.INBOUND ---------------------------------------------------------------

    def filter_inbound(
        self, ctx: Context, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        """A stanza about to be handled or delivered for the local account
        ``recipient`` (bare). Return a list to stop it, ``None`` to let it on."""
        return None

    # -- handle ------------------------------------------------------------------------

    def handle(self, ctx: Context, request: Request) -> list[Outcome] | None:
        """A request of a type in :attr:`handles`: the outcomes if this service
        takes it, ``None`` to let the next service (or the router's default)
        have it."""
        return None

    # -- observe -----------------------------------------------------------------------

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        """An event of a type in :attr:`observes`."""
        return []

    # -- Stage.TIMER -------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` should run next (UNIX seconds), if ever."""
        return None

    def handle_timer(self, ctx: Context) -> list[Outcome]:
        """Do the time-based work due at ``ctx.now``."""
        return []


class IqService(Service):
    """A service that answers iqs (RFC 6120 §8.2.3): it handles
    :class:`~xmpp_sansio.server.stages.IqReceived` by :meth:`handle_iq`.
    Most services are one."""

    handles: ClassVar[tuple[type[Request], ...]] = (IqReceived,)

    def handle(self, ctx: Context, request: Request) -> list[Outcome] | None:
        if type(request) is IqReceived:
            return self.handle_iq(ctx, request.iq, request.to)
        return None

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        """An iq for the server (``to`` is ``None``: no ``to`` or a local domain,
        RFC 6120 §10.3.3) or for the bare JID ``to`` of an existing local
        account (RFC 6121 §8.5.2.1.3); ``iq.from_`` is the sender's full JID.
        Results and errors come here too (answers to the server's own
        queries). The outcomes if the payload is this service's, else ``None``."""
        return None


#: The method behind each stage, and the declarations behind handle and observe.
_STAGE_METHODS = {
    Stage.OUTBOUND: ("filter_outbound",),
    Stage.TRANSFORM: ("transform",),
    Stage.INBOUND: ("filter_inbound",),
    Stage.TIMER: ("next_deadline", "handle_timer"),
}


def _overrides(service: Service, method: str) -> bool:
    return getattr(type(service), method) is not getattr(Service, method)


def check_declaration(service: Service) -> None:
    """Refuse a service whose stage declarations and methods disagree: a stage
    method it overrides must be declared (else it would never run) and a
    declared stage must be implemented."""
    joined = {
        stage
        for stage, methods in _STAGE_METHODS.items()
        for m in methods
        if _overrides(service, m)
    }
    name = type(service).__name__
    if bool(service.handles) != _overrides(service, "handle"):
        raise TypeError(f"{name}: 'handles' and handle() go together")
    if bool(service.observes) != _overrides(service, "observe"):
        raise TypeError(f"{name}: 'observes' and observe() go together")
    if not service.idle_observes <= set(service.observes):
        raise TypeError(f"{name}: 'idle_observes' must be among 'observes'")
    if not service.idle_stages <= {Stage.OUTBOUND, Stage.INBOUND} & set(service.stages):
        raise TypeError(f"{name}: 'idle_stages' must be filters among 'stages'")
    if not service.remote_observes <= {MessageDelivered} & set(service.observes):
        raise TypeError(f"{name}: 'remote_observes' must be MessageDelivered, among 'observes'")
    if joined != set(service.stages):
        raise TypeError(
            f"{type(service).__name__}: declares stages {sorted(s.value for s in service.stages)}"
            f" but implements {sorted(s.value for s in joined)}"
        )


def joining(services: Sequence[Service], stage: Stage) -> tuple[Service, ...]:
    """The services that join ``stage``, in list order."""
    return tuple(s for s in services if stage in s.stages)
