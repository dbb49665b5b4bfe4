/**
 * The standalone hub over node:http, or over node:http2 with TLS (HTTP/2 and HTTP/1.1 on the same
 * port): routing, and the shutdown that stops accepting, tells subscribers to come back, and ends
 * within a bound.
 */
import { createServer, type Server } from "node:http";
import { createSecureServer, type Http2SecureServer, type Http2Session } from "node:http2";
import type { Socket } from "node:net";
import type { NodeRequest, NodeResponse } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";
import type { Hub } from "../../hub.ts";
import { MERCURE_PATH, SUBSCRIPTIONS_PATH } from "../paths.ts";
import { type HandlerOptions, type HttpContext, resolveContext } from "./context.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { sendHomePage } from "./home.ts";
import { handlePublish } from "./publish.ts";
import { sendError, sendText } from "./respond.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleSubscriptions } from "./subscriptions.ts";
import { requestUrl } from "./target.ts";

/**
 * A request listener serving the Mercure endpoint, the subscriptions API (when the hub tracks
 * subscriptions), `/healthz` and a home page at `/`.
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
  if (url.pathname === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
    sendText(res, 200, "ok");
    return;
  }
  if (url.pathname === "/" && req.method === "GET") {
    sendHomePage(res);
    return;
  }
  sendText(res, 404, "not found");
}

/** A node:http server for the hub. */
export function createHubServer(options: HandlerOptions): Server {
  // Publishers hold keep-alive connections. Node's 5 s idle timeout races a client that reuses a
  // connection just before its own 4 s limit when the event loop is busy fanning out: the
  // request then meets a closed socket (ECONNRESET, seen under steady-10k load). 65 s is above
  // common client and load-balancer idle timeouts, so the client closes first.
  const server = createServer(createHandler(options));
  server.keepAliveTimeout = 65_000;
  return server;
}

/** Options of {@link createSecureHubServer}: the handler's, and the TLS certificate and key. */
export interface SecureHubServerOptions extends HandlerOptions {
  /** The certificate chain, PEM. */
  readonly cert: string | Buffer;
  /** The private key of the certificate, PEM. */
  readonly key: string | Buffer;
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
  const { cert, key, ...handler } = options;
  const server = createSecureServer({ cert, key, allowHTTP1: true }, createHandler(handler));
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
 * Stops accepting connections, closes the hub (subscribers get a `retry` hint and their streams
 * end), and resolves once the server has closed or `graceMs` passed, whichever is first;
 * connections still open then are dropped.
 */
export async function shutdown(
  server: Server | Http2SecureServer,
  hub: Hub,
  graceMs = 5000,
): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await hub.close();
  // node:http2's server has it too (for its HTTP/1.1 connections), untyped.
  if ("closeIdleConnections" in server) server.closeIdleConnections();
  const secure = secureConnections.get(server as Http2SecureServer);
  // GOAWAY: each session ends once its streams have.
  for (const session of secure?.sessions ?? []) session.close();
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
    timer.unref();
  });
  await Promise.race([closed, grace]);
  clearTimeout(timer);
  if ("closeAllConnections" in server) server.closeAllConnections();
  for (const socket of secure?.sockets ?? []) socket.destroy();
}
