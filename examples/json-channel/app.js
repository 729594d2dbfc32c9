// The JSON channel (docs/json-channel.md), no library: SCRAM-SHA-256 with
// Web Crypto, bind, roster, presence, messages, an iq error.
"use strict";

const enc = new TextEncoder();
const $ = (id) => document.getElementById(id);
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
let ws = null;
let me = null;

function log(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("log").append(li);
}

async function hmac(key, data) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(data)));
}

// RFC 5802 §3 / RFC 7677: the client side of SCRAM-SHA-256.
class Scram {
  constructor(user, password) {
    this.password = password;
    this.nonce = b64(crypto.getRandomValues(new Uint8Array(18)));
    this.bare = `n=${user.replace(/=/g, "=3D").replace(/,/g, "=2C")},r=${this.nonce}`;
  }
  first() { return b64(enc.encode("n,," + this.bare)); }
  async final(challenge) {
    const serverFirst = new TextDecoder().decode(unb64(challenge));
    const f = Object.fromEntries(serverFirst.split(",").map((p) => [p[0], p.slice(2)]));
    if (!f.r.startsWith(this.nonce)) throw new Error("bad server nonce");
    const base = await crypto.subtle.importKey("raw", enc.encode(this.password), "PBKDF2", false, ["deriveBits"]);
    const salted = new Uint8Array(await crypto.subtle.deriveBits(
      { name: "PBKDF2", salt: unb64(f.s), iterations: Number(f.i), hash: "SHA-256" }, base, 256));
    const clientKey = await hmac(salted, "Client Key");
    const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey));
    const noProof = `c=biws,r=${f.r}`;
    const authMessage = `${this.bare},${serverFirst},${noProof}`;
    const signature = await hmac(storedKey, authMessage);
    const proof = clientKey.map((b, i) => b ^ signature[i]);
    this.serverSignature = b64(await hmac(await hmac(salted, "Server Key"), authMessage));
    return b64(enc.encode(`${noProof},p=${b64(proof)}`));
  }
  verify(data) {
    return new TextDecoder().decode(unb64(data)) === `v=${this.serverSignature}`;
  }
}

function send(obj) { ws.send(JSON.stringify(obj)); }

function login(jid, password) {
  const [user, domain] = jid.split("@");
  const scram = new Scram(user, password);
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/json`;
  ws = new WebSocket(url, "xmpp-json-1");
  let authenticated = false;
  ws.onopen = () => send({ kind: "open", to: domain });
  ws.onclose = () => { $("status").textContent = "offline"; };
  ws.onmessage = async (event) => {
    const obj = JSON.parse(event.data);
    switch (obj.kind) {
      case "features":
        if (!authenticated) send({ kind: "auth", mechanism: "SCRAM-SHA-256", data: scram.first() });
        else send({ kind: "bind", id: "bind1", resource: "web" });
        break;
      case "challenge":
        send({ kind: "response", data: await scram.final(obj.data) });
        break;
      case "success":
        if (!scram.verify(obj.data)) { log("error", "server signature mismatch"); ws.close(); return; }
        authenticated = true;
        $("status").textContent = "authenticated";
        send({ kind: "open", to: domain });
        break;
      case "failure":
        $("status").textContent = `failed: ${obj.condition}`;
        break;
      case "bound":
        me = obj.jid;
        $("status").textContent = "online";
        $("bound").textContent = me;
        send({ kind: "iq", type: "get", id: "roster1", payload: "<query xmlns='jabber:iq:roster'/>" });
        send({ kind: "presence" });
        break;
      case "iq":
        if (obj.id === "roster1" && obj.type === "result") showRoster(obj.payload);
        else if (obj.type === "error") log("iq-error", `iq ${obj.id} error: ${condition(obj.error)}`);
        break;
      case "presence": {
        const who = obj.from.split("/")[0];
        const item = document.querySelector(`#roster li[data-jid="${who}"]`);
        if (item) item.dataset.presence = obj.type || "available";
        log("presence", `${obj.from} is ${obj.type || "available"}`);
        break;
      }
      case "message":
        if (obj.body) log("message", `${obj.from.split("/")[0]}: ${obj.body}`);
        break;
      case "stream-error":
        log("error", `stream error: ${obj.condition}`);
        break;
      default:
        break;
    }
  };
}

function condition(errorXml) {
  const doc = new DOMParser().parseFromString(errorXml, "application/xml");
  const first = doc.documentElement.firstElementChild;
  return first ? first.localName : "undefined-condition";
}

function showRoster(payload) {
  const doc = new DOMParser().parseFromString(payload, "application/xml");
  for (const item of doc.getElementsByTagName("item")) {
    const li = document.createElement("li");
    li.dataset.jid = item.getAttribute("jid");
    li.dataset.presence = "unavailable";
    li.textContent = item.getAttribute("name") || item.getAttribute("jid");
    $("roster").append(li);
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  login($("jid").value, $("password").value);
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  send({ kind: "message", type: "chat", to: $("to").value, body: $("body").value });
  log("sent", `me: ${$("body").value}`);
});
$("bad-iq").addEventListener("click", () => {
  send({ kind: "iq", type: "get", id: "nobody", to: me.split("@")[1].split("/")[0],
         payload: "<nothing xmlns='urn:example:none'/>" });
});
