"""A sans-IO XMPP library: protocol state machines and pure functions, no I/O."""
