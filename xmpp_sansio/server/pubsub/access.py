"""Who may do what with a node: affiliations (XEP-0060 §4.1) and access
models (XEP-0060 §4.5).

The relationship between a node's owner and a requester (presence
subscription, roster groups) is the server's: a :class:`Relations` object
answers it from the owner's roster.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from ...errors import StanzaErrorCondition
from ...jid import JID
from .config import AccessModel, NodeConfig, PublishModel
from .protocol import PubSubError

__all__ = ["Affiliation", "NoRelations", "Relations", "check_access", "check_publish"]


class Affiliation(StrEnum):
    """A JID's affiliation with a node (XEP-0060 §4.1)."""

    OWNER = "owner"
    PUBLISHER = "publisher"
    PUBLISH_ONLY = "publish-only"
    MEMBER = "member"
    NONE = "none"
    OUTCAST = "outcast"


class Relations(Protocol):
    """What the server knows of the relationship of an owner and a contact."""

    def subscribed(self, owner: JID, contact: JID) -> bool:
        """Whether ``contact`` (bare) receives ``owner``'s presence (RFC 6121
        §2.1.2.5: ``from`` or ``both`` in the owner's roster)."""
        ...

    def groups(self, owner: JID, contact: JID) -> frozenset[str]:
        """The groups of ``contact`` in ``owner``'s roster."""
        ...


class NoRelations:
    """:class:`Relations` of a server without rosters: nobody is related."""

    def subscribed(self, owner: JID, contact: JID) -> bool:
        return False

    def groups(self, owner: JID, contact: JID) -> frozenset[str]:
        return frozenset()


def check_access(
    config: NodeConfig,
    requester: JID,
    owners: Iterable[JID],
    affiliation: Affiliation,
    relations: Relations,
    *,
    subscribed: bool,
) -> None:
    """Raise unless ``requester`` (bare) may retrieve items of (or subscribe
    to) a node with ``config`` (XEP-0060 §6.1.3, §6.5.8). ``subscribed``: it
    has an approved subscription (what the ``authorize`` model asks)."""
    if affiliation is Affiliation.OUTCAST:
        raise PubSubError(StanzaErrorCondition.FORBIDDEN)
    if affiliation in (Affiliation.OWNER, Affiliation.PUBLISHER):
        return
    model = config.access_model
    if model is AccessModel.OPEN:
        return
    if model is AccessModel.PRESENCE:
        if not any(relations.subscribed(owner, requester) for owner in owners):
            raise PubSubError(StanzaErrorCondition.NOT_AUTHORIZED, "presence-subscription-required")
        return
    if model is AccessModel.ROSTER:
        allowed = set(config.roster_groups_allowed)
        if not any(allowed & relations.groups(owner, requester) for owner in owners):
            raise PubSubError(StanzaErrorCondition.NOT_AUTHORIZED, "not-in-roster-group")
        return
    if model is AccessModel.WHITELIST:
        if affiliation not in (Affiliation.MEMBER, Affiliation.PUBLISH_ONLY):
            raise PubSubError(StanzaErrorCondition.NOT_ALLOWED, "closed-node")
        return
    if not subscribed and affiliation is not Affiliation.MEMBER:
        raise PubSubError(StanzaErrorCondition.NOT_AUTHORIZED, "not-subscribed")


def check_publish(config: NodeConfig, affiliation: Affiliation, *, subscribed: bool) -> None:
    """Raise ``forbidden`` unless an entity with ``affiliation`` may publish
    to (and retract from) a node with ``config`` (XEP-0060 §7.1.3.1)."""
    if affiliation in (Affiliation.OWNER, Affiliation.PUBLISHER, Affiliation.PUBLISH_ONLY):
        return
    if affiliation is Affiliation.OUTCAST:
        raise PubSubError(StanzaErrorCondition.FORBIDDEN)
    if config.publish_model is PublishModel.OPEN:
        return
    if config.publish_model is PublishModel.SUBSCRIBERS and subscribed:
        return
    raise PubSubError(StanzaErrorCondition.FORBIDDEN)
