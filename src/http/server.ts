/**
 * The standalone hub over node:http: routing, and the shutdown that stops accepting, tells
 * subscribers to come back, and ends within a bound.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Authenticator, type KeySource } from "../auth.ts";
import type { Hub } from "../hub.ts";
import { SUBSCRIPTIONS_PATH } from "../subscriptions.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { sendHomePage } from "./home.ts";
import { handlePublish } from "./publish.ts";
import { sendText } from "./respond.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleSubscriptions } from "./subscriptions.ts";

/** The Mercure endpoint. */
export const MERCURE_PATH = "/.well-known/mercure";

/** Options of {@link createHandler}. */
export interface HandlerOptions {
  /** The hub that serves the requests. */
  readonly hub: Hub;
  /** Key for publishers' JWTs (HMAC secret or PEM public key). Without it, publishing is refused. */
  readonly publisherKey?: KeySource | undefined;
  /** Key for subscribers' JWTs. Without it, subscriber tokens are refused. */
  readonly subscriberKey?: KeySource | undefined;
  /** Allow subscribers without a token (they never receive private updates). Default false. */
  readonly anonymous?: boolean | undefined;
  /** Largest publish body, in bytes. Default 1 MiB. */
  readonly maxBodyBytes?: number | undefined;
  /** Most topics in one publish or one subscription. Default 100. */
  readonly maxTopics?: number | undefined;
  /** Origins allowed to call the hub from a browser (`*`: any, without credentials). Default none. */
  readonly corsOrigins?: readonly string[] | undefined;
}

/** What every route needs, resolved once. */
export interface HttpContext {
  readonly hub: Hub;
  readonly auth: Authenticator;
  readonly anonymous: boolean;
  readonly maxBodyBytes: number;
  readonly maxTopics: number;
  readonly corsOrigins: readonly string[];
}

/**
 * A request listener serving the Mercure endpoint, the subscriptions API (when the hub tracks
 * subscriptions), `/healthz` and a home page at `/`.
 */
export function createHandler(
  options: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const ctx: HttpContext = {
    hub: options.hub,
    auth: new Authenticator({
      publisherKey: options.publisherKey,
      subscriberKey: options.subscriberKey,
    }),
    anonymous: options.anonymous ?? false,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    maxTopics: options.maxTopics ?? 100,
    corsOrigins: options.corsOrigins ?? [],
  };
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://hub.invalid");
    const cors = corsHeaders(req, ctx.corsOrigins);
    if (url.pathname === MERCURE_PATH) {
      if (req.method === "GET") void handleSubscribe(ctx, req, res, url, cors);
      else if (req.method === "POST") void handlePublish(ctx, req, res, cors);
      else if (req.method === "OPTIONS") preflight(req, res, ctx.corsOrigins);
      else
        sendText(res, 405, "use GET to subscribe or POST to publish", {
          ...cors,
          Allow: "GET, POST, OPTIONS",
        });
      return;
    }
    if (ctx.hub.subscriptionsEnabled && url.pathname.startsWith(SUBSCRIPTIONS_PATH)) {
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
  };
}

/** A node:http server for the hub. */
export function createHubServer(options: HandlerOptions): Server {
  return createServer(createHandler(options));
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
