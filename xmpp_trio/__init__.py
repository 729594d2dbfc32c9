"""Trio bindings for xmpp_sansio: an XMPP server and client."""
