"""The ``muc#user`` status codes this service sends (XEP-0045 §15.6, the
registrar's table)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "AFFILIATION_CHANGED",
    "BANNED",
    "CONFIG_CHANGED",
    "CREATED",
    "KICKED",
    "KICKED_ON_ERROR",
    "LOGGING_DISABLED",
    "LOGGING_ENABLED",
    "MEMBERS_ONLY_REMOVED",
    "NICK_CHANGED",
    "NICK_MODIFIED",
    "NON_ANONYMOUS",
    "NOW_FULLY_ANONYMOUS",
    "NOW_NON_ANONYMOUS",
    "NOW_SEMI_ANONYMOUS",
    "REMOVED_AFFILIATION",
    "SELF",
    "SHUTDOWN",
    "UNAVAILABLE_SHOWN",
]

#: §7.2.4: the room is non-anonymous (every occupant sees real JIDs).
NON_ANONYMOUS: Final = 100
#: §9.3: a user's affiliation changed while not in the room.
AFFILIATION_CHANGED: Final = 101
#: §10.2.1: unavailable members shown (not sent by this service).
UNAVAILABLE_SHOWN: Final = 102
#: §10.2.1: a room configuration change not related to privacy.
CONFIG_CHANGED: Final = 104
#: §7.2.3: presence refers to the occupant itself.
SELF: Final = 110
#: §7.2.12 / §10.2.1: room logging is now on.
LOGGING_ENABLED: Final = 170
#: §10.2.1: room logging is now off.
LOGGING_DISABLED: Final = 171
#: §10.2.1: the room is now non-anonymous.
NOW_NON_ANONYMOUS: Final = 172
#: §10.2.1: the room is now semi-anonymous.
NOW_SEMI_ANONYMOUS: Final = 173
#: §10.2.1: the room is now fully-anonymous (never sent: not supported).
NOW_FULLY_ANONYMOUS: Final = 174
#: §10.1.1: a new room was created.
CREATED: Final = 201
#: §7.2.3: the service assigned or modified the occupant's nick.
NICK_MODIFIED: Final = 210
#: §9.1: the user was banned.
BANNED: Final = 301
#: §7.6: the occupant's new nick.
NICK_CHANGED: Final = 303
#: §8.2: the occupant was kicked.
KICKED: Final = 307
#: §9.4: removed because of an affiliation change (members-only room).
REMOVED_AFFILIATION: Final = 321
#: §10.2: removed because the room became members-only.
MEMBERS_ONLY_REMOVED: Final = 322
#: §7.14 / §10.9: removed because the service is shutting down.
SHUTDOWN: Final = 332
#: §7.14 (XEP-0045 1.31): removed because of an error from the occupant.
KICKED_ON_ERROR: Final = 333
