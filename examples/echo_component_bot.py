"""The seed echo bot on the bot framework, run as an external component
(XEP-0114): every chat message to any address at the component's domain is
answered with "You sent: <body>", from the address it was sent to.

Give the server a component (its ``[components]`` section and a
``kind = "component"`` listener, see docs/components.md)::

    [components.secrets]
    "echo.localhost" = "a long random secret"

    [[listeners]]
    kind = "component"
    address = "127.0.0.1"
    port = 5347

then run::

    COMPONENT_SECRET='a long random secret' python examples/echo_component_bot.py \\
        echo.localhost --port 5347

The secret comes from ``$COMPONENT_SECRET`` (or ``--secret``, which other local
users can see in the process list). Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import trio
from echo_bot import SeedEcho  # the seed echo bot's handler, beside this file

from xmpp_trio.component import ComponentBot


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted or refused."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain", help="the component's domain, e.g. echo.localhost")
    parser.add_argument("--secret", default=os.environ.get("COMPONENT_SECRET"))
    parser.add_argument("--host", default="127.0.0.1", help="the server's address")
    parser.add_argument("--port", type=int, default=5347, help="its component port")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("set $COMPONENT_SECRET or pass --secret")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bot = ComponentBot(args.domain, args.secret, host=args.host, port=args.port)
    bot.add_handler(SeedEcho)
    try:
        trio.run(bot.run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
