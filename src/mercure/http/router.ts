/**
 * The routes of the hub, whatever the transport: the Mercure endpoint, the subscriptions API,
 * the protected resource metadata, `/healthz`, `/readyz`, extra routes and the home page. The
 * node:http listener (`server.ts`) and the Fetch handler (`fetch-handler.ts`) each wrap a
 * request in an {@link Exchange} and call {@link serve}.
 */
import { CrierError } from "../../errors.ts";
import { MERCURE_PATH, SUBSCRIPTIONS_PATH } from "../paths.ts";
import type { HttpContext } from "./context.ts";
import { corsHeaders, preflight } from "./cors.ts";
import { handleDashboard } from "./dashboard.ts";
import type { Exchange } from "./exchange.ts";
import { sendHomePage } from "./home.ts";
import { sendMetadata } from "./metadata.ts";
import { handlePublish } from "./publish.ts";
import { RETRY_AFTER_SECONDS, sendError, sendText } from "./respond.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleSubscriptions } from "./subscriptions.ts";
import { requestUrl } from "./target.ts";

/**
 * Answers `ex`, whatever happens: a throw would reach node:http's 'request' emitter and end the
 * process, or leave a Fetch caller waiting forever. An unexpected error is reported on the hub.
 */
export function serve(ctx: HttpContext, ex: Exchange, extra?: (pathname: string) => boolean): void {
  // A draining hub answers (503 and Retry-After, a stream of only a `retry` hint, /readyz 503)
  // and closes the connection: the client's retry, a publisher's next publish and a load
  // balancer's next check each open a new connection, which can reach another node, instead of
  // coming back to this one on a kept-alive connection until it has closed.
  if (ctx.hub.closing) ex.lastOnConnection();
  try {
    route(ctx, ex, extra);
  } catch (err) {
    if (!(err instanceof CrierError) && ctx.hub.listenerCount("error") > 0) {
      ctx.hub.emit("error", err instanceof Error ? err : new Error(String(err)));
    }
    sendError(ex, err);
  }
}

/**
 * Answers `ex`. `extra` serves an extra route of the transport's own (node:http listeners), if
 * it has one for the path: it returns false to let the home page and the 404 answer. Throws
 * only the `CrierError` of a request target that does not parse; the handlers answer their own
 * failures.
 */
function route(
  ctx: HttpContext,
  ex: Exchange,
  extra: (pathname: string) => boolean = () => false,
): void {
  const url = requestUrl(ex);
  const cors = corsHeaders(ex.headers, ctx.corsOrigins);
  if (url.pathname === MERCURE_PATH) {
    if (ex.method === "GET") void handleSubscribe(ctx, ex, url, cors);
    else if (ex.method === "POST") void handlePublish(ctx, ex, url, cors);
    else if (ex.method === "OPTIONS") preflight(ex, ctx.corsOrigins);
    else
      sendText(ex, 405, "use GET to subscribe or POST to publish", {
        ...cors,
        Allow: "GET, POST, OPTIONS",
      });
    return;
  }
  if (ctx.subscriptions !== undefined && url.pathname.startsWith(SUBSCRIPTIONS_PATH)) {
    // A browser on another origin asks first before it sends a token in a header.
    if (ex.method === "OPTIONS") preflight(ex, ctx.corsOrigins, "GET, HEAD, OPTIONS");
    else void handleSubscriptions(ctx, ex, url, cors);
    return;
  }
  const read = ex.method === "GET" || ex.method === "HEAD";
  if (ctx.metadata !== undefined && url.pathname === ctx.metadata.path && ctx.audience) {
    if (read) {
      sendMetadata(
        ex,
        {
          audience: ctx.audience,
          issuer: ctx.issuer,
          subscriptions: ctx.subscriptions !== undefined,
        },
        cors,
      );
    } else {
      sendText(ex, 405, "use GET to read the metadata", { ...cors, Allow: "GET, HEAD" });
    }
    return;
  }
  // Liveness: the process answers. Readiness: it should be sent traffic (not draining, its
  // backplane answering).
  if (url.pathname === "/healthz" && read) {
    sendText(ex, 200, "ok");
    return;
  }
  if (url.pathname === "/readyz" && read) {
    if (ctx.ready()) sendText(ex, 200, "ready");
    else sendText(ex, 503, "not ready", { "Retry-After": String(RETRY_AFTER_SECONDS) });
    return;
  }
  if (handleDashboard(ctx, ex, url)) return;
  if (read && extra(url.pathname)) return;
  if (url.pathname === "/" && read) {
    sendHomePage(ex);
    return;
  }
  sendText(ex, 404, "not found");
}
