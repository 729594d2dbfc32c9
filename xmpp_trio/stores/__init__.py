"""SQLite implementations of the storage Protocols that xmpp_sansio's server
services define. Each store takes an open ``sqlite3.Connection`` (shared by all
stores of one server), creates its tables if needed, and commits before each
mutating method returns, so what a service was told is stored survives a crash."""
