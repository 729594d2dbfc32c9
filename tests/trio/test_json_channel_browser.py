"""The JSON channel's example page (examples/json-channel/) in a real
browser: Playwright drives Debian's Chromium (headless), the page logs in
with SCRAM-SHA-256 over ``/json``, shows the roster and a slixmpp user's
presence, exchanges messages with them both ways and shows an iq error.

Needs ``playwright`` (the test extra) and ``/usr/bin/chromium``; skipped
without them unless ``CI`` is set (then failed)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import trio
import trustme
from browser_support import BUDGET, CHROMIUM, PEER, browser_missing, make_contacts, require
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_trio.config import HTTPConfig, ListenerConfig, ServerConfig

EXAMPLE = Path(__file__).parents[2] / "examples" / "json-channel"


@pytest.fixture
def needs_browser() -> None:
    require(browser_missing())


@pytest.fixture
async def page_server(
    needs_browser: None,
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
) -> RunningServer:
    """Loopback http serving the example page; juliet and romeo in each
    other's rosters."""
    make_contacts(server_config)
    config = dataclasses.replace(
        server_config,
        listeners=(*server_config.listeners, ListenerConfig("http", "127.0.0.1", 0)),
        http=HTTPConfig(websocket_on_plain_http=True, static_root=EXAMPLE),
    )
    return await start_running(config, ca, tmp_path, nursery)


def drive(url: str, password: str, said: str, expected_reply: str) -> list[str]:
    """In a thread (Playwright's sync API): log in, wait for romeo's
    presence, send ``said``, wait for ``expected_reply``, ask for an iq
    nobody serves; the WebSocket URLs the page opened."""
    from playwright.sync_api import expect, sync_playwright

    timeout = 30_000
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            used: list[str] = []
            errors: list[str] = []
            page.on("websocket", lambda ws: used.append(ws.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.locator("#jid").fill("juliet@localhost")
            page.locator("#password").fill(password)
            page.locator("#login button").click()
            expect(page.locator("#status")).to_have_text("online", timeout=timeout)
            romeo = page.locator('#roster li[data-jid="romeo@localhost"]')
            expect(romeo).to_have_text("Romeo", timeout=timeout)
            expect(romeo).to_have_attribute("data-presence", "available", timeout=timeout)
            page.locator("#to").fill("romeo@localhost")
            page.locator("#body").fill(said)
            page.locator("#send button").click()
            reply = page.locator("#log li.message", has_text=expected_reply)
            expect(reply).to_have_text(f"romeo@localhost: {expected_reply}", timeout=timeout)
            page.locator("#bad-iq").click()
            expect(page.locator("#log li.iq-error")).to_have_text(
                "iq nobody error: service-unavailable", timeout=timeout
            )
            assert not errors, errors
            return used
        finally:
            browser.close()


async def test_the_example_page_logs_in_and_chats_with_slixmpp_over_json(
    page_server: RunningServer,
) -> None:
    said, reply = "hello over json", "hello juliet, json user"
    url = f"http://127.0.0.1:{page_server.http_port}/index.html"
    with trio.fail_after(BUDGET):
        peer = await trio.lowlevel.open_process(
            [
                sys.executable,
                str(PEER),
                "romeo@localhost/desk",
                PASSWORDS["romeo"],
                "127.0.0.1",
                str(page_server.starttls_port),
                str(page_server.ca_file),
                "juliet@localhost",
                reply,
            ],
            stdout=-1,
            stderr=-1,
        )
        try:
            assert peer.stdout is not None
            output = b""
            while b"SESSION" not in output:
                chunk = await peer.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
            used = await trio.to_thread.run_sync(drive, url, PASSWORDS["juliet"], said, reply)
            while b"GOT" not in output or not output.endswith(b"\n"):
                chunk = await peer.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
            assert f'GOT "{said}"'.encode() in output, output
            assert used == [f"ws://127.0.0.1:{page_server.http_port}/json"], used
        finally:
            peer.kill()
            await peer.wait()
