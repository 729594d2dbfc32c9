"""The client side of XMPP as sans-IO services (no sockets, no clock).

* :mod:`.iq`: :class:`IqDispatcher` answers iq requests by payload namespace,
  ``service-unavailable`` for the rest (RFC 6120 §8.2.3, §8.4); XEP-0199 pings.
* :mod:`.services`: :class:`ClientServices`, the requests a client answers
  itself: roster pushes (RFC 6121 §2.1.6), disco#info/#items and caps
  (XEP-0030, XEP-0115, XEP-0390).
* :mod:`.reconnect`: :class:`ReconnectPolicy`, which failures end a
  reconnecting client and the backoff between attempts.
* :mod:`.addressing`: which messages concern a bot (nickname addressing,
  the room's echo of its own messages).
* The client's state, from :mod:`xmpp_sansio.client_state`:
  :class:`RosterCache` (RFC 6121 §2), :class:`PresenceTracker` (§4),
  :class:`CapsCache` (XEP-0115 §8.2).

``xmpp_trio.im`` and ``xmpp_trio.bot`` move the stanzas; the decisions are here.
"""

from xmpp_sansio.client_state import CapsCache as CapsCache
from xmpp_sansio.client_state import PresenceTracker as PresenceTracker
from xmpp_sansio.client_state import PresenceUpdate as PresenceUpdate
from xmpp_sansio.client_state import RejectedPush as RejectedPush
from xmpp_sansio.client_state import ResourcePresence as ResourcePresence
from xmpp_sansio.client_state import RosterCache as RosterCache
from xmpp_sansio.client_state import RosterPush as RosterPush
from xmpp_sansio.client_state import parse_push as parse_push
from xmpp_sansio.client_state import roster_remove_query as roster_remove_query
from xmpp_sansio.client_state import roster_set_query as roster_set_query

from .addressing import Addressing as Addressing
from .addressing import Classified as Classified
from .iq import IqDispatcher as IqDispatcher
from .iq import IqHandler as IqHandler
from .iq import IqOutcome as IqOutcome
from .iq import answer_ping as answer_ping
from .iq import ping_dispatcher as ping_dispatcher
from .iq import service_unavailable as service_unavailable
from .reconnect import BOT_RECONNECT as BOT_RECONNECT
from .reconnect import ReconnectPolicy as ReconnectPolicy
from .reconnect import backoff_delay as backoff_delay
from .services import BASE_FEATURES as BASE_FEATURES
from .services import CAPS_NODE as CAPS_NODE
from .services import DEFAULT_IDENTITY as DEFAULT_IDENTITY
from .services import ClientServices as ClientServices
from .services import DiscoResponder as DiscoResponder
from .services import answer_roster_push as answer_roster_push

__all__ = [
    "BASE_FEATURES",
    "BOT_RECONNECT",
    "CAPS_NODE",
    "DEFAULT_IDENTITY",
    "Addressing",
    "CapsCache",
    "Classified",
    "ClientServices",
    "DiscoResponder",
    "IqDispatcher",
    "IqHandler",
    "IqOutcome",
    "PresenceTracker",
    "PresenceUpdate",
    "ReconnectPolicy",
    "RejectedPush",
    "ResourcePresence",
    "RosterCache",
    "RosterPush",
    "answer_ping",
    "answer_roster_push",
    "backoff_delay",
    "parse_push",
    "ping_dispatcher",
    "roster_remove_query",
    "roster_set_query",
    "service_unavailable",
]
