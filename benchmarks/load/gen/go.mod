module xmppgen

go 1.19
