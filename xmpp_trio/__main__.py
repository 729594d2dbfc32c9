"""``python -m xmpp_trio``: the ``xmpp-trio`` command line (see :mod:`xmpp_trio.cli`)."""

from xmpp_trio.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
