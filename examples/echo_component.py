"""The seed echo bot as an external component (XEP-0114) serving its own domain:
answers every chat message to any address at that domain with "You sent: <body>".

Run it against a server's component port, e.g. Prosody with
``Component "echo.localhost" component_secret = "s3cret"`` in its config::

    COMPONENT_SECRET=s3cret python examples/echo_component.py echo.localhost \\
        --host 127.0.0.1 --port 5347

The secret comes from ``$COMPONENT_SECRET`` (or ``--secret``, which other local
users can see in the process list). Iq requests get ``service-unavailable``
(RFC 6120 §8.2.3: every request is answered). Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.stanza import (
    Iq,
    Message,
    MessageType,
    StanzaValueError,
    UnknownStanza,
    error_reply,
    make_message,
    parse_stanza,
)
from xmpp_trio import open_component


def answer(stanza: Element) -> Element | None:
    """The component's answer to one stanza, if any."""
    try:
        view = parse_stanza(stanza)
    except (StanzaValueError, UnknownStanza):
        return None
    if isinstance(view, Message) and view.body is not None and view.type is not MessageType.ERROR:
        return make_message(view.from_, f"You sent: {view.body}", view.type, from_=view.to)
    if isinstance(view, Iq) and view.is_request:
        return error_reply(stanza, StanzaErrorCondition.SERVICE_UNAVAILABLE)
    return None


async def serve(domain: str, secret: str, host: str, port: int) -> None:
    """Connect and answer until the server closes the stream."""
    async with open_component(domain, secret, host=host, port=port) as component:
        logging.info("serving %s", component.domain)
        async for stanza in component:
            reply = answer(stanza)
            if reply is not None:
                await component.send(reply)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted or disconnected."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain", help="the component's domain, e.g. echo.localhost")
    parser.add_argument("--secret", default=os.environ.get("COMPONENT_SECRET"))
    parser.add_argument("--host", default="127.0.0.1", help="the server's address")
    parser.add_argument("--port", type=int, default=5347, help="its component port")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("set $COMPONENT_SECRET or pass --secret")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        trio.run(serve, args.domain, args.secret, args.host, args.port)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
