/**
 * The standalone hub over node:http: routing (the Mercure endpoint, the subscriptions API,
 * metadata, health, extra routes, the home page) and the plain server with its request bounds.
 * HTTPS is `secure.ts`; the end of either server `shutdown.ts`.
 */
import { createServer, type Server } from "node:http";
import type { Duplex } from "node:stream";
import type { NodeRequest, NodeResponse } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";
import { MERCURE_PATH, SUBSCRIPTIONS_PATH } from "../paths.ts";
import { type HandlerOptions, type HttpContext, resolveContext } from "./context.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { sendHomePage } from "./home.ts";
import { answerClientError, type HubServerOptions, requestLimits } from "./limits.ts";
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

/** A node:http server for the hub. */
export function createHubServer(options: HubServerOptions): Server {
  const limits = requestLimits(options);
  const server = createServer(
    {
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      connectionsCheckingInterval: limits.checkEveryMs,
    },
    createHandler(options),
  );
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket, limits.late),
  );
  server.keepAliveTimeout = limits.idleTimeout;
  return server;
}
