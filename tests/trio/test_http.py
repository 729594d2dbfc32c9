"""The HTTP listener on the wire (issue 18): XEP-0156 discovery, the static
root, security headers, and every limit and bad input with its defined HTTP
status, each on the real server over loopback (plain http and https with a
trustme certificate); nothing else is disturbed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import RunningServer, start_running
from http_helpers import closed_by_server, exchange, get, open_stream, read_response

from xmpp_trio.config import HTTPConfig, ListenerConfig, ServerConfig


@dataclasses.dataclass
class Web:
    running: RunningServer
    http_port: int
    https_port: int
    root: Path

    def tls(self) -> Any:
        return self.running.client_context()


@pytest.fixture
async def web(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    request: pytest.FixtureRequest,
) -> Web:
    """The real server with an http and an https listener and a static root;
    ``[http]`` settings from the test's indirect parameter."""
    root = tmp_path / "www"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs" / "a.txt").write_text("doc a")
    (tmp_path / "secret.txt").write_text("SECRET")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    settings = {"static_root": root, "websocket_on_plain_http": True}
    settings.update(getattr(request, "param", {}))
    config = dataclasses.replace(
        server_config,
        listeners=(
            *server_config.listeners,
            ListenerConfig("http", "127.0.0.1", 0),
        ),
        http=HTTPConfig(**settings),  # type: ignore[arg-type]
    )
    running = await start_running(config, ca, tmp_path, nursery)
    assert running.http_port is not None and running.https_port is not None
    return Web(running, running.http_port, running.https_port, root)


async def test_host_meta_announces_the_websocket_endpoint_as_xrd_and_json(web: Web) -> None:
    """XEP-0156 §3: the XRD and the JRD list the wss URL (from the Host)."""
    xrd = await exchange(web.https_port, get("/.well-known/host-meta"), web.tls())
    assert xrd.status == 200
    assert xrd.headers["content-type"].startswith("application/xrd+xml")
    url = "wss://localhost/xmpp-websocket"
    assert f"<Link rel='urn:xmpp:alt-connections:websocket' href='{url}'/>".encode() in xrd.body
    assert xrd.headers["access-control-allow-origin"] == "*"
    jrd = await exchange(web.https_port, get("/.well-known/host-meta.json"), web.tls())
    assert json.loads(jrd.body) == {
        "links": [{"rel": "urn:xmpp:alt-connections:websocket", "href": url}]
    }
    plain = await exchange(web.http_port, get("/.well-known/host-meta.json", host="h:5280"))
    assert json.loads(plain.body)["links"][0]["href"] == "ws://h:5280/xmpp-websocket"


async def test_every_response_carries_the_security_headers_and_hsts_only_on_https(
    web: Web,
) -> None:
    for port, tls in ((web.https_port, web.tls()), (web.http_port, None)):
        for path in ("/", "/missing", "/.well-known/host-meta"):
            response = await exchange(port, get(path), tls)
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert ("strict-transport-security" in response.headers) == (tls is not None)
    https = await exchange(web.https_port, get("/"), web.tls())
    assert https.headers["strict-transport-security"] == "max-age=31536000"


async def test_static_root_serves_files_with_their_type_and_index_html(web: Web) -> None:
    home = await exchange(web.http_port, get("/"))
    assert (home.status, home.body) == (200, b"<h1>home</h1>")
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    doc = await exchange(web.http_port, get("/docs/a.txt"))
    assert (doc.status, doc.body, doc.headers["content-type"]) == (
        200,
        b"doc a",
        "text/plain; charset=utf-8",
    )
    head = await exchange(web.http_port, b"HEAD /docs/a.txt HTTP/1.1\r\nHost: x\r\n\r\n", head=True)
    assert (head.status, head.headers["content-length"], head.rest) == (200, "5", b"")
    missing = await exchange(web.http_port, get("/docs/none.txt"))
    assert missing.status == 404


async def test_keep_alive_serves_several_requests_on_one_connection(web: Web) -> None:
    stream = await open_stream(web.http_port)
    await stream.send_all(get("/docs/a.txt") + get("/"))
    first = await read_response(stream)
    second = await read_response(stream, first.rest)
    assert (first.body, second.body) == (b"doc a", b"<h1>home</h1>")
    await stream.aclose()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/../secret.txt", 400),
        ("/docs/../../secret.txt", 400),
        ("/%2e%2e/secret.txt", 400),
        ("/docs/..%2f..%2fsecret.txt", 400),
        ("/%2e%2e%2fsecret.txt", 400),
        ("/docs%5c..%5c..%5csecret.txt", 400),
        ("/.hidden", 400),
        ("/docs/%00a.txt", 400),
        ("/escape", 404),  # a symbolic link out of the root
    ],
)
async def test_path_traversal_out_of_the_static_root_is_refused(
    web: Web, path: str, status: int
) -> None:
    response = await exchange(web.http_port, get(path))
    assert response.status == status
    assert b"SECRET" not in response.body
    assert (await exchange(web.http_port, get("/docs/a.txt"))).body == b"doc a"


async def test_other_methods_get_405(web: Web) -> None:
    response = await exchange(web.http_port, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (response.status, response.headers["allow"]) == (405, "GET, HEAD")


@pytest.mark.parametrize("web", [{"max_header_size": 2048}], indirect=True)
async def test_oversized_headers_get_431_and_the_connection_closes(web: Web) -> None:
    stream = await open_stream(web.http_port)
    await stream.send_all(get("/", "X-Big: " + "a" * 4096))
    response = await read_response(stream)
    assert response.status == 431
    assert await closed_by_server(stream)
    assert (await exchange(web.http_port, get("/docs/a.txt"))).status == 200


@pytest.mark.parametrize("web", [{"max_body_size": 1000}], indirect=True)
async def test_oversized_bodies_get_413(web: Web) -> None:
    declared = await exchange(
        web.http_port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    )
    assert declared.status == 413
    chunked = b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"%x\r\n%s\r\n" % (1500, b"z" * 1500)
    assert (await exchange(web.http_port, chunked)).status == 413
    assert (await exchange(web.http_port, get("/docs/a.txt"))).status == 200


@pytest.mark.parametrize("web", [{"request_timeout": 1.0}], indirect=True)
async def test_slowloris_request_gets_408_and_is_closed(web: Web) -> None:
    """A request head that never ends: 408 once request_timeout has passed
    since its first byte (the server's deadline; the test only waits)."""
    stream = await open_stream(web.http_port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    response = await read_response(stream)
    assert response.status == 408
    assert await closed_by_server(stream)
    assert (await exchange(web.http_port, get("/docs/a.txt"))).status == 200


@pytest.mark.parametrize("web", [{"requests_per_minute_per_ip": 3}], indirect=True)
async def test_requests_over_the_rate_limit_get_429(web: Web) -> None:
    statuses = [(await exchange(web.http_port, get("/"))).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize("web", [{"max_connections_per_ip": 2}], indirect=True)
async def test_connections_over_the_per_address_limit_get_429(web: Web) -> None:
    first, second = await open_stream(web.http_port), await open_stream(web.http_port)
    await first.send_all(get("/"))  # both are served: the counts are real
    assert (await read_response(first)).status == 200
    third = await open_stream(web.http_port)
    assert (await read_response(third)).status == 429
    await second.send_all(get("/docs/a.txt"))
    assert (await read_response(second)).body == b"doc a"
    for stream in (first, second, third):
        await stream.aclose()


async def test_bad_request_line_gets_400(web: Web) -> None:
    assert (await exchange(web.http_port, b"NONSENSE\r\n\r\n")).status == 400


async def test_an_internal_error_costs_one_connection_not_the_listener(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xmpp_trio.http import HTTPService

    async def broken(self: HTTPService, parts: tuple[str, ...]) -> bytes | None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(HTTPService, "_read_file", broken)
    stream = await open_stream(web.http_port)
    await stream.send_all(get("/docs/a.txt"))
    assert await closed_by_server(stream)
    discovery = await exchange(web.http_port, get("/.well-known/host-meta"))
    assert discovery.status == 200
