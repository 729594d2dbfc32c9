"""A bot that greets contacts who come online and says who is online.

It greets a contact the first time one of the contact's resources becomes
available ("Hello, romeo! Good to see you."), answers ``who`` with the contacts
online, and accepts presence subscription requests, asking for a subscription
back (RFC 6121 §3), so that contacts who add the bot to their roster and
approve its request share their presence with it.

Run it against a local server (see docs/tutorial.md for creating the account)::

    BOT_PASSWORD=s3cret python examples/presence_bot.py presencebot@localhost \\
        --host 127.0.0.1 --port 5222 --ca-file data/tls/cert.pem

Then add ``presencebot@localhost`` as a contact in any client (Gajim, Dino,
Profanity, ...) and approve the bot's request to see your presence: the
server sends the bot your presence, and the bot says hello. Without a
subscription, directed presence works too: a client that sends
``<presence to='presencebot@localhost'/>`` is greeted. Stop the bot with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from xmpp_sansio.jid import JID
from xmpp_sansio.objects import PresenceObject
from xmpp_sansio.stanza import PresenceType
from xmpp_trio.bot import Bot, BotConfig, Context, Handler, OptionError, respond, run

log = logging.getLogger("presence_bot")


class PresenceGreeter(Handler):
    """Greets contacts coming online; ``who`` lists them.

    Options: ``greeting``, a format string with ``{name}`` (default
    ``"Hello, {name}! Good to see you."``).
    """

    name = "presence"
    known_options = frozenset({"greeting"})

    def setup(self) -> None:
        self.greeting = self.option("greeting", str, "Hello, {name}! Good to see you.")
        try:
            self.greeting.format(name="")
        except (KeyError, IndexError, ValueError):
            raise OptionError("greeting", "must be a format string using only {name}") from None
        # bare JID -> the resources of it that are online
        self.state["online"] = {}

    @property
    def online(self) -> dict[JID, set[str]]:
        """Who is online: bare JID to resources."""
        online: dict[JID, set[str]] = self.state["online"]
        return online

    async def on_connected(self) -> None:
        # What we knew is stale after a reconnect; contacts' presence comes again.
        self.online.clear()

    async def on_presence(self, presence: PresenceObject) -> None:
        sender = presence.from_
        if sender is None or sender.bare == self.bot.jid.bare:
            return
        if presence.type is PresenceType.SUBSCRIBE:
            # Accept, and ask for the contact's presence in return (RFC 6121 §3.1).
            await self.bot.send(PresenceObject(to=sender.bare, type=PresenceType.SUBSCRIBED))
            await self.bot.send(PresenceObject(to=sender.bare, type=PresenceType.SUBSCRIBE))
            return
        resource = sender.resource or ""
        if presence.type is PresenceType.AVAILABLE:
            resources = self.online.setdefault(sender.bare, set())
            first = not resources
            resources.add(resource)
            if first:
                log.info("%s came online", sender.bare)
                name = sender.local or sender.domain
                await self.bot.send_message(sender, self.greeting.format(name=name))
        elif presence.type is PresenceType.UNAVAILABLE and sender.bare in self.online:
            self.online[sender.bare].discard(resource)
            if not self.online[sender.bare]:
                log.info("%s went offline", sender.bare)
                del self.online[sender.bare]

    @respond(r"^who(?: is online)?\??$", usage="who - who is online")
    async def who(self, ctx: Context) -> None:
        """List the contacts online."""
        names = sorted(str(jid) for jid in self.online)
        await ctx.reply("Online: " + ", ".join(names) if names else "Nobody is online.")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the bot and run it until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jid", help="the bot's account, e.g. presencebot@localhost")
    parser.add_argument("--password", default=os.environ.get("BOT_PASSWORD"))
    parser.add_argument("--host", help="server address (default: DNS SRV lookup)")
    parser.add_argument("--port", type=int, help="server port (default 5222)")
    parser.add_argument("--ca-file", type=Path, help="trust this certificate (self-signed server)")
    parser.add_argument("--resource", default="presence")
    args = parser.parse_args(argv)
    if not args.password:
        parser.error("set BOT_PASSWORD or give --password")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bot = Bot(
        BotConfig(
            jid=JID.parse(args.jid),
            password=args.password,
            resource=args.resource,
            host=args.host,
            port=args.port,
            ca_file=args.ca_file,
        )
    )
    bot.add_handler(PresenceGreeter)
    return run(bot)


if __name__ == "__main__":
    sys.exit(main())
