"""The ``[http]`` section of the server configuration: what the http/https
listeners serve and their limits (docs/web.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

from xmpp_sansio.http.bosh import BoshSettings
from xmpp_sansio.http.settings import HTTPSettings

from .config_loader import Loader, Table

__all__ = ["HTTP_KEYS", "HTTPConfig", "load_http"]

# The policies' defaults are the sans-IO settings' (one place for each number).
_WEB: Final = HTTPSettings()
_BOSH: Final = BoshSettings()


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPConfig:
    """The ``[http]`` section: what the http/https listeners serve and their
    limits (docs/web.md); the policies are :class:`xmpp_sansio.http.HTTPSettings`."""

    static_root: Path | None = None
    allowed_origins: tuple[str, ...] = _WEB.allowed_origins
    websocket_url: str = _WEB.websocket_url
    see_other_uri: str = _WEB.see_other_uri
    websocket_on_plain_http: bool = _WEB.websocket_on_plain_http
    content_security_policy: str = _WEB.content_security_policy
    hsts_max_age: int = _WEB.hsts_max_age
    max_header_size: int = _WEB.max_header_size
    max_body_size: int = _WEB.max_body_size
    max_requests_per_connection: int = _WEB.max_requests_per_connection
    requests_per_minute_per_ip: int = _WEB.requests_per_minute_per_ip
    request_timeout: float = _WEB.request_timeout
    keepalive_timeout: float = _WEB.keepalive_timeout
    max_connections: int = _WEB.max_connections
    max_connections_per_ip: int = _WEB.max_connections_per_ip
    upload: bool = False
    upload_url: str = ""
    upload_max_file_size: int = 10 << 20
    upload_allowed_types: tuple[str, ...] = ()
    upload_quota_per_user: int = 100 << 20
    upload_slot_lifetime: float = 300.0
    upload_file_lifetime: float = 604800.0
    bosh: bool = _WEB.bosh
    bosh_max_wait: int = _BOSH.max_wait
    bosh_max_hold: int = _BOSH.max_hold
    bosh_inactivity: int = _BOSH.inactivity
    bosh_polling: int = _BOSH.polling
    bosh_max_pause: int = _BOSH.max_pause
    bosh_max_sessions: int = _BOSH.max_sessions
    chat_page: bool = True
    json_channel: bool = True


HTTP_KEYS: Final = tuple(HTTPConfig.__dataclass_fields__)


def load_http(loader: Loader, data: Table) -> HTTPConfig:
    table = loader.table(data, "http", "http")
    loader.check_keys(table, HTTP_KEYS, "http.", "in [http]")
    d = HTTPConfig()
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("allowed_origins", "upload_allowed_types"):
        raw = table.get(key, [])
        if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
            raise loader.error(f"http.{key}", "must be an array of strings")
        lists[key] = tuple(cast(list[str], raw))
    root = loader.path_value(table, "static_root", "http.static_root")
    if root is not None and not root.is_dir():
        raise loader.error("http.static_root", f"directory not found: {root}")

    def text(key: str) -> str:
        return loader.string(table, key, f"http.{key}", getattr(d, key))

    def count(key: str, minimum: int) -> int:
        default = getattr(d, key)
        return loader.integer(table, key, f"http.{key}", default, minimum=minimum, maximum=1 << 30)

    def seconds(key: str) -> float:
        return loader.number(table, key, f"http.{key}", getattr(d, key))

    return HTTPConfig(
        static_root=root,
        allowed_origins=lists["allowed_origins"],
        websocket_url=text("websocket_url"),
        see_other_uri=text("see_other_uri"),
        websocket_on_plain_http=loader.boolean(
            table, "websocket_on_plain_http", "http.websocket_on_plain_http", False
        ),
        content_security_policy=text("content_security_policy"),
        hsts_max_age=count("hsts_max_age", 0),
        max_header_size=count("max_header_size", 1024),
        max_body_size=count("max_body_size", 0),
        max_requests_per_connection=count("max_requests_per_connection", 1),
        requests_per_minute_per_ip=count("requests_per_minute_per_ip", 1),
        request_timeout=seconds("request_timeout"),
        keepalive_timeout=seconds("keepalive_timeout"),
        max_connections=count("max_connections", 1),
        max_connections_per_ip=count("max_connections_per_ip", 1),
        upload=loader.boolean(table, "upload", "http.upload", False),
        upload_url=text("upload_url"),
        upload_max_file_size=count("upload_max_file_size", 1),
        upload_allowed_types=tuple(t.lower() for t in lists["upload_allowed_types"]),
        upload_quota_per_user=count("upload_quota_per_user", 1),
        upload_slot_lifetime=seconds("upload_slot_lifetime"),
        upload_file_lifetime=seconds("upload_file_lifetime"),
        bosh=loader.boolean(table, "bosh", "http.bosh", True),
        bosh_max_wait=count("bosh_max_wait", 1),
        bosh_max_hold=count("bosh_max_hold", 0),
        bosh_inactivity=count("bosh_inactivity", 1),
        bosh_polling=count("bosh_polling", 0),
        bosh_max_pause=count("bosh_max_pause", 0),
        bosh_max_sessions=count("bosh_max_sessions", 1),
        chat_page=loader.boolean(table, "chat_page", "http.chat_page", True),
        json_channel=loader.boolean(table, "json_channel", "http.json_channel", True),
    )
