/**
 * The standalone hub over node:http: routing, and the shutdown that stops accepting, tells
 * subscribers to come back, and ends within a bound.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { JSONWebKeySet } from "jose";
import type { Hub } from "../../hub.ts";
import { SUBSCRIPTIONS_PATH } from "../subscriptions.ts";
import { Authenticator, type KeySource } from "../tokens/verify.ts";
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
  /**
   * Public keys (a JWK Set) for the tokens of any role without its own key; a token picks its
   * key by `kid`. Default none.
   */
  readonly jwks?: JSONWebKeySet | undefined;
  /** Trusted issuer of `at+jwt` access tokens (`iss`). Default: not checked (self-issued tokens). */
  readonly jwtIssuer?: string | undefined;
  /**
   * The hub's resource identifier, required in the `aud` of `at+jwt` access tokens. Without it,
   * access tokens are refused; v0.x tokens (the `mercure` claim) are accepted either way.
   */
  readonly jwtAudience?: string | undefined;
  /**
   * Accept the token in the `authorization` (v0.x) or `access_token` query parameter. URLs end
   * up in logs and browser history, so it is off by default: such a request is answered 400.
   */
  readonly authorizationQuery?: boolean | undefined;
  /** Most concurrent subscriptions; past it a subscribe is answered 429 with Retry-After. Default 100,000. */
  readonly maxSubscribers?: number | undefined;
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
  readonly authorizationQuery: boolean;
  readonly maxSubscribers: number;
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
      jwks: options.jwks,
      issuer: options.jwtIssuer,
      audience: options.jwtAudience,
    }),
    anonymous: options.anonymous ?? false,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    maxTopics: options.maxTopics ?? 100,
    corsOrigins: options.corsOrigins ?? [],
    authorizationQuery: options.authorizationQuery ?? false,
    maxSubscribers: options.maxSubscribers ?? 100_000,
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
