"""The browser chat page (issue 19): ``xmpp-trio web-assets`` installs the
pinned converse.js only if its checksum matches; the http listener serves
the page, its configuration and the client's files at ``/chat/``."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import trio
import trustme
from conftest import RunningServer, start_running
from http_helpers import exchange, get

from xmpp_sansio.http.chat import CHAT_CSP
from xmpp_trio.cli import main
from xmpp_trio.config import HTTPConfig, ListenerConfig, ServerConfig
from xmpp_trio.web_assets import (
    CONVERSE_VERSION,
    AssetError,
    assets_dir,
    install,
    integrity,
)


def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return raw.getvalue()


def test_a_tarball_whose_checksum_differs_is_refused_and_nothing_written(tmp_path: Path) -> None:
    data = tarball({"package/dist/converse.min.js": b"evil()"})
    with pytest.raises(AssetError, match="checksum mismatch"):
        install(data, tmp_path)
    assert not assets_dir(tmp_path).exists()


def test_only_regular_files_under_dist_are_extracted(tmp_path: Path) -> None:
    data = tarball(
        {
            "package/dist/converse.min.js": b"converse()",
            "package/dist/locales/de.js": b"de",
            "package/README.md": b"readme",
            "package/dist/../../escape.txt": b"out",
        },
        links={"package/dist/link.js": "/etc/passwd"},
    )
    dest = install(data, tmp_path, expected=integrity(data))
    assert (dest / "converse.min.js").read_bytes() == b"converse()"
    assert (dest / "locales" / "de.js").read_bytes() == b"de"
    assert (dest / "VERSION").read_text().strip() == CONVERSE_VERSION
    assert not (dest / "link.js").exists() and not (dest / "README.md").exists()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_the_command_fails_on_a_tampered_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``xmpp-trio web-assets`` with an npm that hands over other bytes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "npm"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--pack-destination" ]; do shift; done\n'
        f'echo tampered > "$2/converse.js-{CONVERSE_VERSION}.tgz"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert main(["web-assets", "--data-dir", str(tmp_path / "data")]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not assets_dir(tmp_path / "data").exists()


@pytest.fixture
async def chat_server(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> RunningServer:
    dest = assets_dir(server_config.data_dir)
    dest.mkdir(parents=True)
    (dest / "converse.min.js").write_text("window.converse = {};")
    (tmp_path / "secret.txt").write_text("SECRET")
    (dest / "escape.js").symlink_to(tmp_path / "secret.txt")
    config = ServerConfig(
        **{
            **{f: getattr(server_config, f) for f in server_config.__dataclass_fields__},
            "listeners": (*server_config.listeners, ListenerConfig("http", "127.0.0.1", 0)),
            "http": HTTPConfig(websocket_on_plain_http=True),
        }
    )
    return await start_running(config, ca, tmp_path, nursery)


async def test_the_chat_page_its_configuration_and_the_client_are_served(
    chat_server: RunningServer,
) -> None:
    port = chat_server.http_port or 0
    page = await exchange(port, get("/chat/"))
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CHAT_CSP
    assert b'<script src="/chat/converse/converse.min.js"></script>' in page.body
    assert b"<script>" not in page.body  # no inline code: the CSP forbids it
    config = await exchange(port, get("/chat/config.js"))
    assert config.status == 200 and b'"domain": "localhost"' in config.body
    assert b"/http-bind" in config.body and b"/xmpp-websocket" in config.body
    client = await exchange(port, get("/chat/converse/converse.min.js"))
    assert (client.status, client.body) == (200, b"window.converse = {};")
    assert client.headers["content-type"].startswith("text/javascript")
    assert (await exchange(port, get("/chat/converse/missing.js"))).status == 404
    assert (await exchange(port, get("/chat/converse/escape.js"))).status == 404
    assert (await exchange(port, get("/chat/converse/%2e%2e/x"))).status in (400, 404)
    assert (await exchange(port, get("/chat/other"))).status == 404


@pytest.mark.parametrize("enabled", [False])
async def test_the_chat_page_can_be_turned_off(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    enabled: bool,
) -> None:
    config = ServerConfig(
        **{
            **{f: getattr(server_config, f) for f in server_config.__dataclass_fields__},
            "listeners": (*server_config.listeners, ListenerConfig("http", "127.0.0.1", 0)),
            "http": HTTPConfig(chat_page=enabled),
        }
    )
    running = await start_running(config, ca, tmp_path, nursery)
    assert (await exchange(running.http_port or 0, get("/chat/"))).status == 404
