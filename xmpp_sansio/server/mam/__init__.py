"""Message archives (XEP-0313) with stable stanza ids (XEP-0359).

Split by what each part owns: :mod:`.store` (store operations, page queries,
the storage contract, the in-memory backend), :mod:`.query` (the query form,
RSM paging and the answers as elements) and :mod:`.service` (stamping on the
transform stage, archiving, preferences, queries through ``Load`` effects).
Import from the submodules: this package imports nothing, so the store
operations can join :data:`~xmpp_sansio.server.effects.StoreOp` without an
import cycle. See docs/mam.md.
"""
