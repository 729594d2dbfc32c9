"""The seed echo bot: answers every chat message with "You sent: <body>".

Run it against a local server (see docs/tutorial.md for creating the account)::

    BOT_PASSWORD=s3cret python examples/echo_bot.py echobot@localhost \\
        --host 127.0.0.1 --port 5222 --ca-file data/tls/cert.pem

The password comes from ``$BOT_PASSWORD`` (or ``--password``, which other
local users can see in the process list). Without ``--host`` the server is
found through DNS SRV records; without ``--ca-file`` the system's certificate
authorities are trusted. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from xmpp_sansio.jid import JID
from xmpp_trio.bot import Bot, BotConfig, Context, Handler, respond, run


class SeedEcho(Handler):
    """Answers anything addressed to the bot with "You sent: <body>"."""

    @respond(r"(?s).*", usage="<anything> - I answer 'You sent: <anything>'")
    async def echo(self, ctx: Context) -> None:
        """Send the body back."""
        await ctx.reply(f"You sent: {ctx.message.body}")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the bot and run it until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jid", help="the bot's account, e.g. echobot@localhost")
    parser.add_argument("--password", default=os.environ.get("BOT_PASSWORD"))
    parser.add_argument("--host", help="server address (default: DNS SRV lookup)")
    parser.add_argument("--port", type=int, help="server port (default 5222)")
    parser.add_argument("--ca-file", type=Path, help="trust this certificate (self-signed server)")
    parser.add_argument("--resource", default="echo")
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
    bot.add_handler(SeedEcho)
    return run(bot)


if __name__ == "__main__":
    sys.exit(main())
