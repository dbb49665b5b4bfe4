/**
 * The dashboard's routes, when the handler has one (`dashboard` option, `--dashboard`):
 *
 *   GET /                 the page (static; it holds no figures, so it needs no token)
 *   GET /dashboard.json   the figures: one JSON snapshot, or with `Accept: text/event-stream`
 *                         one snapshot a second as an event stream
 *
 * The figures name topics, so they need a token with the `admin` right (`mercure.admin: true`,
 * or a Mercure authorization detail with the `admin` action), verified with the publisher key;
 * without one: 401, with one that lacks the right: 403. Dev mode serves them to anyone. The
 * event stream ends at the token's `exp` and at the connection lifetime, as a subscription does.
 */
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { isHttp2Response, type NodeResponse } from "../../adapters/node.ts";
import { encodeEvent } from "../../encoder.ts";
import { CrierError } from "../../errors.ts";
import { armExpiry, type Expiring } from "../../lifetime.ts";
import type { Dashboard, DashboardSnapshot } from "../../ops/dashboard.ts";
import { DASHBOARD_PAGE, DASHBOARD_PAGE_HEADERS } from "../../ops/dashboard-page.ts";
import { reportRefused } from "./channels.ts";
import type { HttpContext } from "./context.ts";
import type { Exchange } from "./exchange.ts";
import { NodeExchange } from "./node-exchange.ts";
import { acceptsEventStream, sendStreamError, sendText } from "./respond.ts";
import { verifyRequest } from "./token.ts";

/** Where the dashboard's figures are served. */
export const DASHBOARD_JSON_PATH = "/dashboard.json";

/** Answers a dashboard route and returns true; false when the request is for another route. */
export function handleDashboard(ctx: HttpContext, ex: Exchange, url: URL): boolean {
  const { dashboard } = ctx;
  if (dashboard === undefined) return false;
  const read = ex.method === "GET" || ex.method === "HEAD";
  if (url.pathname === "/" && read) {
    ex.reply(200, DASHBOARD_PAGE_HEADERS, DASHBOARD_PAGE);
    return true;
  }
  if (url.pathname !== DASHBOARD_JSON_PATH) return false;
  if (ex.method !== "GET") {
    sendText(ex, 405, "use GET to read the dashboard's figures", { Allow: "GET" });
    return true;
  }
  void sendFigures(ctx, dashboard, ex, url);
  return true;
}

async function sendFigures(
  ctx: HttpContext,
  dashboard: Dashboard,
  ex: Exchange,
  url: URL,
): Promise<void> {
  try {
    const exp = dashboard.open ? undefined : await authorize(ctx, ex, url);
    if (ex.gone) {
      // Nobody reads this answer, but a Fetch caller waits for one (node:http drops it).
      sendText(ex, 499, "the client closed the request");
      return;
    }
    // The figures' event stream is written straight to node's response; a Fetch handler
    // answers the snapshot, which the page polls instead.
    if (acceptsEventStream(ex) && ex instanceof NodeExchange) {
      // A stream opened now would outlive the figures (they stop with the hub) and hold the
      // drain to its end: the page is sent back to retry, as a subscriber is.
      if (ctx.hub.closing) {
        throw new CrierError("CRIER_ERR_HUB_CLOSED", "the hub is shutting down; retry later");
      }
      // Like a subscription: ended at the token's `exp`, and at the connection lifetime.
      const lifetimeMs = ctx.maxConnectionLifetimeMs;
      const ends = [exp === undefined ? Infinity : exp * 1000];
      if (lifetimeMs > 0) ends.push(Date.now() + lifetimeMs);
      streamFigures(dashboard, ex.res, Math.min(...ends));
    } else {
      const body = JSON.stringify(dashboard.snapshot());
      ex.reply(
        200,
        {
          "Content-Type": "application/json",
          "Content-Length": String(Buffer.byteLength(body)),
          "Cache-Control": "no-store",
          "X-Content-Type-Options": "nosniff",
        },
        body,
      );
    }
  } catch (err) {
    reportRefused("dashboard", ex, err);
    sendStreamError(ex, err, {}, ctx.hub.closeRetryMs, ctx.metadata?.url);
  }
}

/** Refuses a request without an admin token; returns the token's `exp`, if it has one. */
async function authorize(ctx: HttpContext, ex: Exchange, url: URL): Promise<number | undefined> {
  const verified = await verifyRequest(ctx, ex, url, "publisher");
  if (verified === undefined) {
    throw new CrierError(
      "CRIER_ERR_UNAUTHORIZED",
      "the dashboard needs a token with the admin right (crier token --admin)",
    );
  }
  if (!verified.claims.admin) {
    throw new CrierError(
      "CRIER_ERR_FORBIDDEN",
      "this token lacks the admin right (mercure.admin: true, or the admin action)",
    );
  }
  return verified.claims.exp;
}

// One snapshot now and one a second after it, until `endsAt` (ms since the epoch; Infinity:
// never). A dashboard that reads slower than that misses snapshots instead of queueing them:
// each one replaces the last, so at most one is buffered.
function streamFigures(dashboard: Dashboard, res: NodeResponse, endsAt: number): void {
  res.writeHead(200, {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
    "X-Content-Type-Options": "nosniff",
  });
  // node:http and node:http2 responses write alike; their overloads only differ in callbacks.
  const write = (chunk: Buffer): boolean => (res as { write(chunk: Buffer): boolean }).write(chunk);
  let backedUp = !write(frameOf(dashboard.snapshot()));
  res.on("drain", () => {
    backedUp = false;
  });
  const stop = dashboard.watch((snapshot) => {
    if (!backedUp) backedUp = !write(frameOf(snapshot));
    // The hub is closing: the stream ends with it, and on HTTP/1.1 its connection too (it
    // would otherwise sit idle, kept alive, until the drain's deadline).
    if (snapshot.closing) {
      if (!isHttp2Response(res)) endConnectionAfter(res);
      end();
    }
  });
  // Ended at `endsAt` by the one unref'd timer a subscription with a token gets (lifetime.ts).
  const expiring: Expiring = { expiry: undefined, close: () => end() };
  if (Number.isFinite(endsAt)) armExpiry(expiring, endsAt);
  const release = (): void => {
    stop();
    clearTimeout(expiring.expiry);
  };
  const end = (): void => {
    release();
    res.end();
  };
  res.on("close", release);
}

// The frame of the last snapshot: every open stream is sent the same one, encoded once.
let lastSnapshot: DashboardSnapshot | undefined;
let lastFrame: Buffer | undefined;
function frameOf(snapshot: DashboardSnapshot): Buffer {
  if (snapshot !== lastSnapshot || lastFrame === undefined) {
    lastFrame = encodeEvent({ data: JSON.stringify(snapshot) });
    lastSnapshot = snapshot;
  }
  return lastFrame;
}

// Ends the connection once `res` has finished. node:http has detached it from the socket by
// then, and given the socket to the response of a pipelined request if there is one: that one
// is left to finish.
function endConnectionAfter(res: ServerResponse): void {
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  if (socket === null) return;
  res.once("finish", () => {
    if (socket._httpMessage == null) socket.end();
  });
}
