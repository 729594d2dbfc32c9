"""Small informational IQs the server answers about itself: software version
(XEP-0092) and entity time (XEP-0202).

Both answer only queries addressed to the server (``to`` a local domain or
absent); a query to an account's bare JID is not theirs (the router answers
``service-unavailable``). XEP-0199 pings of the server are answered by the
router itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final
from xml.etree.ElementTree import Element, SubElement

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import Iq, IqType, iq_result

from .effects import Bounce, Reply
from .service import IqService
from .stages import (
    Context,
)

if TYPE_CHECKING:
    from .effects import Outcome

__all__ = ["NS_TIME", "NS_VERSION", "TimeService", "VersionService", "format_utc"]

NS_VERSION: Final = "jabber:iq:version"
"""XEP-0092 software version."""
NS_TIME: Final = "urn:xmpp:time"
"""XEP-0202 entity time."""


def _handle(iq: Iq, to: JID | None, tag: str) -> bool | None:
    """``None`` if the iq is not a request for ``tag`` to the server; else
    whether it is a ``get`` (a ``set`` is refused)."""
    if to is not None or not iq.is_request or iq.payload is None or iq.payload.tag != tag:
        return None
    return iq.type is IqType.GET


class VersionService(IqService):
    """Answers ``jabber:iq:version`` queries to the server (XEP-0092 §2):
    ``name`` and ``version`` always, ``os`` only when given.

    The operating system is left out by default: revealing it may help
    attacks against it, and XEP-0092 §5 requires a way to disable sharing it.
    (XEP-0092 §1 leaves querying servers' versions allowed.) A ``set`` gets
    ``bad-request``.
    """

    server_features = (NS_VERSION,)

    def __init__(self, version: str, *, name: str = "xmpp-trio", os: str | None = None) -> None:
        self.name = name
        self.version = version
        self.os = os

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        is_get = _handle(iq, to, f"{{{NS_VERSION}}}query")
        if is_get is None:
            return None
        if not is_get:
            return [Bounce(iq.element, StanzaErrorCondition.BAD_REQUEST)]
        query = Element(f"{{{NS_VERSION}}}query")
        SubElement(query, f"{{{NS_VERSION}}}name").text = self.name
        SubElement(query, f"{{{NS_VERSION}}}version").text = self.version
        if self.os is not None:
            SubElement(query, f"{{{NS_VERSION}}}os").text = self.os
        return [Reply(iq_result(iq.element, query))]


def format_utc(timestamp: float) -> str:
    """UNIX seconds as a XEP-0082 DateTime in UTC with milliseconds, as
    XEP-0202 §2 requires for ``<utc/>``, e.g. ``2006-12-19T17:58:35.123Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TimeService(IqService):
    """Answers ``urn:xmpp:time`` queries to the server (XEP-0202 §2) with
    ``<tzo>+00:00</tzo>`` and ``<utc/>`` from the ``now`` of the router
    call (UNIX seconds).

    The offset is always ``+00:00``: the server keeps its clock in UTC, and
    reporting a local offset would leak its location (XEP-0202 §6). A
    ``set`` gets ``bad-request``.
    """

    server_features = (NS_TIME,)

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        is_get = _handle(iq, to, f"{{{NS_TIME}}}time")
        if is_get is None:
            return None
        if not is_get:
            return [Bounce(iq.element, StanzaErrorCondition.BAD_REQUEST)]
        time_el = Element(f"{{{NS_TIME}}}time")
        SubElement(time_el, f"{{{NS_TIME}}}tzo").text = "+00:00"
        SubElement(time_el, f"{{{NS_TIME}}}utc").text = format_utc(ctx.now)
        return [Reply(iq_result(iq.element, time_el))]
