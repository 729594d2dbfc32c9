"""The ``[pubsub]`` configuration section: its keys load, bad values are
refused with the key named, and the limits reach the engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_sansio.server.pubsub.host import PubSubHost
from xmpp_sansio.server.pubsub.pep import PEPService
from xmpp_trio.config import ConfigError, PubSubConfig, load_config
from xmpp_trio.services import ServerServices, open_database
from xmpp_trio.storage import AccountStore


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(f'domains = ["example.org"]\ndata_dir = "data"\n{body}')
    return path


def test_pubsub_is_on_by_default() -> None:
    assert PubSubConfig() == PubSubConfig(enabled=True, pep=True)


def test_pubsub_keys_load_and_reach_the_engines(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "[pubsub]\nmax_item_size = 1000\nmax_items = 5\nmax_nodes = 7\nmax_subscriptions = 9\n",
        )
    )
    assert config.pubsub_domain == "pubsub.example.org"
    config.data_dir.mkdir(parents=True)
    with AccountStore.open(config.database_path) as accounts:
        db = open_database(config)
        try:
            services = ServerServices(config, accounts, db)
            host = services.hosts["pubsub.example.org"]
            assert isinstance(host, PubSubHost)
            (pep,) = [s for s in services.services if isinstance(s, PEPService)]
            for engine in (host.engine, pep.engine):
                limits = engine.limits
                assert (limits.max_item_size, limits.max_items) == (1000, 5)
                assert (limits.max_nodes, limits.max_subscriptions) == (7, 9)
        finally:
            db.close()


def test_pubsub_and_pep_can_be_turned_off(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[pubsub]\nenabled = false\npep = false\n"))
    assert config.pubsub_domain is None
    config.data_dir.mkdir(parents=True)
    with AccountStore.open(config.database_path) as accounts:
        db = open_database(config)
        try:
            services = ServerServices(config, accounts, db)
            assert "pubsub.example.org" not in services.hosts  # (conference. is MUC's)
            assert not any(isinstance(s, PEPService) for s in services.services)
        finally:
            db.close()


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("max_items = 0", "pubsub.max_items"),
        ("max_item_size = 'big'", "pubsub.max_item_size"),
        ("pep = 'yes'", "pubsub.pep"),
        ("collections = true", "pubsub.collections"),
    ],
)
def test_bad_pubsub_values_are_refused_naming_the_key(tmp_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path, f"[pubsub]\n{body}\n"))
