"""Publish-subscribe (XEP-0060) and personal eventing (XEP-0163).

Split by what each part owns: :mod:`.protocol` the wire vocabulary and
errors, :mod:`.config` the node configuration form, :mod:`.access`
affiliations and access models, :mod:`.node` nodes in memory,
:mod:`.engine` the use cases, :mod:`.store` the storage protocol and store
operations, :mod:`.host` the service at ``pubsub.DOMAIN``, :mod:`.pep` PEP
on every account. See docs/pubsub.md.

Import from the modules (``from xmpp_sansio.server.pubsub.engine import
PubSubEngine``): this package imports nothing, so that
:mod:`~xmpp_sansio.server.effects` can take the store operations from
:mod:`.store` without a cycle.
"""
