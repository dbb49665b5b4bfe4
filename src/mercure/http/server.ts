/**
 * The standalone hub over node:http, or over node:http2 with TLS (HTTP/2 and HTTP/1.1 on the same
 * port): routing, and the shutdown that stops accepting, tells subscribers to come back, and ends
 * within a bound.
 */
import { createServer, type Server } from "node:http";
import { createSecureServer, type Http2SecureServer, type Http2Session } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { NodeRequest, NodeResponse } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";
import type { Hub } from "../../hub.ts";
import { integerOption } from "../../options.ts";
import { MERCURE_PATH, SUBSCRIPTIONS_PATH } from "../paths.ts";
import { type HandlerOptions, type HttpContext, resolveContext } from "./context.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { handleDashboard } from "./dashboard.ts";
import { sendHomePage } from "./home.ts";
import { sendMetadata } from "./metadata.ts";
import { handlePublish } from "./publish.ts";
import { RETRY_AFTER_SECONDS, sendError, sendText } from "./respond.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleSubscriptions } from "./subscriptions.ts";
import { requestUrl } from "./target.ts";

/**
 * A request listener serving the Mercure endpoint, the subscriptions API (when the hub tracks
 * subscriptions), the protected resource metadata (when the hub has a resource identifier),
 * `/healthz` (liveness), `/readyz` (readiness), any extra `routes` and a home page at `/`.
 */
export function createHandler(
  options: HandlerOptions,
): (req: NodeRequest, res: NodeResponse) => void {
  const ctx = resolveContext(options);
  return (req, res) => {
    // A throw here would reach node:http's 'request' emitter and end the process: every
    // request gets an answer instead, and an unexpected error is reported on the hub.
    try {
      route(ctx, req, res);
    } catch (err) {
      if (!(err instanceof CrierError) && ctx.hub.listenerCount("error") > 0) {
        ctx.hub.emit("error", err instanceof Error ? err : new Error(String(err)));
      }
      sendError(res, err);
    }
  };
}

function route(ctx: HttpContext, req: NodeRequest, res: NodeResponse): void {
  const url = requestUrl(req);
  const cors = corsHeaders(req, ctx.corsOrigins);
  if (url.pathname === MERCURE_PATH) {
    if (req.method === "GET") void handleSubscribe(ctx, req, res, url, cors);
    else if (req.method === "POST") void handlePublish(ctx, req, res, url, cors);
    else if (req.method === "OPTIONS") preflight(req, res, ctx.corsOrigins);
    else
      sendText(res, 405, "use GET to subscribe or POST to publish", {
        ...cors,
        Allow: "GET, POST, OPTIONS",
      });
    return;
  }
  if (ctx.subscriptions !== undefined && url.pathname.startsWith(SUBSCRIPTIONS_PATH)) {
    void handleSubscriptions(ctx, req, res, url, cors);
    return;
  }
  if (ctx.metadata !== undefined && url.pathname === ctx.metadata.path && ctx.audience) {
    if (req.method === "GET" || req.method === "HEAD") {
      sendMetadata(
        res,
        {
          audience: ctx.audience,
          issuer: ctx.issuer,
          subscriptions: ctx.subscriptions !== undefined,
        },
        cors,
      );
    } else {
      sendText(res, 405, "use GET to read the metadata", { ...cors, Allow: "GET, HEAD" });
    }
    return;
  }
  const read = req.method === "GET" || req.method === "HEAD";
  // Liveness: the process answers. Readiness: it should be sent traffic (not draining, its
  // backplane answering).
  if (url.pathname === "/healthz" && read) {
    sendText(res, 200, "ok");
    return;
  }
  if (url.pathname === "/readyz" && read) {
    if (ctx.ready()) sendText(res, 200, "ready");
    else sendText(res, 503, "not ready", { "Retry-After": String(RETRY_AFTER_SECONDS) });
    return;
  }
  if (handleDashboard(ctx, req, res, url)) return;
  const extra =
    read && Object.hasOwn(ctx.routes, url.pathname) ? ctx.routes[url.pathname] : undefined;
  if (extra !== undefined) {
    extra(req, res);
    return;
  }
  if (url.pathname === "/" && req.method === "GET") {
    sendHomePage(res);
    return;
  }
  sendText(res, 404, "not found");
}

/** Defaults of {@link HubServerOptions}. */
export const SERVER_DEFAULTS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConcurrentStreams: 100,
} as const;

/** Options of {@link createHubServer}: the handler's, and the server's own timeouts. */
export interface HubServerOptions extends HandlerOptions {
  /**
   * Time a client has to send the request line and headers, from its first byte; then it gets
   * `408` and the connection is closed (slowloris: a client that trickles a header byte every
   * few seconds to hold a connection). Default 10 s (node's own is 60 s); 0 turns it off.
   */
  readonly headersTimeoutMs?: number | undefined;
  /**
   * Time a client has to send its whole request, headers and body (a publish); then `408`.
   * Default 30 s; 0 turns it off. Neither timeout ever ends an event stream: they bound the
   * request, which a subscription has finished sending before its stream begins.
   */
  readonly requestTimeoutMs?: number | undefined;
}

/** A node:http server for the hub. */
export function createHubServer(options: HubServerOptions): Server {
  const headersTimeout = integerOption(
    "headersTimeoutMs",
    options.headersTimeoutMs,
    SERVER_DEFAULTS.headersTimeoutMs,
  );
  const requestTimeout = integerOption(
    "requestTimeoutMs",
    options.requestTimeoutMs,
    SERVER_DEFAULTS.requestTimeoutMs,
  );
  if (headersTimeout > 0 && requestTimeout > 0 && headersTimeout > requestTimeout) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `headersTimeoutMs (${headersTimeout}) must not exceed requestTimeoutMs (${requestTimeout}): the headers are part of the request`,
    );
  }
  // node:http looks for expired requests every `connectionsCheckingInterval` (30 s by default),
  // which would let a 2 s timeout run for 32 s: look four times per timeout instead. The check
  // walks only connections with a request still arriving, never the event streams.
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0), 120_000);
  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(shortest / 4))),
    },
    createHandler(options),
  );
  const late = `the request did not arrive in time (headers within ${headersTimeout} ms, all of it within ${requestTimeout} ms; 0: no limit)`;
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket, late),
  );
  // Publishers hold keep-alive connections. Node's 5 s idle timeout races a client that reuses a
  // connection just before its own 4 s limit when the event loop is busy fanning out: the
  // request then meets a closed socket (ECONNRESET, seen under steady-10k load). 65 s is above
  // common client and load-balancer idle timeouts, so the client closes first.
  server.keepAliveTimeout = 65_000;
  return server;
}

// What node:http answers by itself to a request it cannot parse or that came too slowly (same
// statuses), with the one-line reason every refusal of the hub carries.
const CLIENT_ERRORS: Readonly<Record<string, readonly [string, string]>> = {
  HPE_HEADER_OVERFLOW: ["431 Request Header Fields Too Large", "the request headers are too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: ["413 Payload Too Large", "the chunk extensions are too large"],
};

function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, late: string): void {
  const [status, reason] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? ["408 Request Timeout", late]
      : (CLIENT_ERRORS[err.code ?? ""] ?? ["400 Bad Request", "the request is malformed"]);
  // As node:http does: answer only when no response of ours has begun on this connection.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) {
    const body = `${reason}\n`;
    socket.write(
      `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Options of {@link createSecureHubServer}: the handler's, and the TLS certificate and key. */
export interface SecureHubServerOptions extends HandlerOptions {
  /** The certificate chain, PEM. */
  readonly cert: string | Buffer;
  /** The private key of the certificate, PEM. */
  readonly key: string | Buffer;
  /**
   * Most streams a client may open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_
   * STREAMS): each event stream holds one for its lifetime, so this bounds what one connection
   * can hold. Default 100 (node's own is unbounded); a browser queues streams past it.
   */
  readonly maxConcurrentStreams?: number | undefined;
}

// The connections of each secure server: its HTTP/2 sessions, closed gracefully (GOAWAY) on
// shutdown, and every TLS socket (HTTP/2 or HTTP/1.1), dropped once the grace has passed; the
// http2 server has no closeAllConnections of its own.
const secureConnections = new WeakMap<
  Http2SecureServer,
  { sessions: Set<Http2Session>; sockets: Set<Socket> }
>();

/**
 * An HTTPS server for the hub that speaks HTTP/2, and HTTP/1.1 to clients that do not offer it
 * (ALPN), on the same port. Over HTTP/2 a browser multiplexes every EventSource of an origin on
 * one connection, instead of six HTTP/1.1 connections at most.
 */
export function createSecureHubServer(options: SecureHubServerOptions): Http2SecureServer {
  const { cert, key, maxConcurrentStreams, ...handler } = options;
  const settings = {
    maxConcurrentStreams: integerOption(
      "maxConcurrentStreams",
      maxConcurrentStreams,
      SERVER_DEFAULTS.maxConcurrentStreams,
      1,
      2 ** 31 - 1,
    ),
  };
  const server = createSecureServer(
    { cert, key, allowHTTP1: true, settings },
    createHandler(handler),
  );
  const tracked = { sessions: new Set<Http2Session>(), sockets: new Set<Socket>() };
  secureConnections.set(server, tracked);
  server.on("session", (session: Http2Session) => {
    tracked.sessions.add(session);
    session.once("close", () => tracked.sessions.delete(session));
  });
  server.on("secureConnection", (socket: Socket) => {
    tracked.sockets.add(socket);
    socket.once("close", () => tracked.sockets.delete(socket));
  });
  // A TLS handshake that fails (a client that does not trust the certificate) is the client's
  // business: without a listener the error would reach the process.
  server.on("tlsClientError", () => {});
  return server;
}

/**
 * Stops the hub and its server within `graceMs`: the hub closes (new subscriptions answered 503
 * with Retry-After; open streams ended with a `retry` hint, spread over `spreadMs` when given;
 * publishes in flight stored), then the server stops accepting and resolves once it has closed
 * or the grace has passed, whichever is first; connections still open then are dropped.
 */
export async function shutdown(
  server: Server | Http2SecureServer,
  hub: Hub,
  graceMs = 5000,
  spreadMs = 0,
): Promise<void> {
  const deadline = Date.now() + graceMs;
  // While the streams are being ended the server keeps answering, so that a new subscriber
  // hears 503 and Retry-After instead of a refused connection.
  await hub.close({ spreadMs: Math.min(spreadMs, graceMs) });
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // node:http2's server has it too (for its HTTP/1.1 connections), untyped.
  if ("closeIdleConnections" in server) server.closeIdleConnections();
  const secure = secureConnections.get(server as Http2SecureServer);
  // GOAWAY: each session ends once its streams have.
  for (const session of secure?.sessions ?? []) session.close();
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    timer.unref();
  });
  await Promise.race([closed, grace]);
  clearTimeout(timer);
  if ("closeAllConnections" in server) server.closeAllConnections();
  for (const socket of secure?.sockets ?? []) socket.destroy();
}
