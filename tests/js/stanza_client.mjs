// stanza (npm, formerly stanza.io) logs in over XMPP over WebSocket (RFC 7395),
// sends one chat message to PEER and prints the reply. Run by
// tests/trio/test_websocket_js.py.
// Usage: node stanza_client.mjs URL USERNAME PASSWORD RESOURCE PEER
// Prints "SESSION <jid>", then "GOT <body> FROM <jid>"; exits 0 on the reply.
import * as XMPP from "stanza";

const [url, username, password, resource, peer] = process.argv.slice(2);
const client = XMPP.createClient({
  jid: `${username}@localhost`,
  password,
  resource,
  transports: { websocket: url, bosh: false },
});
setTimeout(() => {
  console.log("TIMEOUT");
  process.exit(2);
}, 20000);
client.on("auth:failed", () => {
  console.log("ERROR auth failed");
  process.exit(1);
});
client.on("session:started", async () => {
  console.log("SESSION", client.jid);
  await client.sendPresence();
  client.sendMessage({ to: peer, type: "chat", body: "hello from stanza" });
});
client.on("message", (msg) => {
  if (msg.body) {
    console.log("GOT", msg.body, "FROM", msg.from);
    client.disconnect();
    setTimeout(() => process.exit(0), 200);
  }
});
client.connect();
