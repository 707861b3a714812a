// Drives the official Fedimint client (npm @fedimint/fedimint-client-wasm-bundler, a wasm-pack
// "bundler" build) under plain Node, for fedimint-gw's interop tests.
//
// Protocol: one JSON object per line on stdin, one JSON object per line on stdout.
//   request  {"id": <any>, "op": "<op>", ...args}
//   answer   {"id": <same>, "result": <json>}   or   {"id": <same>, "error": "<message>"}
//   event    {"event": "<name>", ...}  (no id: things that happened outside a request)
// Ops: ping, parse_invite_code {invite}, parse_bolt11_invoice {invoice}, preview_federation {invite},
//      join {client_name, invite}, open {client_name}, close {client_name},
//      rpc {client_name?, module, method, payload, max_items?}, shutdown.
// Requests run concurrently; answers may come out of order (match them by id).
// Everything else (driver trace, WebSocket frames, uncaught errors) goes to stderr, one JSON per line.

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const PKG = "@fedimint/fedimint-client-wasm-bundler";
const TRACE_LIMIT = Number(process.env.FM_DRIVER_TRACE_LIMIT ?? 4000);

// stdout carries the protocol only: anything else that prints goes to stderr.
const writeOut = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
// Long string fields are cut (the line stays valid JSON).
const clip = (value) =>
  typeof value === "string" && value.length > TRACE_LIMIT ? `${value.slice(0, TRACE_LIMIT)}…` : value;
const trace = (kind, fields) => {
  const clipped = Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, clip(value)]));
  process.stderr.write(JSON.stringify({ t: Date.now(), kind, ...clipped }) + "\n");
};
console.log = (...args) => trace("console", { args: args.map(String) });
console.info = console.log;
console.debug = console.log;

const errorText = (e) => {
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message || String(e);
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
};

process.on("uncaughtException", (e) => {
  trace("uncaught", { error: errorText(e), stack: e?.stack });
  writeOut({ event: "uncaught", error: errorText(e) });
});
process.on("unhandledRejection", (e) => {
  trace("unhandled_rejection", { error: errorText(e), stack: e?.stack });
  writeOut({ event: "unhandled_rejection", error: errorText(e) });
});

// ---- Browser globals the WASM client expects ----------------------------------------------------

// getrandom's "js" backend sees process.versions.node and then asks `module.require("crypto")`;
// an ES module has no `module`, so give it one.
if (typeof globalThis.module === "undefined") globalThis.module = { require };

// IndexedDB (the client's database): in-memory, fresh for every driver process.
await import("fake-indexeddb/auto");

// Node 20 ships WebSocket behind --experimental-websocket (default from Node 22).
const NativeWebSocket = globalThis.WebSocket;
if (typeof NativeWebSocket !== "function") {
  writeOut({ event: "fatal", error: "no WebSocket in this Node: run node --experimental-websocket" });
  process.exit(2);
}

const EVENT_TYPES = ["open", "message", "error", "close"];
let socketCounter = 0;

// Node's WebSocket may deliver an event while the WASM side is still inside a call into it, or to a
// listener the client just removed; wasm-bindgen then aborts with "closure invoked recursively or
// after being dropped". This subclass keeps its own listener lists, hears each native event once,
// and delivers it on a later macrotask (in arrival order) to the listeners registered *then*.
// Once the client itself has called close(), later events are not delivered (traced as ws_dropped):
// the client drops its handler closures right after close() without clearing onclose/onmessage, so
// the close event that Node fires afterwards would reach dropped closures.
class DeferredWebSocket extends NativeWebSocket {
  #listeners = new Map(EVENT_TYPES.map((type) => [type, []]));
  #handlers = new Map();
  #queue = [];
  #draining = false;
  #sid = ++socketCounter;
  #closedByClient = false;

  constructor(url, protocols) {
    super(url, protocols);
    trace("ws_new", { sid: this.#sid, url: String(url) });
    for (const type of EVENT_TYPES) super.addEventListener(type, (event) => this.#enqueue(type, event));
  }

  #enqueue(type, event) {
    const fields = { sid: this.#sid, type };
    if (type === "message") fields.data = typeof event.data === "string" ? event.data : "<binary>";
    if (type === "close") Object.assign(fields, { code: event.code, reason: event.reason });
    trace("ws_recv", fields);
    this.#queue.push([type, event]);
    if (!this.#draining) {
      this.#draining = true;
      setTimeout(() => this.#drain(), 0);
    }
  }

  #drain() {
    const [type, event] = this.#queue.shift();
    if (this.#closedByClient) {
      trace("ws_dropped", { sid: this.#sid, type });
      this.#next();
      return;
    }
    const targets = [];
    const handler = this.#handlers.get(type);
    if (handler) targets.push({ listener: handler, once: false, isHandler: true });
    targets.push(...this.#listeners.get(type));
    for (const entry of targets) {
      // A listener removed (or a handler replaced) by an earlier one in this round is skipped.
      const live = entry.isHandler
        ? this.#handlers.get(type) === entry.listener
        : this.#listeners.get(type).includes(entry);
      if (!live) continue;
      if (entry.once) this.#remove(type, entry.listener);
      try {
        if (typeof entry.listener === "function") entry.listener.call(this, event);
        else entry.listener.handleEvent(event);
      } catch (e) {
        trace("ws_listener_error", { sid: this.#sid, type, error: errorText(e) });
        writeOut({ event: "listener_error", type, error: errorText(e) });
      }
    }
    this.#next();
  }

  #next() {
    if (this.#queue.length > 0) setTimeout(() => this.#drain(), 0);
    else this.#draining = false;
  }

  #remove(type, listener) {
    const list = this.#listeners.get(type);
    const index = list?.findIndex((entry) => entry.listener === listener) ?? -1;
    if (index >= 0) list.splice(index, 1);
  }

  addEventListener(type, listener, options) {
    if (!this.#listeners.has(type)) return super.addEventListener(type, listener, options);
    if (!listener || this.#listeners.get(type).some((entry) => entry.listener === listener)) return;
    const once = typeof options === "object" && options !== null && Boolean(options.once);
    this.#listeners.get(type).push({ listener, once, isHandler: false });
  }

  removeEventListener(type, listener, options) {
    if (!this.#listeners.has(type)) return super.removeEventListener(type, listener, options);
    this.#remove(type, listener);
  }

  send(data) {
    trace("ws_send", { sid: this.#sid, data: typeof data === "string" ? data : "<binary>" });
    return super.send(data);
  }

  close(code, reason) {
    trace("ws_close", { sid: this.#sid, code });
    this.#closedByClient = true;
    return super.close(code, reason);
  }

  get onopen() { return this.#handlers.get("open") ?? null; }
  set onopen(fn) { this.#setHandler("open", fn); }
  get onmessage() { return this.#handlers.get("message") ?? null; }
  set onmessage(fn) { this.#setHandler("message", fn); }
  get onerror() { return this.#handlers.get("error") ?? null; }
  set onerror(fn) { this.#setHandler("error", fn); }
  get onclose() { return this.#handlers.get("close") ?? null; }
  set onclose(fn) { this.#setHandler("close", fn); }

  #setHandler(type, fn) {
    if (typeof fn === "function") this.#handlers.set(type, fn);
    else this.#handlers.delete(type);
  }
}
globalThis.WebSocket = DeferredWebSocket;

// ---- Load the WASM without a bundler --------------------------------------------------------------

// The package's entry module imports the .wasm as an ES module (a bundler feature). Do by hand what
// the bundler would: instantiate the .wasm with the JS glue module as its import object, hand the
// exports to the glue, run the start function.
const pkgDir = require.resolve(`${PKG}/package.json`).replace(/package\.json$/, "");
const glue = await import(`${pkgDir}fedimint_client_wasm_bg.js`);
const wasmBytes = await readFile(`${pkgDir}fedimint_client_wasm_bg.wasm`);
const { instance } = await WebAssembly.instantiate(wasmBytes, { "./fedimint_client_wasm_bg.js": glue });
glue.__wbg_set_wasm(instance.exports);
instance.exports.__wbindgen_start();
const { WasmClient } = glue;

// ---- Commands ----------------------------------------------------------------------------------

const clients = new Map(); // client_name -> WasmClient
let lastClientName = null;

const need = (req, field) => {
  const value = req[field];
  if (typeof value !== "string" || value === "") throw new Error(`missing string field "${field}"`);
  return value;
};

const parseJsonText = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

const clientFor = (req) => {
  const name = req.client_name ?? lastClientName;
  const client = name === null ? undefined : clients.get(name);
  if (!client) throw new Error(`no open client ${JSON.stringify(name)}: join or open first`);
  return client;
};

// One client rpc: collect every {"data": ...} the callback delivers until {"end": ...}; an
// {"error": ...} fails the request. With max_items, answer after that many items and cancel.
const runRpc = (client, req) =>
  new Promise((resolve, reject) => {
    const module = typeof req.module === "string" ? req.module : need(req, "module");
    const method = need(req, "method");
    const maxItems = Number.isInteger(req.max_items) && req.max_items > 0 ? req.max_items : null;
    const items = [];
    let handle = null;
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      if (handle !== null) {
        const h = handle;
        setTimeout(() => {
          try {
            h.cancel();
            h.free();
          } catch (e) {
            trace("rpc_handle_error", { error: errorText(e) });
          }
        }, 0);
      }
      fn(value);
    };
    const callback = (raw) => {
      const message = parseJsonText(raw);
      trace("rpc_cb", { id: req.id, module, method, message: String(raw) });
      if (settled) return;
      if (message !== null && typeof message === "object" && "error" in message) {
        finish(reject, new Error(errorText(message.error)));
      } else if (message !== null && typeof message === "object" && "data" in message) {
        items.push(message.data);
        if (maxItems !== null && items.length >= maxItems) finish(resolve, items);
      } else if (message !== null && typeof message === "object" && "end" in message) {
        finish(resolve, items);
      } else {
        finish(reject, new Error(`unexpected rpc callback value: ${String(raw)}`));
      }
    };
    handle = client.rpc(module, method, JSON.stringify(req.payload ?? {}), callback);
  });

const OPS = {
  ping: async () => "pong",
  parse_invite_code: async (req) => parseJsonText(WasmClient.parse_invite_code(need(req, "invite"))),
  parse_bolt11_invoice: async (req) => parseJsonText(WasmClient.parse_bolt11_invoice(need(req, "invoice"))),
  preview_federation: async (req) => {
    const preview = await WasmClient.preview_federation(need(req, "invite"));
    return typeof preview === "string" ? parseJsonText(preview) : preview;
  },
  join: async (req) => {
    const name = need(req, "client_name");
    if (clients.has(name)) throw new Error(`client ${JSON.stringify(name)} is already open`);
    const client = await WasmClient.join_federation(name, need(req, "invite"));
    clients.set(name, client);
    lastClientName = name;
    return { joined: true };
  },
  open: async (req) => {
    const name = need(req, "client_name");
    if (clients.has(name)) throw new Error(`client ${JSON.stringify(name)} is already open`);
    const client = await WasmClient.open(name);
    if (client) {
      clients.set(name, client);
      lastClientName = name;
    }
    return { opened: Boolean(client) };
  },
  close: async (req) => {
    const name = need(req, "client_name");
    const client = clients.get(name);
    if (client) {
      clients.delete(name);
      if (lastClientName === name) lastClientName = null;
      client.free();
    }
    return { closed: Boolean(client) };
  },
  rpc: async (req) => runRpc(clientFor(req), req),
  shutdown: async () => {
    setTimeout(() => process.exit(0), 0);
    return "bye";
  },
};

let pending = 0;
let stdinClosed = false;
const exitWhenIdle = () => {
  if (stdinClosed && pending === 0) process.exit(0);
};

const handle = async (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    writeOut({ id: null, error: `bad JSON request: ${errorText(e)}` });
    return;
  }
  const id = req?.id ?? null;
  const op = OPS[req?.op];
  if (!op) {
    writeOut({ id, error: `unknown op ${JSON.stringify(req?.op)}` });
    return;
  }
  trace("request", { id, op: req.op });
  pending += 1;
  try {
    const result = await op(req);
    writeOut({ id, result: result ?? null });
  } catch (e) {
    trace("request_error", { id, op: req.op, error: errorText(e) });
    writeOut({ id, error: errorText(e) });
  } finally {
    pending -= 1;
    exitWhenIdle();
  }
};

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (line.trim() !== "") handle(line);
});
// End of input: finish what is running, then exit.
lines.on("close", () => {
  trace("stdin_closed", { pending });
  stdinClosed = true;
  exitWhenIdle();
});
writeOut({ event: "ready", node: process.versions.node });
