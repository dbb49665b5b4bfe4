/**
 * The standalone hub over node:http: routing, and the shutdown that stops accepting, tells
 * subscribers to come back, and ends within a bound.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { CrierError } from "../../errors.ts";
import type { Hub } from "../../hub.ts";
import { MERCURE_PATH, SUBSCRIPTIONS_PATH } from "../paths.ts";
import { type HandlerOptions, type HttpContext, resolveContext } from "./context.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { sendHomePage } from "./home.ts";
import { handlePublish } from "./publish.ts";
import { RETRY_AFTER_SECONDS, sendError, sendText } from "./respond.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleSubscriptions } from "./subscriptions.ts";
import { requestUrl } from "./target.ts";

/**
 * A request listener serving the Mercure endpoint, the subscriptions API (when the hub tracks
 * subscriptions), `/healthz` (liveness), `/readyz` (readiness), any extra `routes` and a home
 * page at `/`.
 */
export function createHandler(
  options: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
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

function route(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): void {
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
  const extra = read ? ctx.routes[url.pathname] : undefined;
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

/**
 * Stops the hub and its server within `graceMs`: the hub closes (new subscriptions answered 503
 * with Retry-After; open streams ended with a `retry` hint, spread over `spreadMs` when given;
 * publishes in flight stored), then the server stops accepting and resolves once it has closed
 * or the grace has passed, whichever is first; connections still open then are dropped.
 */
export async function shutdown(
  server: Server,
  hub: Hub,
  graceMs = 5000,
  spreadMs = 0,
): Promise<void> {
  const deadline = Date.now() + graceMs;
  // While the streams are being ended the server keeps answering, so that a new subscriber
  // hears 503 and Retry-After instead of a refused connection.
  await hub.close({ spreadMs: Math.min(spreadMs, graceMs) });
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    timer.unref();
  });
  await Promise.race([closed, grace]);
  clearTimeout(timer);
  server.closeAllConnections();
}
