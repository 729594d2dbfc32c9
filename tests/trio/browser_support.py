"""What the browser tests share (test_browser.py, test_json_channel_browser.py):
the requirement check (skipped without Playwright or Chromium, failed when CI
is set) and juliet and romeo as each other's contacts in a server's database."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.server.roster import StoredItem
from xmpp_trio.config import ServerConfig
from xmpp_trio.services import open_database
from xmpp_trio.stores.roster import SqliteRosterStorage

CHROMIUM = Path("/usr/bin/chromium")
PEER = Path(__file__).parent / "peers" / "slixmpp_browser_peer.py"
#: the whole scenario, browser start to last message
BUDGET = 120.0


def browser_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is missing: pip install -e '.[test]'"
    if not CHROMIUM.exists():
        return "Debian's chromium is missing: apt-get install chromium"
    return None


def require(reason: str | None) -> None:
    """Skip for ``reason`` (fail when ``CI`` is set: CI installs everything)."""
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def make_contacts(config: ServerConfig) -> None:
    """juliet and romeo in each other's rosters, both subscriptions."""
    db = open_database(config)
    try:
        juliet, romeo = JID.parse("juliet@localhost"), JID.parse("romeo@localhost")
        roster = SqliteRosterStorage(db)
        roster.put(juliet, StoredItem(RosterItem(romeo, "Romeo", Subscription.BOTH)))
        roster.put(romeo, StoredItem(RosterItem(juliet, "Juliet", Subscription.BOTH)))
    finally:
        db.close()
