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
import { tokenOf } from "../auth.ts";
import { CrierError } from "../errors.ts";
import { compileSelector, type SelectorInput } from "../selectors.ts";
import { sendError } from "./respond.ts";
import type { HttpContext } from "./server.ts";

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
    for (const topic of topics) compileSelector(topic);
    const token = tokenOf(req);
    let authorized: readonly string[] = [];
    let payload: unknown;
    if (token !== undefined) {
      ({ subscribe: authorized, payload } = await ctx.auth.verify(token, "subscriber"));
    } else if (!ctx.anonymous) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a subscriber token is required");
    }
    if (res.destroyed) return;
    const header = req.headers["last-event-id"];
    const lastEventId =
      (typeof header === "string" && header !== "" ? header : undefined) ??
      url.searchParams.get("lastEventID") ??
      url.searchParams.get("last_event_id") ??
      undefined;
    // The selectors as given (compiled again from the cache), so that subscription events name
    // each by the revision of its parameter: `topic` (v0.x) or `match…` (draft-08).
    ctx.hub.subscribe(req, res, { topics, authorized, lastEventId, headers: cors, payload });
  } catch (err) {
    sendError(res, err, cors);
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
  const base = `${"encrypted" in req.socket ? "https" : "http"}://${req.headers.host ?? "localhost"}${url.pathname}`;
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
