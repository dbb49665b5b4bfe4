/**
 * A {@link Sink} that writes an event stream straight to the TCP socket of a node:http request
 * and then takes the socket away from node:http, so that the request, the response and the
 * HTTP parser of an idle subscriber can be freed.
 *
 *   GET ──▶ node:http parser ──▶ 'request' ──▶ start(): head written on the socket (corked)
 *                                               next tick: uncork, detach ──▶ socket = stream
 *
 * Why: with 10,000 idle subscribers a kept `ServerResponse` (with its header string),
 * `IncomingMessage`, parser and the server's per-socket listeners held about 4 KB of the 12 KB of
 * RSS per connection, and writing through the response (header serialisation, chunked framing)
 * was a fifth of the CPU of a connect (bench `idle-10k`, `connect`; figures in the commit).
 *
 * The body is close-delimited (no Content-Length, no chunked coding, `Connection: close`), which
 * HTTP/1.1 allows for a response (RFC 9112 §6.3): the connection is the event stream until it
 * closes, so bytes the client sends after its GET are read and discarded, never parsed as
 * requests. The detach mirrors what node:http does itself for an `upgrade`; it is done only when
 * the socket carries exactly the listeners node:http is known to install, else the response
 * stays with node:http (the head is still ours) and only the memory saving is lost.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { validateHeaderName, validateHeaderValue } from "node:http";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import type { Sink } from "../subscriber.ts";

/** The parts of node:http's internal socket state the detach touches. */
interface HttpSocket extends Socket {
  parser?: { socket: unknown; incoming: unknown; finish(): unknown } | null;
  _httpMessage?: unknown;
  server?: Server;
}

type FreeParser = (parser: unknown, req: unknown, socket: unknown) => void;

// `_http_common` is node's own module for the parser pool; `freeParser` returns a parser to it.
// Loaded on the first take-over, so importing Crier does not load it. Should a future node no
// longer expose it, sockets are simply not taken over (and `takeOverAvailable()` says so).
let freeParserFn: FreeParser | null | undefined;
function freeParser(): FreeParser | undefined {
  if (freeParserFn === undefined) {
    try {
      const common = createRequire(import.meta.url)("_http_common") as { freeParser?: unknown };
      freeParserFn =
        typeof common.freeParser === "function" ? (common.freeParser as FreeParser) : null;
    } catch {
      freeParserFn = null;
    }
  }
  return freeParserFn ?? undefined;
}

/** Whether this Node exposes what the socket take-over needs (CI asserts it on every version). */
export function takeOverAvailable(): boolean {
  return freeParser() !== undefined;
}

/** Set `enabled` to false to force the `ServerResponse` path everywhere (tests, diagnosis). */
export const socketTakeOver = { enabled: true };

// The listeners node:http puts on a server socket (node ≥ 20), by event and function name.
const SERVER_LISTENERS: readonly (readonly [string, string])[] = [
  ["data", "bound socketOnData"],
  ["end", "bound socketOnEnd"],
  ["close", "bound socketOnClose"],
  ["drain", "bound socketOnDrain"],
  ["error", "socketOnError"],
  ["timeout", "socketOnTimeout"],
  ["resume", "onSocketResume"],
  ["pause", "onSocketPause"],
];
// Per-socket overrides node:http installs to notice a 'data' listener.
const OVERRIDES = ["on", "addListener", "prependListener", "setEncoding"] as const;
const SOCKET_METHODS = Socket.prototype as unknown as Record<string, unknown>;

/**
 * Whether the response of `req` can be taken over: an HTTP/1.x request whose socket is still
 * driven by node:http's parser, whose response is the one in flight and has sent nothing.
 */
export function canTakeOver(req: IncomingMessage, res: ServerResponse): boolean {
  const socket = req.socket as HttpSocket;
  return (
    socketTakeOver.enabled &&
    takeOverAvailable() &&
    req.httpVersionMajor === 1 &&
    !res.headersSent &&
    socket._httpMessage === res &&
    socket.parser?.socket === socket &&
    SERVER_LISTENERS.every(([event, name]) => listenerNamed(socket, event, name) !== undefined)
  );
}

export class SocketSink implements Sink {
  readonly kind = "node-socket";
  readonly #socket: HttpSocket;
  // Held only until the head is written, so that they can be freed after the take-over.
  #req: IncomingMessage | undefined;
  #res: ServerResponse | undefined;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.#req = req;
    this.#res = res;
    this.#socket = req.socket;
  }

  start(headers: Readonly<Record<string, string>>): void {
    const [req, res] = [this.#req, this.#res];
    if (req === undefined || res === undefined) return;
    this.#req = undefined;
    this.#res = undefined;
    const head = encodeHead(headers, res);
    // Corked so the head and the opening comment leave in one segment, as node:http does.
    this.#socket.cork();
    this.#socket.write(head, "latin1");
    process.nextTick(takeOver, req, res, this.#socket);
  }

  write(chunk: Buffer): boolean {
    return this.#socket.write(chunk);
  }

  end(): void {
    // A close-delimited body ends with the connection: FIN once written, then let go; and let
    // go anyway after a bound, should the client stop reading before the last bytes are out.
    const socket = this.#socket;
    socket.end(() => socket.destroy());
    setTimeout(destroyStream, END_GRACE_MS, socket).unref();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

// Runs after the parser's `execute` has returned (never tear a parser down inside its callback).
function takeOver(req: IncomingMessage, res: ServerResponse, socket: HttpSocket): void {
  socket.uncork();
  const parser = socket.parser;
  // Closed meanwhile (node:http cleans up), a body still arriving, or a pipelined request
  // already parsed behind this one (node:http must answer or abort it): leave it to node:http.
  if (socket.destroyed || parser == null || !req.complete || parser.incoming !== req) return;
  for (const [event, name] of SERVER_LISTENERS) {
    const listener = listenerNamed(socket, event, name);
    if (listener !== undefined) socket.removeListener(event, listener);
  }
  res.detachSocket(socket);
  parser.finish();
  freeParser()?.(parser, req, socket);
  // Assigned, not deleted: a delete turns each socket into a dictionary-mode object (1.8 KB of
  // properties per connection in a heap snapshot of 10,000 idle subscribers).
  const own = socket as unknown as Record<string, unknown>;
  for (const name of OVERRIDES) own[name] = SOCKET_METHODS[name];
  // [RFC 9112 §6.3] the body is delimited by the close: whatever the client sends is not a
  // request. Reading on (and discarding) is how a client's FIN or RST is noticed at once.
  socket.on("data", discard);
  socket.on("end", destroySocket);
  socket.on("error", ignore);
  track(socket);
}

// Freeing the parser takes the socket off the server's connection list, which is what
// `server.closeAllConnections()` destroys; so each server's taken-over sockets are kept here and
// its `closeAllConnections` destroys them too.
const takenOver = new WeakMap<Server, Set<Socket>>();

function track(socket: HttpSocket): void {
  const server = socket.server;
  if (server === undefined) return;
  let sockets = takenOver.get(server);
  if (sockets === undefined) {
    const own = new Set<HttpSocket>();
    sockets = own;
    takenOver.set(server, own);
    // node:http2's server (HTTP/1.1 fallback over TLS) has no closeAllConnections of its own.
    const closeAll = server.closeAllConnections as Server["closeAllConnections"] | undefined;
    server.closeAllConnections = function closeAllConnections(this: Server): void {
      closeAll?.call(this);
      for (const s of own) s.destroy();
    };
  }
  sockets.add(socket);
  socket.on("close", untrack);
}

function untrack(this: HttpSocket): void {
  if (this.server !== undefined) takenOver.get(this.server)?.delete(this);
}

type Listener = (...args: unknown[]) => void;

// Reads the emitter's own table: `listeners()` copies an array per call, 16 calls per connection.
function listenerNamed(socket: Socket, event: string, name: string): Listener | undefined {
  const events = (socket as unknown as { _events: Record<string, Listener | Listener[]> })._events;
  const found = events[event];
  if (typeof found === "function") return found.name === name ? found : undefined;
  return found?.find((listener) => listener.name === name);
}

/** How long a graceful end may take before the connection is dropped. */
export const END_GRACE_MS = 5000;

/** Destroys a stream (a socket, or a response that has not finished) that is still open. */
export function destroyStream(stream: { destroyed: boolean; destroy(): void }): void {
  if (!stream.destroyed) stream.destroy();
}

function discard(): void {}
function ignore(): void {}
function destroySocket(this: Socket): void {
  this.destroy();
}

/**
 * The status line and headers: headers already set on the response (`res.setHeader`, e.g. by
 * Express) and then `headers`, which win on a name clash, as with `writeHead`. Names and values
 * are checked as `writeHead` checks them (same errors).
 */
function encodeHead(headers: Readonly<Record<string, string>>, res: ServerResponse): string {
  let head = `HTTP/1.1 200 OK\r\nDate: ${httpDate()}\r\nConnection: close\r\n`;
  for (const name of res.getHeaderNames()) {
    if (hasName(headers, name)) continue;
    const value = res.getHeader(name);
    for (const one of Array.isArray(value) ? value : [value]) head += line(name, String(one));
  }
  for (const name in headers) head += line(name, headers[name] as string);
  return `${head}\r\n`;
}

function line(name: string, value: string): string {
  validateHeaderName(name);
  validateHeaderValue(name, value);
  return `${name}: ${value}\r\n`;
}

function hasName(headers: Readonly<Record<string, string>>, lower: string): boolean {
  for (const name in headers) if (name.toLowerCase() === lower) return true;
  return false;
}

// The `Date` header, formatted once per second like node:http's own.
let dateSecond = -1;
let dateText = "";
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}
