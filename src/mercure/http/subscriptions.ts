/**
 * `GET /.well-known/mercure/subscriptions[/…]`: the Mercure subscriptions web API, served only
 * when the hub tracks active subscriptions (else 404). Answers the documents of the subscriptions
 * held on every node sharing the hub's backplane (a stopped node's are forgotten within three
 * keep-alive intervals); terminated ones are omitted (the spec allows either). Each answer has its
 * revision's shape:
 *
 * - v0.x (a `topic` path, or the whole collection asked with a v0.x token): JSON-LD,
 *   `application/ld+json`, `lastEventID` in the body;
 * - draft-08 (a `{match_type}/{match}` path, or the whole collection asked with an access
 *   token): JSON, `application/json`, the cursor as the `last-event-id` of the `rel="mercure"`
 *   Link header.
 *
 * A collection lists every member in its own revision's shape.
 */
import { createHash } from "node:crypto";
import { CrierError } from "../../errors.ts";
import { coversAny } from "../../selectors/selector.ts";
import { discoveryLink } from "../discovery.ts";
import { MERCURE_PATH } from "../paths.ts";
import {
  JSONLD_CONTEXT,
  parseSubscriptionsPath,
  type SubscriptionsQuery,
  subscriptionDocument,
} from "../subscriptions.ts";
import type { TokenRevision } from "../tokens/verify.ts";
import { reportRefused } from "./channels.ts";
import type { HttpContext } from "./context.ts";
import type { Exchange, ReplyHeaders } from "./exchange.ts";
import { sendError, sendText } from "./respond.ts";
import { verifyRequest } from "./token.ts";

export async function handleSubscriptions(
  ctx: HttpContext,
  ex: Exchange,
  url: URL,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    const query = parseSubscriptionsPath(url.pathname);
    if (query === undefined) {
      sendText(ex, 404, "not found", cors);
      return;
    }
    if (ex.method !== "GET" && ex.method !== "HEAD") {
      sendText(ex, 405, "use GET to read subscriptions", {
        ...cors,
        Allow: "GET, HEAD, OPTIONS",
      });
      return;
    }
    // [spec] To access to the URLs exposed by the web API, clients MUST be authorized according
    // to the rules defined in (#authorization). The requested URL MUST match at least one of the
    // topic selectors provided in the `mercure.subscribe` key of the JWS.
    const claims = (await verifyRequest(ctx, ex, url, "subscriber"))?.claims;
    if (claims === undefined) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a subscriber token is required");
    }
    if (!coversAny(claims.subscribe, [query.path])) {
      throw new CrierError(
        "CRIER_ERR_FORBIDDEN",
        `the token does not grant subscribe on ${query.path}`,
      );
    }
    // [spec] `lastEventID`: the identifier of the last event dispatched by the hub at the time of
    // this request. The value MUST be `earliest` if no events have been dispatched yet.
    const lastEventID = (await ctx.hub.lastEventId()) ?? "earliest";
    if (ex.gone) {
      // Nobody reads this answer, but a Fetch caller waits for one (node:http drops it).
      sendText(ex, 499, "the client closed the request");
      return;
    }
    const found = await documentFor(ctx, query, claims.revision);
    if (found === undefined) {
      // [spec] If the requested subscription does not exist, a `404` status code MUST be returned.
      sendText(ex, 404, "no such subscription", cors);
      return;
    }
    if (found.revision === "v0") {
      // [spec, v0.x] all endpoints MUST set the `lastEventID` property at the root of the
      // returned JSON-LD document
      sendJson(ex, "application/ld+json", { ...found.body, lastEventID }, lastEventID, cors);
    } else {
      sendJson(ex, "application/json", found.body, lastEventID, cors, true);
    }
  } catch (err) {
    reportRefused("subscriptions", ex, err);
    sendError(ex, err, cors, ctx.metadata?.url);
  }
}

/** A document to answer, and the revision whose shape it has. */
interface Found {
  readonly revision: TokenRevision;
  readonly body: Record<string, unknown>;
}

async function documentFor(
  ctx: HttpContext,
  query: SubscriptionsQuery,
  tokenRevision: TokenRevision,
): Promise<Found | undefined> {
  const all = (await ctx.subscriptions?.listAll()) ?? [];
  if (query.kind !== "all") {
    // [spec] URLs returning a single subscription … MUST expose the same document as described
    // in (#subscription-events).
    const one =
      query.kind === "one" || query.maybeOne ? all.find((s) => s.id === query.path) : undefined;
    if (one !== undefined) {
      const doc = subscriptionDocument(one, true);
      return one.matchType === undefined
        ? { revision: "v0", body: { "@context": JSONLD_CONTEXT, ...doc } }
        : { revision: "draft-08", body: doc };
    }
    if (query.kind === "one") return undefined;
  }
  const members = query.kind === "all" ? all : all.filter((s) => s.collection === query.path);
  const revision: TokenRevision =
    query.kind === "all" ? tokenRevision : query.maybeOne ? "draft-08" : "v0";
  const subscriptions = members.map((s) => subscriptionDocument(s, true));
  // [spec, v0.x] Collection endpoints MUST return JSON-LD documents containing at least
  // `@context`, `id` (the URL used to retrieve the document), `type` (`Subscriptions`),
  // `subscriptions`.
  // [spec, draft-08] Collection endpoints MUST return JSON documents containing at least […]
  // `id`: the URL used to retrieve the document. `type`: the fixed value `subscriptions`.
  // `subscriptions`: an array of subscription documents.
  return revision === "v0"
    ? {
        revision,
        body: { "@context": JSONLD_CONTEXT, id: query.path, type: "Subscriptions", subscriptions },
      }
    : { revision, body: { id: query.path, type: "subscriptions", subscriptions } };
}

// [spec, v0.x] The web API MUST set the `Content-Type` HTTP header to `application/ld+json`.
// [spec, draft-08] The web API MUST set the `Content-Type` HTTP header to `application/json`.
// When the hub serves cross-origin subscribers, it MUST expose the `Link` response header to
// them […] every endpoint MUST carry the reconciliation cursor as a `last-event-id` target
// attribute on the `rel="mercure"` Link header […] the hub SHOULD also set the `type` and
// `content-type` attributes on the same `rel="mercure"` Link header, with the values `mercure`
// and `application/json` respectively.
function sendJson(
  ex: Exchange,
  contentType: string,
  body: Record<string, unknown>,
  lastEventID: string,
  headers: ReplyHeaders,
  cursorInLink = false,
): void {
  const json = JSON.stringify(body);
  const link = cursorInLink
    ? `${discoveryLink(MERCURE_PATH, { lastEventId: lastEventID, contentType: "application/json" })}; type="mercure"`
    : `<${MERCURE_PATH}>; rel="mercure"`;
  const extra: Record<string, string> = {};
  if (cursorInLink && headers["Access-Control-Allow-Origin"] !== undefined) {
    extra["Access-Control-Expose-Headers"] = "Link";
  }
  ex.reply(
    200,
    {
      ...headers,
      ...extra,
      "Content-Type": contentType,
      "Content-Length": String(Buffer.byteLength(json)),
      // The list changes with every connection: clients revalidate, against the last event id.
      "Cache-Control": "private, must-revalidate",
      ETag: entityTag(lastEventID),
      Link: latin1(link),
      "X-Content-Type-Options": "nosniff",
    },
    json,
  );
}

/**
 * The last event id as an entity-tag: quoted, and opaque. Header values are bytes, so an id with
 * non-ASCII characters travels as its UTF-8 bytes; an id with a character an entity-tag cannot
 * hold (`"`, a space, a control character) is represented by its digest.
 */
function entityTag(id: string): string {
  const bytes = latin1(id);
  if (/^[\x21\x23-\x7e\x80-\xff]*$/.test(bytes)) return `"${bytes}"`;
  return `"${createHash("sha256").update(id).digest("base64url")}"`;
}

function latin1(value: string): string {
  return Buffer.from(value, "utf8").toString("latin1");
}
