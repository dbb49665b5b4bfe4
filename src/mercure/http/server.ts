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
import { sendMetadata } from "./metadata.ts";
import { handlePublish } from "./publish.ts";
import { sendError, sendText } from "./respond.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleSubscriptions } from "./subscriptions.ts";
import { requestUrl } from "./target.ts";

/**
 * A request listener serving the Mercure endpoint, the subscriptions API (when the hub tracks
 * subscriptions), the protected resource metadata (when the hub has a resource identifier),
 * `/healthz` and a home page at `/`.
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

/**
 * Stops accepting connections, closes the hub (subscribers get a `retry` hint and their streams
 * end), and resolves once the server has closed or `graceMs` passed, whichever is first;
 * connections still open then are dropped.
 */
export async function shutdown(server: Server, hub: Hub, graceMs = 5000): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await hub.close();
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
    timer.unref();
  });
  await Promise.race([closed, grace]);
  clearTimeout(timer);
  server.closeAllConnections();
}
