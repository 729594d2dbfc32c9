"""HTTP File Upload (XEP-0363) end to end (issue 18): slot requests at
``upload.localhost`` with their limits, PUT and GET on the real https
listener with signed, expiring URLs, and slixmpp's upload with its default
settings; bad input gets its stanza error or HTTP status."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from http_helpers import exchange

from xmpp_trio.client import Client, IqErrorResponse, open_client
from xmpp_trio.config import HTTPConfig, ServerConfig
from xmpp_trio.http_upload import UploadFiles

NS = "urn:xmpp:http:upload:0"
PEER = Path(__file__).parent / "peers" / "slixmpp_upload.py"


@pytest.fixture
async def upload_server(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    request: pytest.FixtureRequest,
) -> RunningServer:
    settings = {"upload": True, "upload_max_file_size": 100_000, **getattr(request, "param", {})}
    config = dataclasses.replace(server_config, http=HTTPConfig(**settings))  # type: ignore[arg-type]
    return await start_running(config, ca, tmp_path, nursery)


def slot_request(filename: str, size: int, content_type: str | None = "text/plain") -> ET.Element:
    iq = ET.Element("{jabber:client}iq", {"type": "get", "to": "upload.localhost", "id": "s"})
    attrs = {"filename": filename, "size": str(size)}
    if content_type is not None:
        attrs["content-type"] = content_type
    ET.SubElement(iq, f"{{{NS}}}request", attrs)
    return iq


async def slot(
    client: Client, filename: str, size: int, content_type: str = "text/plain"
) -> tuple[str, str]:
    result = await client.request(slot_request(filename, size, content_type), timeout=10)
    put = result.find(f"{{{NS}}}slot/{{{NS}}}put")
    get = result.find(f"{{{NS}}}slot/{{{NS}}}get")
    assert put is not None and get is not None
    return put.get("url", ""), get.get("url", "")


def http(method: str, url: str, body: bytes = b"", *headers: str) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    if method == "PUT":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_slixmpp_uploads_a_file_that_downloads_byte_for_byte(
    upload_server: RunningServer, tmp_path: Path
) -> None:
    """slixmpp's xep_0363 with defaults: disco finds upload.localhost, the
    slot comes, aiohttp PUTs over https; the GET URL gives the same bytes."""
    if importlib.util.find_spec("aiohttp") is None:
        if os.environ.get("CI"):
            pytest.fail("aiohttp (slixmpp's upload) is missing in CI")
        pytest.skip("aiohttp (slixmpp's upload) is missing: pip install -e '.[test]'")
    data = os.urandom(20_000)
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    with trio.fail_after(60):
        result = await trio.run_process(
            [
                sys.executable,
                str(PEER),
                "romeo@localhost/slix",
                PASSWORDS["romeo"],
                "127.0.0.1",
                str(upload_server.starttls_port),
                str(upload_server.ca_file),
                str(path),
            ],
            env={**os.environ, "SSL_CERT_FILE": str(upload_server.ca_file)},
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = result.stdout.decode()
    assert out.startswith("URL https://localhost:"), out + result.stderr.decode()[-3000:]
    url = out.split()[1]
    assert url.endswith("/photo.png")
    got = await exchange(
        upload_server.https_port or 0, http("GET", url), upload_server.client_context()
    )
    assert (got.status, got.body) == (200, data)
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_put_checks_signature_size_and_single_use_and_get_serves_it(
    upload_server: RunningServer,
) -> None:
    port, tls = upload_server.https_port or 0, upload_server.client_context()
    kw = upload_server.client_options()
    async with open_client("juliet@localhost", PASSWORDS["juliet"], **kw) as juliet:
        put, get = await slot(juliet, "notes.txt", 5)
    assert put.startswith(f"https://localhost:{port}/upload/") and "?e=" in put and "&s=" in put
    typed = "Content-Type: text/plain"
    forged = put[:-4] + ("0000" if not put.endswith("0000") else "1111")
    assert (await exchange(port, http("PUT", forged, b"hello", typed), tls)).status == 403
    assert (await exchange(port, http("PUT", put, b"hello!", typed), tls)).status == 403  # size
    other_type = "Content-Type: text/html"
    assert (await exchange(port, http("PUT", put, b"hello", other_type), tls)).status == 403
    assert (await exchange(port, http("GET", get), tls)).status == 404  # not uploaded yet
    assert (await exchange(port, http("PUT", put, b"hello", typed), tls)).status == 201
    assert (await exchange(port, http("PUT", put, b"hello", typed), tls)).status == 409
    got = await exchange(port, http("GET", get), tls)
    assert (got.status, got.body, got.headers["content-disposition"]) == (
        200,
        b"hello",
        "attachment",
    )
    renamed = get.rsplit("/", 1)[0] + "/other.txt"
    assert (await exchange(port, http("GET", renamed), tls)).status == 404


@pytest.mark.parametrize(
    "path",
    ["/upload/../xmpp.sqlite3", "/upload/%2e%2e/key", "/upload/..%2fkey", "/upload/abc/../../key"],
)
async def test_traversal_on_upload_paths_is_refused(
    upload_server: RunningServer, path: str
) -> None:
    port, tls = upload_server.https_port or 0, upload_server.client_context()
    for method in ("GET", "PUT"):
        response = await exchange(port, http(method, f"https://localhost{path}?e=1&s=x"), tls)
        assert response.status in (400, 404)
        assert response.body in (b"not an upload URL\n", b"bad path\n", b"not found\n")


@pytest.mark.parametrize(
    "upload_server",
    [{"upload_quota_per_user": 1000, "upload_allowed_types": ("text/plain", "image/png")}],
    indirect=True,
)
async def test_slot_requests_over_the_limits_get_their_errors(
    upload_server: RunningServer,
) -> None:
    """XEP-0363 §4.1: file-too-large with the maximum, a type not allowed,
    the quota (wait), and bad requests."""
    async with open_client(
        "juliet@localhost", PASSWORDS["juliet"], **upload_server.client_options()
    ) as juliet:

        async def error_of(iq: ET.Element) -> ET.Element:
            with pytest.raises(IqErrorResponse) as failed:
                await juliet.request(iq, timeout=10)
            error = failed.value.element.find("{jabber:client}error")
            assert error is not None
            return error

        too_big = await error_of(slot_request("big.txt", 100_001))
        assert too_big.get("type") == "modify"
        assert too_big.find("{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
        assert too_big.findtext(f"{{{NS}}}file-too-large/{{{NS}}}max-file-size") == "100000"
        html = await error_of(slot_request("x.html", 10, "text/html"))
        assert html.find("{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
        await slot(juliet, "a.txt", 600)
        over = await error_of(slot_request("b.txt", 600))
        assert over.get("type") == "wait"
        assert over.find("{urn:ietf:params:xml:ns:xmpp-stanzas}resource-constraint") is not None
        for bad in (
            slot_request("", 10),
            slot_request("a/b.txt", 10),
            slot_request("a.txt", 0),
            slot_request("a.txt", 10, "not a type"),
        ):
            assert (await error_of(bad)).get("type") == "modify"
        await slot(juliet, "c.png", 300, "image/png")  # still within the quota


async def test_disco_announces_the_service_and_its_maximum(upload_server: RunningServer) -> None:
    async with open_client(
        "juliet@localhost", PASSWORDS["juliet"], **upload_server.client_options()
    ) as juliet:
        iq = ET.Element("{jabber:client}iq", {"type": "get", "to": "upload.localhost", "id": "d"})
        ET.SubElement(iq, "{http://jabber.org/protocol/disco#info}query")
        info = await juliet.request(iq, timeout=10)
    text = ET.tostring(info).decode()
    assert 'category="store"' in text and 'type="file"' in text and NS in text
    assert "max-file-size" in text and "100000" in text


async def test_expired_files_are_deleted_and_no_longer_served(
    upload_server: RunningServer,
) -> None:
    port, tls = upload_server.https_port or 0, upload_server.client_context()
    async with open_client(
        "juliet@localhost", PASSWORDS["juliet"], **upload_server.client_options()
    ) as juliet:
        put, get = await slot(juliet, "old.txt", 3)
    typed = "Content-Type: text/plain"
    assert (await exchange(port, http("PUT", put, b"old", typed), tls)).status == 201
    services = upload_server.server.services
    assert services.upload is not None
    files = UploadFiles(services.upload, services.upload_storage, upload_server.config.data_dir)
    assert files.sweep(time.time()) == 0  # not expired yet
    assert files.sweep(time.time() + 8 * 86400) == 1  # past upload_file_lifetime (7 days)
    assert list(files.directory.iterdir()) == []
    assert (await exchange(port, http("GET", get), tls)).status == 404
