/**
 * `GET /.well-known/mercure?topic=…`: the subscription endpoint. Selectors are repeatable and
 * may be mixed: `topic` (v0.x: `*`, a URI template, or an exact topic), `match` / `matchExact`
 * (draft-08: exact) and `match_urlpattern` / `matchURLPattern` (draft-08: a URL pattern,
 * relative ones resolved against the hub's URL); the
 * token (optional when anonymous subscribers are allowed) decides which private updates reach the
 * subscriber; a resume point comes from `Last-Event-ID`, or the `lastEventID` / `last_event_id`
 * query parameters when the client cannot set headers (the header wins).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { lastEventIdHeader, subscribeNode } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";
import { compileSelector, type Selector, type SelectorInput } from "../../selectors/selector.ts";
import { payloadFor } from "../tokens/verify.ts";
import { reportRefused } from "./channels.ts";
import type { HttpContext } from "./context.ts";
import { hubUrlOf } from "./origin.ts";
import { sendError } from "./respond.ts";
import { verifyRequest } from "./token.ts";

export async function handleSubscribe(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    const topics = readSelectors(req, url);
    if (topics.length === 0) {
      throw new CrierError("CRIER_ERR_BAD_REQUEST", "at least one topic parameter is required");
    }
    if (topics.length > ctx.maxTopics) {
      throw new CrierError(
        "CRIER_ERR_BAD_REQUEST",
        `at most ${ctx.maxTopics} topics per subscription`,
      );
    }
    if (topics.includes(""))
      throw new CrierError("CRIER_ERR_BAD_REQUEST", "a topic parameter is empty");
    // Compile now: an invalid or too costly selector is a 400 before the token is checked.
    const selectors = topics.map(compileSelector);
    admit(ctx);
    const claims = (await verifyRequest(ctx, req, url, "subscriber"))?.claims;
    if (claims === undefined && !ctx.anonymous) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a subscriber token is required");
    }
    if (res.destroyed) return;
    admit(ctx);
    const lastEventId =
      lastEventIdHeader(req) ??
      url.searchParams.get("lastEventID") ??
      url.searchParams.get("last_event_id") ??
      undefined;
    const subscription = subscribeNode(ctx.hub, req, res, {
      topics: selectors,
      authorized: claims?.subscribe ?? [],
      // [spec, draft-08] When the subscriber presented an access token, the hub MUST close the
      // connection no later than the token's `exp` time.
      expiresAt: claims?.exp === undefined ? undefined : claims.exp * 1000,
      lastEventId,
      headers: cors,
      // The standalone hub owns its connections: free node:http's objects of idle subscribers.
      detach: true,
    });
    // The selectors as given, so that subscription events name each by the revision of its
    // parameter: `topic` (v0.x) or `match…` (draft-08).
    ctx.subscriptions?.add(
      subscription,
      topics,
      claims === undefined ? undefined : payloadFor(claims, (selectors[0] as Selector).source),
    );
  } catch (err) {
    reportRefused("subscribe", req, err);
    sendError(res, err, cors);
  }
}

// [spec, draft-08] Hubs MAY also limit the number of concurrent subscriptions […] and MAY reject
// further subscription attempts with a 429 "Too Many Requests" status code once the limit is
// reached. Checked before the token (no work for a request that cannot be served) and again just
// before registering, so concurrent requests cannot overshoot the cap.
function admit(ctx: HttpContext): void {
  if (ctx.hub.stats.subscribers >= ctx.maxSubscribers) {
    throw new CrierError(
      "CRIER_ERR_TOO_MANY",
      `the hub serves its maximum of ${ctx.maxSubscribers} subscriptions; retry later`,
    );
  }
}

const KINDS: Readonly<Record<string, (value: string, base: string) => SelectorInput>> = {
  topic: (value) => value,
  match: (exact) => ({ exact }),
  matchExact: (exact) => ({ exact }),
  match_urlpattern: (urlpattern, base) => ({ urlpattern, base }),
  matchURLPattern: (urlpattern, base) => ({ urlpattern, base }),
};

// [spec, draft-08] A request using a parameter name in the reserved `match` namespace […] that
// does not correspond to a matcher type […] MUST be rejected with a 400 "Bad Request".
function readSelectors(req: IncomingMessage, url: URL): SelectorInput[] {
  const base = hubUrlOf(req, url.pathname);
  const selectors: SelectorInput[] = [];
  for (const [name, value] of url.searchParams) {
    const kind = KINDS[name];
    if (kind !== undefined) {
      selectors.push(value === "" ? "" : kind(value, base));
    } else if (name.toLowerCase().startsWith("match")) {
      throw new CrierError("CRIER_ERR_BAD_REQUEST", `unknown topic matcher parameter "${name}"`);
    }
  }
  return selectors;
}
