"""Multi-user chat (XEP-0045): a service host at ``conference.DOMAIN``.

The package is split by what each part owns: :mod:`.permissions` (the
affiliation and role tables of §5.1 and §5.2, as data), :mod:`.codes` (the
status codes of §15.6), :mod:`.config` (the ``muc#roomconfig`` form, §15.5.3),
:mod:`.history` (discussion history, §7.2.14, behind the interface room
archives will back), :mod:`.store` (the storage protocol and its store
operations), :mod:`.room` (one room's state machine: occupants, presence,
messages), :mod:`.admin` (the ``muc#admin`` and ``muc#owner`` requests) and
:mod:`.service` (the :class:`~xmpp_sansio.server.hosts.HostService` routing
to rooms). Import from the submodules: this package imports nothing, so the
store operations can join :data:`~xmpp_sansio.server.effects.StoreOp`
without an import cycle.
"""
