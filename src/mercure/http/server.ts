/**
 * The standalone hub over node:http: the request listener (routes in `router.ts`, over a
 * `NodeExchange`) and the plain server with its request bounds.
 * HTTPS is `secure.ts`; the end of either server `shutdown.ts`.
 */
import { createServer, type Server } from "node:http";
import type { Duplex } from "node:stream";
import type { NodeRequest, NodeResponse } from "../../adapters/node.ts";
import { MERCURE_PATH } from "../paths.ts";
import { type HandlerOptions, resolveContext } from "./context.ts";
import {
  answerClientError,
  answerConnect,
  type HubServerOptions,
  requestLimits,
} from "./limits.ts";
import { NodeExchange } from "./node-exchange.ts";
import { sendText } from "./respond.ts";
import { serve } from "./router.ts";

/**
 * A request listener serving the Mercure endpoint, the subscriptions API (when the hub tracks
 * subscriptions), the protected resource metadata (when the hub has a resource identifier),
 * `/healthz` (liveness), `/readyz` (readiness), any extra `routes` and a home page at `/`.
 * Express may mount it with `app.use("/.well-known/mercure", handler)`: the routes read
 * `originalUrl`, the path as the client sent it.
 */
export function createHandler(
  options: HandlerOptions,
): (req: NodeRequest, res: NodeResponse) => void {
  const ctx = resolveContext(options);
  return (req, res) => {
    const ex = new NodeExchange(req, res);
    // Mounted by Express under another path, the handler would see paths it does not serve and
    // answer 404 to everything: say where it belongs instead.
    const { baseUrl } = req as { baseUrl?: unknown };
    if (typeof baseUrl === "string" && baseUrl !== "" && !MERCURE_PATH.startsWith(baseUrl)) {
      sendText(
        ex,
        404,
        `the Mercure handler is mounted at ${baseUrl}: mount it at ${MERCURE_PATH} or at the root`,
      );
      return;
    }
    serve(ctx, ex, (pathname) => {
      const extra = Object.hasOwn(ctx.routes, pathname) ? ctx.routes[pathname] : undefined;
      extra?.(req, res);
      return extra !== undefined;
    });
  };
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
  server.on("connect", answerConnect);
  server.keepAliveTimeout = limits.idleTimeout;
  return server;
}
