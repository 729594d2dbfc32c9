// @xmpp/component (npm) connects to our component listener (XEP-0114), sends
// one chat message to PEER and prints the answer. Run by
// tests/trio/test_component_server.py.
// Usage: node xmpp_component.mjs PORT DOMAIN SECRET PEER
// Prints "ONLINE <jid>", then "GOT <body> FROM <jid>" and exits 0 on the answer;
// "ERROR <condition>" (exit 1) when the server refuses the component.
import { component, xml } from "@xmpp/component";

const [port, domain, password, peer] = process.argv.slice(2);
const xmpp = component({ service: `xmpp://127.0.0.1:${port}`, domain, password });
xmpp.reconnect.stop(); // report a refusal instead of retrying
setTimeout(() => {
  console.log("TIMEOUT");
  process.exit(2);
}, 20000);
xmpp.on("error", (err) => {
  console.log("ERROR", err.condition || err.message);
  process.exit(1);
});
xmpp.on("online", async (address) => {
  console.log("ONLINE", address.toString());
  await xmpp.send(
    xml(
      "message",
      { to: peer, from: `js@${domain}/node`, type: "chat" },
      xml("body", {}, "hello from @xmpp/component"),
    ),
  );
});
xmpp.on("stanza", async (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")) {
    console.log("GOT", stanza.getChildText("body"), "FROM", stanza.attrs.from);
    await xmpp.stop();
    process.exit(0);
  }
});
xmpp.start().catch((err) => {
  console.log("ERROR", err.condition || err.message);
  process.exit(1);
});
