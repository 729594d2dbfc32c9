"""Which received messages concern a bot, and how (sans I/O).

Theory of operation: a bot answers one-to-one messages and room messages
addressed to it by nickname (``bot: ping``, ``bot, ping``, ``@bot ping``).
:meth:`Addressing.classify` decides, for one message:

* ignored: no body or sender; ``error`` and ``headline`` messages (RFC 6121
  §5.2.2: not to be answered); in a room, the room's echo of the bot's own
  message (sender resource = the bot's nickname, XEP-0045 §7.4) and
  discussion history (a ``<delay/>``, XEP-0045 §7.2.15, XEP-0203); in
  one-to-one chat, messages from the bot's own account (another resource,
  or a carbon of its own message);
* else the body, and the text after the nickname when the message is
  *addressed* to the bot: always in one-to-one chat (the prefix being
  optional there), in a room only with the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xmpp_sansio.jid import JID
from xmpp_sansio.objects import MessageObject
from xmpp_sansio.stanza import MessageType

__all__ = ["Addressing", "Classified"]


@dataclass(frozen=True, slots=True)
class Classified:
    """A message that concerns the bot.

    Attributes:
        body: the whole body.
        addressed: the body without the nickname prefix if the message is
            addressed to the bot, else ``None``.
    """

    body: str
    addressed: str | None


class Addressing:
    """The addressing rules of a bot with account ``account`` and ``nickname``."""

    def __init__(self, account: JID, nickname: str) -> None:
        self.account = account.bare
        self.nickname = nickname
        self._prefix = re.compile(
            rf"^\s*@?{re.escape(nickname)}(?:[:,]\s*|\s+|$)(?P<rest>.*)$",
            re.IGNORECASE | re.DOTALL,
        )

    def strip_nickname(self, body: str) -> str | None:
        """``body`` without a leading nickname, or ``None`` if it has none."""
        match = self._prefix.match(body)
        return None if match is None else match["rest"]

    def is_room_echo(self, message: MessageObject) -> bool:
        """A groupchat message the bot sent itself (the room reflects it,
        XEP-0045 §7.4) or history the room replays on join (§7.2.15)."""
        sender = message.from_
        return (
            message.type is MessageType.GROUPCHAT
            and sender is not None
            and (sender.resource == self.nickname or message.delay is not None)
        )

    def classify(self, message: MessageObject) -> Classified | None:
        """How ``message`` concerns the bot; ``None``: ignore it (see the module)."""
        body = message.body
        sender = message.from_
        if body is None or sender is None:
            return None
        if message.type in (MessageType.ERROR, MessageType.HEADLINE):
            return None
        if message.type is MessageType.GROUPCHAT:
            if self.is_room_echo(message):
                return None
            return Classified(body, self.strip_nickname(body))
        if sender.bare == self.account:
            return None
        stripped = self.strip_nickname(body)
        return Classified(body, body if stripped is None else stripped)
