"""The ``[pubsub]`` section of the server configuration: publish-subscribe
(XEP-0060) at ``pubsub.<first domain>`` and PEP (XEP-0163), see docs/pubsub.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .config_loader import Loader, Table

__all__ = ["PUBSUB_KEYS", "PubSubConfig", "load_pubsub"]


@dataclass(frozen=True, slots=True)
class PubSubConfig:
    """Publish-subscribe (XEP-0060) at ``pubsub.<first domain>`` and PEP
    (XEP-0163), with their limits (see docs/pubsub.md)."""

    enabled: bool = True
    pep: bool = True
    max_item_size: int = 64 * 1024
    max_items: int = 256
    max_nodes: int = 128
    max_subscriptions: int = 1000


PUBSUB_KEYS: Final = (
    "enabled",
    "pep",
    "max_item_size",
    "max_items",
    "max_nodes",
    "max_subscriptions",
)


def load_pubsub(loader: Loader, data: Table) -> PubSubConfig:
    table = loader.table(data, "pubsub", "pubsub")
    loader.check_keys(table, PUBSUB_KEYS, "pubsub.", "in [pubsub]")
    d = PubSubConfig()

    def count(key: str, default: int) -> int:
        return loader.integer(table, key, f"pubsub.{key}", default, minimum=1, maximum=1 << 30)

    return PubSubConfig(
        enabled=loader.boolean(table, "enabled", "pubsub.enabled", d.enabled),
        pep=loader.boolean(table, "pep", "pubsub.pep", d.pep),
        max_item_size=count("max_item_size", d.max_item_size),
        max_items=count("max_items", d.max_items),
        max_nodes=count("max_nodes", d.max_nodes),
        max_subscriptions=count("max_subscriptions", d.max_subscriptions),
    )
