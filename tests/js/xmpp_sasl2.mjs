// @xmpp/client (npm) against a server offering SASL2 (XEP-0388), Bind 2
// (XEP-0386), FAST (XEP-0484) and XEP-0198 inline, over direct TLS.
// Run by tests/trio/test_sasl2_js.py.
// Usage: node xmpp_sasl2.mjs SERVICE USERNAME PASSWORD RESOURCE
// 1. logs in (SASL2 + Bind 2 with the resource as tag, SM enabled inline,
//    a FAST token requested); 2. the TCP connection is dropped; 3. the
//    reconnect module logs in again, with the FAST token, resuming the
//    session inline. Prints AUTH <mechanism> per login, SESSION <jid>,
//    ENABLED <sm id>, TOKEN <mechanism>, RESUMED, and exits 0 once resumed.
import { client, xml } from "@xmpp/client";

const [service, username, password, resource] = process.argv.slice(2);
const xmpp = client({ service, domain: "localhost", username, password, resource });
setTimeout(() => {
  console.log("TIMEOUT");
  process.exit(2);
}, 30000);
xmpp.on("error", (err) => console.log("ERROR", err.condition || err.message));
xmpp.on("send", (element) => {
  if (element.is("authenticate", "urn:xmpp:sasl:2")) {
    console.log("AUTH", element.attrs.mechanism);
    if (element.getChild("resume", "urn:xmpp:sm:3")) console.log("RESUME-INLINE");
  }
});
xmpp.fast.saveToken = async (token) => {
  console.log("TOKEN", token.mechanism);
  xmpp.fast.savedToken = token;
};
xmpp.fast.fetchToken = async () => xmpp.fast.savedToken;
let dropped = false;
xmpp.on("online", async (address) => {
  console.log("SESSION", address.toString());
  await new Promise((resolve) => setTimeout(resolve, 0)); // <bound/>'s children next
  if (xmpp.streamManagement.enabled && !dropped) {
    console.log("ENABLED", xmpp.streamManagement.id);
    await xmpp.send(xml("presence"));
    dropped = true;
    xmpp.socket.socket.destroy(); // a dropped connection, no </stream:stream>
  }
});
xmpp.streamManagement.on("resumed", async () => {
  console.log("RESUMED");
  await xmpp.stop();
  process.exit(0);
});
await xmpp.start();
