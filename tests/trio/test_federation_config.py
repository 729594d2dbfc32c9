"""The ``[federation]`` section: defaults (off), every key read, and precise
errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_trio.config import ConfigError, load_config
from xmpp_trio.federation_config import FederationConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(f'domains = ["example.org"]\n{text}\n')
    return path


def test_federation_is_off_by_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "")).federation
    assert config == FederationConfig()
    assert config.enabled is False and config.port == 5269 and config.dialback is True


def test_every_key_is_read(tmp_path: Path) -> None:
    text = """[federation]
enabled = true
port = 5270
require_valid_certificates = true
dialback = false
cafile = "/etc/ssl/test-ca.pem"
allow = ["Montague.Example", "capulet.example"]
deny = ["evil.example"]
hosts = { "montague.example" = "127.0.0.1:5271", "capulet.example" = "[::1]:5272" }
connect_timeout = 5
idle_timeout = 60.5
send_timeout = 7.5
max_queue = 10
max_streams_per_domain = 2
max_domain_pairs = 3
piggyback = false
bidi = false
max_inbound_rate = 50000
ping_interval = 120
ping_timeout = 10
"""
    config = load_config(write(tmp_path, text)).federation
    assert config == FederationConfig(
        enabled=True,
        port=5270,
        require_valid_certificates=True,
        dialback=False,
        cafile="/etc/ssl/test-ca.pem",
        allow=frozenset({"montague.example", "capulet.example"}),
        deny=frozenset({"evil.example"}),
        hosts={"montague.example": ("127.0.0.1", 5271), "capulet.example": ("::1", 5272)},
        connect_timeout=5.0,
        idle_timeout=60.5,
        send_timeout=7.5,
        max_queue=10,
        max_streams_per_domain=2,
        max_domain_pairs=3,
        piggyback=False,
        bidi=False,
        max_inbound_rate=50000,
        ping_interval=120.0,
        ping_timeout=10.0,
    )
    assert config.allows("montague.example")
    assert not config.allows("evil.example") and not config.allows("other.example")


def test_without_an_allow_list_every_domain_but_the_denied_ones_is_allowed() -> None:
    config = FederationConfig(deny=frozenset({"evil.example"}))
    assert config.allows("anything.example") and not config.allows("evil.example")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("port = 70000", "federation.port"),
        ('enabled = "yes"', "federation.enabled"),
        ('allow = "montague.example"', "federation.allow"),
        ('deny = ["user@evil.example"]', "federation.deny"),
        ('hosts = { "montague.example" = "127.0.0.1" }', "federation.hosts.montague.example"),
        ('hosts = { "montague.example" = "127.0.0.1:0" }', "federation.hosts.montague.example"),
        ('hosts = ["montague.example"]', "federation.hosts"),
        ("connect_timeout = 0", "federation.connect_timeout"),
        ("max_queue = 0", "federation.max_queue"),
        ("max_inbound_rate = 10", "federation.max_inbound_rate"),
        ("ping_interval = -1", "federation.ping_interval"),
        ("ping_timeout = 0", "federation.ping_timeout"),
        ('piggyback = "yes"', "federation.piggyback"),
        ("bidi = 1", "federation.bidi"),
        ("bogus = 1", "federation.bogus"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[federation]\n{text}"))
    assert key in str(info.value)
