/**
 * `GET /.well-known/mercure?topic=…`: the subscription endpoint. Selectors are repeatable and
 * may be mixed: `topic` (v0.x: `*`, a URI template, or an exact topic), `match` / `match_exact`
 * (draft-08: exact) and `match_urlpattern` (draft-08: a URL pattern, relative ones resolved
 * against the hub's URL); any other name in the `match` namespace is a 400; the
 * token (optional when anonymous subscribers are allowed) decides which private updates reach the
 * subscriber; a resume point comes from `Last-Event-ID`, or the `lastEventID` / `last_event_id`
 * query parameters when the client cannot set headers (the header wins).
 */
import { CrierError } from "../../errors.ts";
import { lastEventIdOf } from "../../head.ts";
import { compileSelector, type SelectorInput } from "../../selectors/selector.ts";
import { hasForbiddenCharacter } from "../publication.ts";
import { payloadFor } from "../tokens/verify.ts";
import { reportRefused } from "./channels.ts";
import type { HttpContext } from "./context.ts";
import type { Exchange } from "./exchange.ts";
import { parseFormStrict } from "./form.ts";
import { hubUrlOf } from "./origin.ts";
import { sendStreamError, sendText } from "./respond.ts";
import { verifyRequest } from "./token.ts";

export async function handleSubscribe(
  ctx: HttpContext,
  ex: Exchange,
  url: URL,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    const topics = readSelectors(ex, url, ctx.publicOrigin);
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
    ctx.admission.check(ex, true);
    const claims = (await verifyRequest(ctx, ex, url, "subscriber"))?.claims;
    if (claims === undefined && !ctx.anonymous) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a subscriber token is required");
    }
    if (ex.gone) {
      // Nobody reads this answer, but a Fetch caller waits for one (node:http drops it).
      sendText(ex, 499, "the client closed the request");
      return;
    }
    ctx.admission.check(ex, false);
    const lastEventId =
      lastEventIdOf(ex.headers) ??
      url.searchParams.get("lastEventID") ??
      url.searchParams.get("last_event_id") ??
      undefined;
    const subscription = ex.stream(ctx.hub, {
      topics: selectors,
      authorized: claims?.subscribe ?? [],
      ...endsOf(ctx, claims?.exp),
      lastEventId,
      headers: exposingResumeHeaders(cors),
      // The standalone hub owns its connections: free node:http's objects of idle subscribers.
      detach: true,
    });
    ctx.admission.admitted(ex, subscription);
    // The selectors as given, so that subscription events name each by the revision of its
    // parameter: `topic` (v0.x) or `match…` (draft-08).
    // [spec, draft-08] The `payload` of the first `subscribe` authorization detail whose
    // `topics` matches the subscription's own matcher […] MUST be included under the `payload`
    // key of the JSON object describing the subscription.
    ctx.subscriptions?.add(
      subscription,
      topics,
      selectors.map((selector) =>
        claims === undefined ? undefined : payloadFor(claims, selector.source),
      ),
    );
  } catch (err) {
    reportRefused("subscribe", ex, err);
    // A 503 sends an EventSource back with a retry hint: it would give up on the 503.
    sendStreamError(ex, err, cors, ctx.hub.closeRetryMs, ctx.metadata?.url);
  }
}

// The stream's `Last-Event-ID` / `Mercure-Last-Event-ID` (`earliest`: updates may have been
// missed) are the only way a client learns where its resume started; a browser script on another
// origin reads them only when they are exposed.
function exposingResumeHeaders(
  cors: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  if (cors["Access-Control-Allow-Origin"] === undefined) return cors;
  return { ...cors, "Access-Control-Expose-Headers": "Last-Event-ID, Mercure-Last-Event-ID" };
}

// [spec, draft-08] the bare `match` parameter selects the default `exact` matcher type, and a
// `match_<matcher-type>` parameter selects the named matcher type […] `match_exact` is the
// explicit spelling of the default. `topic` is the v0.x parameter.
const KINDS: Readonly<Record<string, (value: string, base: string) => SelectorInput>> = {
  topic: (value) => value,
  match: (exact) => ({ exact }),
  match_exact: (exact) => ({ exact }),
  match_urlpattern: (urlpattern, base) => ({ urlpattern, base }),
};

function readSelectors(ex: Exchange, url: URL, publicOrigin?: string): SelectorInput[] {
  const base = hubUrlOf(ex, url.pathname, publicOrigin);
  const selectors: SelectorInput[] = [];
  // A selector given twice (`match=a&match_exact=a`) is one subscription: announced once, listed
  // once, with one id.
  const seen = new Set<string>();
  // [spec, draft-08] matcher values are UTF-8: read the query strictly, where `searchParams`
  // would turn bytes that are not UTF-8 into U+FFFD and match something else than was asked.
  const query = parseFormStrict(Buffer.from(url.search.slice(1), "latin1"), "a query parameter");
  for (const [name, value] of query) {
    // Own keys only: a parameter named `valueOf` or `constructor` is not a matcher type.
    const kind = Object.hasOwn(KINDS, name) ? KINDS[name] : undefined;
    // [spec, draft-08] A request using a parameter name in the reserved `match` namespace (a
    // name equal to `match`, or beginning with `match` under an ASCII case-insensitive
    // comparison) that does not correspond to a matcher type supported by the hub […] MUST be
    // rejected with a 400 "Bad Request" HTTP status code.
    if (kind === undefined) {
      if (name.toLowerCase().startsWith("match")) {
        throw new CrierError("CRIER_ERR_BAD_REQUEST", `unknown topic matcher parameter "${name}"`);
      }
      continue;
    }
    // [spec, draft-08] The value of each topic matcher query parameter […] MUST NOT contain C0
    // […] or C1 […] control characters, U+007F, or Unicode format characters […] Requests
    // violating any of these constraints MUST be rejected with a 400 "Bad Request".
    if (name !== "topic" && hasForbiddenCharacter(value)) {
      throw new CrierError(
        "CRIER_ERR_BAD_REQUEST",
        `the value of "${name}" must not contain control or format characters`,
      );
    }
    // `match` is `match_exact` spelled short.
    const key = `${name === "match" ? "match_exact" : name} ${value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    selectors.push(value === "" ? "" : kind(value, base));
  }
  return selectors;
}

// When a stream must end: at its token's `exp` (a timer, to the millisecond), and at the end of
// its lifetime (checked at each keep-alive: no timer per subscriber; a timer only when
// keep-alives are off).
function endsOf(
  ctx: HttpContext,
  exp: number | undefined,
): { expiresAt?: number | undefined; endsAt?: number | undefined } {
  // [spec, draft-08] When the subscriber presented an access token, the hub MUST close the
  // connection no later than the token's `exp` time.
  const expiresAt = exp === undefined ? undefined : exp * 1000;
  const lifetimeMs = ctx.maxConnectionLifetimeMs;
  if (lifetimeMs === 0) return { expiresAt };
  // [spec, draft-08] hubs SHOULD also impose a maximum connection lifetime independent of `exp`.
  // Jittered down to 90 %, so that the streams of a reconnect storm do not end together again.
  const endsAt = Date.now() + lifetimeMs * (0.9 + Math.random() * 0.1);
  if (ctx.hub.keepAliveMs > 0) return { expiresAt, endsAt };
  return { expiresAt: expiresAt === undefined ? endsAt : Math.min(expiresAt, endsAt) };
}
