// @xmpp/client (npm) logs in over XMPP over WebSocket (RFC 7395), sends one chat
// message to PEER and prints the reply. Run by tests/trio/test_websocket_js.py.
// Usage: node xmpp_client.mjs URL USERNAME PASSWORD RESOURCE PEER
// Prints "SESSION <jid>", then "GOT <body> FROM <jid>"; exits 0 on the reply.
import { WebSocket as NodeWebSocket } from "ws";
import { client, xml } from "@xmpp/client";

globalThis.WebSocket ??= NodeWebSocket; // Node 20 has no global WebSocket

const [url, username, password, resource, peer] = process.argv.slice(2);
const xmpp = client({ service: url, domain: "localhost", username, password, resource });
setTimeout(() => {
  console.log("TIMEOUT");
  process.exit(2);
}, 20000);
xmpp.on("error", (err) => {
  console.log("ERROR", err.condition || err.message);
  process.exit(1);
});
xmpp.on("online", async (address) => {
  console.log("SESSION", address.toString());
  await xmpp.send(xml("presence"));
  await xmpp.send(
    xml("message", { to: peer, type: "chat" }, xml("body", {}, "hello from @xmpp/client")),
  );
});
xmpp.on("stanza", async (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")) {
    console.log("GOT", stanza.getChildText("body"), "FROM", stanza.attrs.from);
    await xmpp.stop();
    process.exit(0);
  }
});
await xmpp.start();
