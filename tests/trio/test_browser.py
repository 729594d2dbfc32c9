"""The browser chat page in a real browser (issue 19): Playwright drives
Debian's Chromium (headless) to ``/chat/``, logs in with converse.js, sees
a slixmpp user's presence and exchanges messages with them, once over
WebSocket (RFC 7395) and once over BOSH (XEP-0206).

Needs ``playwright`` (the test extra), ``/usr/bin/chromium`` (``apt-get
install chromium``) and converse.js fetched by ``xmpp-trio web-assets
--data-dir build/web-assets`` (or ``XMPP_TRIO_WEB_ASSETS`` naming such a
data directory); skipped without them unless ``CI`` is set (then failed)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest
import trio
import trustme
from browser_support import BUDGET, CHROMIUM, PEER, browser_missing, make_contacts, require
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_trio.config import HTTPConfig, ListenerConfig, ServerConfig
from xmpp_trio.web_assets import assets_dir

ASSETS = assets_dir(
    Path(os.environ.get("XMPP_TRIO_WEB_ASSETS", Path(__file__).parents[2] / "build" / "web-assets"))
)


def _missing() -> str | None:
    if not (ASSETS / "converse.min.js").is_file():
        return "converse.js is missing: xmpp-trio web-assets --data-dir build/web-assets"
    return None


@pytest.fixture
def needs_browser() -> None:
    require(browser_missing() or _missing())


@pytest.fixture
async def chat_server(
    needs_browser: None,
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
) -> RunningServer:
    """Loopback http (WebSocket and BOSH allowed on it), the fetched client,
    juliet and romeo in each other's rosters."""
    dest = assets_dir(server_config.data_dir)
    dest.parent.mkdir(parents=True)
    dest.symlink_to(ASSETS.resolve(), target_is_directory=True)
    make_contacts(server_config)
    config = dataclasses.replace(
        server_config,
        listeners=(*server_config.listeners, ListenerConfig("http", "127.0.0.1", 0)),
        http=HTTPConfig(websocket_on_plain_http=True),
    )
    return await start_running(config, ca, tmp_path, nursery)


def drive(url: str, password: str, said: str, expected_reply: str) -> list[str]:
    """In a thread (Playwright's sync API): log in, wait for romeo's
    presence, send ``said``, wait for ``expected_reply``; the XMPP
    connections the page opened (``ws ...``, ``bosh ...``)."""
    from playwright.sync_api import expect, sync_playwright

    timeout = 30_000
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            failed: list[str] = []  # our server's refusals of the page's requests
            used: list[str] = []
            page.on("websocket", lambda ws: used.append(f"ws {ws.url}"))
            page.on(
                "request",
                lambda r: used.append(f"bosh {r.url}") if r.url.endswith("/http-bind") else None,
            )
            origin = url.split("/chat/")[0]
            page.on(
                "response",
                lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on(  # converse.js's sponsor logos elsewhere are not ours (and the CSP refuses them)
                "requestfailed",
                lambda r: failed.append(f"failed {r.url}") if r.url.startswith(origin) else None,
            )
            page.goto(url)
            page.locator("#converse-login-jid").fill("juliet")
            page.locator("#converse-login-password").fill(password)
            page.locator("#converse-login button[type=submit]").first.click()
            contact = page.locator('a.open-chat[data-jid="romeo@localhost"]')
            expect(contact).to_be_visible(timeout=timeout)
            online = contact.locator('converse-icon[color="var(--chat-status-online)"]')
            expect(online).to_have_count(1, timeout=timeout)
            contact.click()
            textarea = page.locator("textarea.chat-textarea")
            expect(textarea).to_be_visible(timeout=timeout)
            textarea.fill(said)
            textarea.press("Enter")
            expect(page.get_by_text(expected_reply)).to_be_visible(timeout=timeout)
            assert not failed, failed
            return used
        finally:
            browser.close()


@pytest.mark.parametrize("transport", ["websocket", "bosh"])
async def test_a_browser_user_logs_in_sees_presence_and_chats_with_slixmpp(
    chat_server: RunningServer, transport: str
) -> None:
    said, reply = f"hello over {transport}", f"hello juliet, {transport} user"
    url = f"http://127.0.0.1:{chat_server.http_port}/chat/"
    if transport == "bosh":
        url += "?transport=bosh"
    with trio.fail_after(BUDGET):
        async with trio.open_nursery() as nursery:
            peer = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    str(PEER),
                    "romeo@localhost/desk",
                    PASSWORDS["romeo"],
                    "127.0.0.1",
                    str(chat_server.starttls_port),
                    str(chat_server.ca_file),
                    "juliet@localhost",
                    reply,
                ],
                stdout=-1,
                stderr=-1,
            )
            assert peer.stdout is not None
            output = b""
            while b"SESSION" not in output:
                chunk = await peer.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
            used: list[str] = []

            async def browse() -> None:
                used.extend(
                    await trio.to_thread.run_sync(drive, url, PASSWORDS["juliet"], said, reply)
                )

            nursery.start_soon(browse)
            while b"GOT" not in output or not output.endswith(b"\n"):
                chunk = await peer.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
        assert f'GOT "{said}"'.encode() in output, output
        kinds = {entry.split()[0] for entry in used}
        assert kinds == {"ws" if transport == "websocket" else "bosh"}, used
        peer.kill()
        await peer.wait()
