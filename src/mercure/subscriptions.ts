/**
 * Active subscriptions (Mercure): how each topic selector of a connected subscriber is named,
 * described, and found again from a URL. Pure: no I/O; `active.ts` keeps the registry and
 * publishes the events, `http/subscriptions.ts` serves the web API.
 *
 * One connection with N selectors is N subscriptions sharing one `{subscriber}` (the connection's
 * `urn:uuid:` id). Each is named, and described, after the revision of the parameter that
 * created it:
 *
 *   topic=S                    (v0.x)      /.well-known/mercure/subscriptions/{S}/{subscriber}
 *   match=S, match_exact=S     (draft-08)  /.well-known/mercure/subscriptions/exact/{S}/{subscriber}
 *   match_urlpattern=S         (draft-08)  /.well-known/mercure/subscriptions/urlpattern/{S}/{subscriber}
 *
 * v0.x documents are JSON-LD (`@context`, `type: "Subscription"`, `topic`); draft-08 documents
 * are JSON (`type: "subscription"`, `match_type`, `match`). That name is at once the topic of its
 * (private) subscription events, the `id` of its document, and the URL the API serves it at, so
 * one token grant covers all three.
 */
import { CrierError } from "../errors.ts";
import type { Selector, SelectorInput } from "../selectors/selector.ts";
import { SUBSCRIPTIONS_PATH } from "./paths.ts";

/** The fixed JSON-LD context of every v0.x document. */
export const JSONLD_CONTEXT = "https://mercure.rocks/";

/** Draft-08 matcher type names, in their canonical case. */
export type MatchType = "exact" | "urlpattern";

const MATCH_TYPES: ReadonlySet<string> = new Set<MatchType>(["exact", "urlpattern"]);

/**
 * [spec, draft-08] The hub MUST dispatch subscription events with the update `type` field — the
 * SSE `event` property — set to the reserved value `mercure`. (v0.x events have no type.)
 */
export const SUBSCRIPTION_EVENT_TYPE = "mercure";

/** One topic selector of one connected subscriber. Immutable. */
export interface ActiveSubscription {
  /** Its URL path: the topic of its events and the `id` of its document. */
  readonly id: string;
  /** The collection it belongs to: {@link id} without the subscriber segment. */
  readonly collection: string;
  /** The subscriber's id (the connection's `urn:uuid:…`). */
  readonly subscriber: string;
  /** Set for a draft-08 `match…` selector; `undefined` for a v0.x `topic` selector. */
  readonly matchType: MatchType | undefined;
  /** The selector as the subscriber wrote it. */
  readonly selector: string;
  /** User data from the subscriber's token, shown as `payload`; `undefined`: none. */
  readonly payload: unknown;
}

/**
 * Names the subscriptions of one subscriber, one per selector, `payloads[i]` being the payload
 * of `inputs[i]`. A plain string or `{ template }` is a v0.x `topic`; `{ exact }` is draft-08
 * `exact`; `{ urlpattern }` is `urlpattern`. A precompiled selector is named by its kind:
 * `urlpattern` as draft-08 `urlpattern`, the others as v0.x.
 */
export function describeSubscriptions(
  subscriber: string,
  inputs: readonly (SelectorInput | Selector)[],
  payloads: readonly unknown[] = [],
): ActiveSubscription[] {
  return inputs.map((input, i) => {
    const payload = payloads[i];
    const [matchType, selector] = nameOf(input);
    // [spec, v0.x] The topic of these updates MUST be an expansion of
    // `/.well-known/mercure/subscriptions/{topic}/{subscriber}`.
    // [spec, draft-08] The topic of these updates MUST be the path of the hub's URL followed by
    // an expansion of `/subscriptions/{match_type}/{match}/{subscriber}`.
    const collection =
      matchType === undefined
        ? `${SUBSCRIPTIONS_PATH}/${expand(selector)}`
        : `${SUBSCRIPTIONS_PATH}/${matchType}/${expand(selector)}`;
    const id = `${collection}/${expand(subscriber)}`;
    return { id, collection, subscriber, matchType, selector, payload };
  });
}

/**
 * The document of one subscription, in its own revision's shape; a v0.x document without its
 * `@context` (add it at the root, see {@link subscriptionEventData}).
 *
 * [spec, v0.x] `id`: the identifier of this update, it MUST be the same value as the
 * subscription update's topic; `type`: the fixed value `Subscription`; `topic`; `subscriber`;
 * `active`; `payload` (optional).
 * [spec, draft-08] `id` […] `type`: the fixed value `subscription`. `match_type` […] `match`
 * […] `subscriber` […] `active` […] `payload` (optional).
 */
export function subscriptionDocument(
  subscription: ActiveSubscription,
  active: boolean,
): Record<string, unknown> {
  const doc: Record<string, unknown> = { id: subscription.id };
  if (subscription.matchType === undefined) {
    doc.type = "Subscription";
    doc.topic = subscription.selector;
  } else {
    doc.type = "subscription";
    doc.match_type = subscription.matchType;
    doc.match = subscription.selector;
  }
  doc.subscriber = subscription.subscriber;
  doc.active = active;
  if (subscription.payload !== undefined) doc.payload = subscription.payload;
  return doc;
}

/**
 * The data of a subscription event, as JSON: a v0.x document with its `@context` (JSON-LD), a
 * draft-08 document as it is.
 */
export function subscriptionEventData(subscription: ActiveSubscription, active: boolean): string {
  const doc = subscriptionDocument(subscription, active);
  return JSON.stringify(
    subscription.matchType === undefined ? { "@context": JSONLD_CONTEXT, ...doc } : doc,
  );
}

/** What a subscriptions API path asks for. `path` is its canonical form (see {@link expand}). */
export type SubscriptionsQuery =
  | { readonly kind: "all"; readonly path: string }
  /** A collection by selector; with two segments it may also name one v0.x subscription. */
  | { readonly kind: "collection"; readonly path: string; readonly maybeOne: boolean }
  | { readonly kind: "one"; readonly path: string };

/**
 * Reads a path under {@link SUBSCRIPTIONS_PATH} (as received, percent-encoded). Each segment is
 * decoded and encoded again, so `%3a` and `%3A` name the same subscription. Returns `undefined`
 * for a path of no API shape; throws `CRIER_ERR_BAD_REQUEST` (400) for one whose
 * percent-encoding is broken or not UTF-8.
 *
 *   /subscriptions                          all
 *   /subscriptions/{topic}                  v0.x collection
 *   /subscriptions/{match_type}/{match}     draft-08 collection (or a v0.x subscription)
 *   /subscriptions/{topic}/{subscriber}     v0.x subscription
 *   /subscriptions/{match_type}/{match}/{s} draft-08 subscription
 */
export function parseSubscriptionsPath(pathname: string): SubscriptionsQuery | undefined {
  if (pathname === SUBSCRIPTIONS_PATH) return { kind: "all", path: SUBSCRIPTIONS_PATH };
  if (!pathname.startsWith(`${SUBSCRIPTIONS_PATH}/`)) return undefined;
  const raw = pathname.slice(SUBSCRIPTIONS_PATH.length + 1).split("/");
  if (raw.length > 3 || raw.includes("")) return undefined;
  let segments: string[];
  try {
    segments = raw.map(decodeURIComponent);
  } catch {
    // As a selector in the query: a topic that is not percent-encoded UTF-8 is refused, not
    // looked up as something else.
    throw new CrierError(
      "CRIER_ERR_BAD_REQUEST",
      "the subscriptions path is not percent-encoded UTF-8",
    );
  }
  const path = `${SUBSCRIPTIONS_PATH}/${segments.map(expand).join("/")}`;
  if (segments.length === 1) return { kind: "collection", path, maybeOne: false };
  if (segments.length === 3) {
    return MATCH_TYPES.has(segments[0] as string) ? { kind: "one", path } : undefined;
  }
  return MATCH_TYPES.has(segments[0] as string)
    ? { kind: "collection", path, maybeOne: true }
    : { kind: "one", path };
}

/**
 * RFC 6570 simple string expansion of one value: every character but the unreserved ones
 * (ALPHA, DIGIT, `-`, `.`, `_`, `~`) percent-encoded as UTF-8, exactly once.
 * [spec, draft-08] the value of each variable MUST be percent-encoded exactly once during
 * expansion, encoding the raw matcher or subscriber string as a whole.
 */
export function expand(value: string): string {
  return encodeURIComponent(value.replace(LONE_SURROGATE, "\uFFFD")).replace(
    /[!'()*]/g,
    (c) => `%${(c.codePointAt(0) as number).toString(16).toUpperCase()}`,
  );
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function nameOf(input: SelectorInput | Selector): [MatchType | undefined, string] {
  if (typeof input === "string") return [undefined, input];
  if ("kind" in input)
    return [input.kind === "urlpattern" ? "urlpattern" : undefined, input.source];
  if ("exact" in input) return ["exact", input.exact];
  if ("urlpattern" in input) return ["urlpattern", input.urlpattern];
  return [undefined, input.template];
}
