/**
 * `GET /.well-known/mercure/subscriptions[/…]`: the Mercure subscriptions web API, served only
 * when the hub tracks active subscriptions (else 404). Answers JSON-LD documents of this node's
 * subscriptions; terminated ones are omitted (the spec allows either).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CrierError } from "../../errors.ts";
import { coversAny } from "../../selectors/selector.ts";
import { MERCURE_PATH } from "../paths.ts";
import {
  JSONLD_CONTEXT,
  parseSubscriptionsPath,
  type SubscriptionsQuery,
  subscriptionDocument,
} from "../subscriptions.ts";
import { reportRefused } from "./channels.ts";
import type { HttpContext } from "./context.ts";
import { sendError, sendText } from "./respond.ts";
import { verifyRequest } from "./token.ts";

export async function handleSubscriptions(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    const query = parseSubscriptionsPath(url.pathname);
    if (query === undefined) {
      sendText(res, 404, "not found", cors);
      return;
    }
    if (req.method !== "GET") {
      sendText(res, 405, "use GET to read subscriptions", { ...cors, Allow: "GET" });
      return;
    }
    // [spec] To access to the URLs exposed by the web API, clients MUST be authorized according
    // to the rules defined in (#authorization). The requested URL MUST match at least one of the
    // topic selectors provided in the `mercure.subscribe` key of the JWS.
    const claims = (await verifyRequest(ctx, req, url, "subscriber"))?.claims;
    if (claims === undefined) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a subscriber token is required");
    }
    if (!coversAny(claims.subscribe, [query.path])) {
      throw new CrierError(
        "CRIER_ERR_FORBIDDEN",
        `the token's mercure.subscribe claim does not cover ${query.path}`,
      );
    }
    // [spec] `lastEventID`: the identifier of the last event dispatched by the hub at the time of
    // this request. The value MUST be `earliest` if no events have been dispatched yet.
    const lastEventID = (await ctx.hub.lastEventId()) ?? "earliest";
    if (res.destroyed) return;
    const body = documentFor(ctx, query, lastEventID);
    if (body === undefined) {
      // [spec] If the requested subscription does not exist, a `404` status code MUST be returned.
      sendText(res, 404, "no such subscription", cors);
      return;
    }
    sendJsonLd(res, body, lastEventID, cors);
  } catch (err) {
    reportRefused("subscriptions", req, err);
    sendError(res, err, cors);
  }
}

function documentFor(
  ctx: HttpContext,
  query: SubscriptionsQuery,
  lastEventID: string,
): Record<string, unknown> | undefined {
  const all = ctx.subscriptions?.list() ?? [];
  if (query.kind !== "all") {
    // [spec] URLs returning a single subscription … MUST expose the same JSON-LD document as
    // described in (#subscription-events).
    const one =
      query.kind === "one" || query.maybeOne ? all.find((s) => s.id === query.path) : undefined;
    if (one !== undefined) {
      return { "@context": JSONLD_CONTEXT, ...subscriptionDocument(one, true), lastEventID };
    }
    if (query.kind === "one") return undefined;
  }
  const members = query.kind === "all" ? all : all.filter((s) => s.collection === query.path);
  // [spec] Collection endpoints MUST return JSON-LD documents containing at least `@context`,
  // `id` (the URL used to retrieve the document), `type` (`Subscriptions`), `subscriptions`.
  return {
    "@context": JSONLD_CONTEXT,
    id: query.path,
    type: "Subscriptions",
    lastEventID,
    subscriptions: members.map((s) => subscriptionDocument(s, true)),
  };
}

// [spec] The web API MUST set the `Content-Type` HTTP header to `application/ld+json`.
function sendJsonLd(
  res: ServerResponse,
  body: Record<string, unknown>,
  lastEventID: string,
  headers: Readonly<Record<string, string>>,
): void {
  const json = JSON.stringify(body);
  res.writeHead(200, {
    ...headers,
    "Content-Type": "application/ld+json",
    "Content-Length": Buffer.byteLength(json),
    // The list changes with every connection: clients revalidate, against the last event id.
    "Cache-Control": "private, must-revalidate",
    ETag: JSON.stringify(lastEventID),
    Link: `<${MERCURE_PATH}>; rel="mercure"`,
    "X-Content-Type-Options": "nosniff",
  });
  res.end(json);
}
