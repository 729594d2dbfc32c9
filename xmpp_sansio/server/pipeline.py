"""The stage tables of the :class:`~xmpp_sansio.server.router.Router`: which
services each stage calls (:mod:`xmpp_sansio.server.stages`).

A mixin of the router, kept apart so that each module stays within its size
limit. The tables are built once, when the router starts, from the services'
declarations (:class:`~xmpp_sansio.server.service.Service`): one tuple of
services per stage, per stanza kind for the filters, per request and per
event type, so that a stanza calls only the services that joined its stage.

The observer and filter tables can change: a service whose observers of
some event types (:attr:`~xmpp_sansio.server.service.Service.idle_observes`)
have nothing to do while it is idle (carbons while no session enabled them,
XEP-0280), or whose filters
(:attr:`~xmpp_sansio.server.service.Service.idle_stages`) pass every stanza
then (blocking while nobody blocks anyone, XEP-0191), is left out of those
tables while :attr:`~xmpp_sansio.server.service.Service.idle` is true, and
says when that changes (:meth:`StageTables.idle_changed`, on its
:class:`~xmpp_sansio.server.view.ServerView`): the tables are built again at
once, so the next stanza meets the filter (a block applies from the very
next stanza, XEP-0191 §3.3). With no observer left for
``MessageSent`` and ``MessageDelivered`` (archives off, no carbons enabled),
the router does not even build those events; nor ``MessageDelivered`` for a
sender of a local domain when its only observers declare it in
:attr:`~xmpp_sansio.server.service.Service.remote_observes` (the archive).
"""

from __future__ import annotations

from typing import get_args

from xmpp_sansio.stanza import StanzaKind

from .service import Service, check_declaration, joining
from .stages import (
    Event,
    IqReceived,
    MessageDelivered,
    MessageSent,
    ProbeReceived,
    Request,
    Stage,
    SubscriptionReceived,
    Undeliverable,
)

__all__ = ["StageTables"]


class StageTables:
    """The router's per-stage service tuples (see the module docstring)."""

    services: tuple[Service, ...]

    def _build_stage_tables(self) -> None:
        """Check every service's declarations and build the tables (at start)."""
        services = self.services
        for service in services:
            check_declaration(service)
        self._transform = joining(services, Stage.TRANSFORM)
        self._build_filters()
        self._timed = joining(services, Stage.TIMER)
        self._handlers: dict[type[Request], tuple[Service, ...]] = {
            kind: tuple(s for s in services if kind in s.handles)
            for kind in (IqReceived, Undeliverable, SubscriptionReceived, ProbeReceived)
        }
        self._build_observers()

    def _build_filters(self) -> None:
        """The filter tables, without the idle filters of idle services."""
        self._outbound = self._active(Stage.OUTBOUND)
        self._outbound_by_kind = {  # ``outbound_kinds``: presence's filter sees presence only
            k: tuple(s for s in self._outbound if k in s.outbound_kinds) for k in StanzaKind
        }
        self._inbound = self._active(Stage.INBOUND)
        # ... and per stanza kind for the inbound filters (``inbound_kinds``).
        self._inbound_by_kind: dict[StanzaKind | None, tuple[Service, ...]] = {
            k: tuple(s for s in self._inbound if k in s.inbound_kinds) for k in StanzaKind
        }
        self._inbound_by_kind[None] = self._inbound
        self._inbound_messages = self._inbound_by_kind[StanzaKind.MESSAGE]

    def _active(self, stage: Stage) -> tuple[Service, ...]:
        return tuple(
            s for s in joining(self.services, stage) if not (stage in s.idle_stages and s.idle)
        )

    def _build_observers(self) -> None:
        """The observer tables, without the idle observers of idle services."""
        self._observers: dict[type[Event], tuple[Service, ...]] = {
            kind: tuple(
                s
                for s in self.services
                if kind in s.observes and not (kind in s.idle_observes and s.idle)
            )
            for kind in get_args(Event)
        }
        # Once or twice a message: the router reads these two directly.
        self._message_sent = self._observers[MessageSent]
        self._message_delivered = self._observers[MessageDelivered]
        # ... for a sender of a local domain (``remote_observes`` left out).
        self._delivered_local = tuple(
            s for s in self._message_delivered if MessageDelivered not in s.remote_observes
        )

    def idle_changed(self) -> None:
        """A service's :attr:`~xmpp_sansio.server.service.Service.idle` changed:
        the filter and observer tables are built again (from the next stanza
        and event on; an event being observed keeps the observers it started
        with)."""
        self._build_filters()
        self._build_observers()
