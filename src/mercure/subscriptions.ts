/**
 * Active subscriptions (Mercure): how each topic selector of a connected subscriber is named,
 * described as JSON-LD, and found again from a URL. Pure: no I/O; `active.ts` keeps the registry
 * and publishes the events, `http/subscriptions.ts` serves the web API.
 *
 * One connection with N selectors is N subscriptions sharing one `{subscriber}` (the connection's
 * `urn:uuid:` id). Each is named after the revision of the parameter that created it:
 *
 *   topic=S                    (v0.x)      /.well-known/mercure/subscriptions/{S}/{subscriber}
 *   match=S, matchExact=S      (draft-08)  /.well-known/mercure/subscriptions/Exact/{S}/{subscriber}
 *   match_urlpattern=S, …      (draft-08)  /.well-known/mercure/subscriptions/URLPattern/{S}/{subscriber}
 *
 * That name is at once the topic of its (private) subscription events, the `id` of its JSON-LD
 * document, and the URL the API serves it at, so one token claim covers all three.
 */
import type { Selector, SelectorInput } from "../selectors/selector.ts";
import { SUBSCRIPTIONS_PATH } from "./paths.ts";

/** The fixed JSON-LD context of every document. */
export const JSONLD_CONTEXT = "https://mercure.rocks/";

/** Draft-08 matcher type names, in their canonical case. */
export type MatchType = "Exact" | "URLPattern";

const MATCH_TYPES: ReadonlySet<string> = new Set<MatchType>(["Exact", "URLPattern"]);

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
 * Names the subscriptions of one subscriber, one per selector. A plain string or `{ template }`
 * is a v0.x `topic`; `{ exact }` is draft-08 `Exact`; `{ urlpattern }` is `URLPattern`. A
 * precompiled selector is named by its kind: `urlpattern` as `URLPattern`, the others as v0.x.
 */
export function describeSubscriptions(
  subscriber: string,
  inputs: readonly (SelectorInput | Selector)[],
  payload: unknown,
): ActiveSubscription[] {
  return inputs.map((input) => {
    const [matchType, selector] = nameOf(input);
    // [spec, v0.x] The topic of these updates MUST be an expansion of
    // `/.well-known/mercure/subscriptions/{topic}/{subscriber}`.
    // [spec, draft-08] … an expansion of
    // `/.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber}`.
    const collection =
      matchType === undefined
        ? `${SUBSCRIPTIONS_PATH}/${expand(selector)}`
        : `${SUBSCRIPTIONS_PATH}/${matchType}/${expand(selector)}`;
    const id = `${collection}/${expand(subscriber)}`;
    return { id, collection, subscriber, matchType, selector, payload };
  });
}

/**
 * The JSON-LD document of one subscription, without `@context` (add it at the root).
 * [spec] `id`: the identifier of this update, it MUST be the same value as the subscription
 * update's topic; `type`: the fixed value `Subscription`; v0.x `topic` / draft-08 `matchType` and
 * `match`; `subscriber`; `active`; `payload` (optional).
 */
export function subscriptionDocument(
  subscription: ActiveSubscription,
  active: boolean,
): Record<string, unknown> {
  const doc: Record<string, unknown> = { id: subscription.id, type: "Subscription" };
  if (subscription.matchType === undefined) {
    doc.topic = subscription.selector;
  } else {
    doc.matchType = subscription.matchType;
    doc.match = subscription.selector;
  }
  doc.subscriber = subscription.subscriber;
  doc.active = active;
  if (subscription.payload !== undefined) doc.payload = subscription.payload;
  return doc;
}

/** The data of a subscription event: the document with its `@context`, as JSON. */
export function subscriptionEventData(subscription: ActiveSubscription, active: boolean): string {
  return JSON.stringify({
    "@context": JSONLD_CONTEXT,
    ...subscriptionDocument(subscription, active),
  });
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
 * for a path of no API shape or with broken percent-encoding.
 *
 *   /subscriptions                          all
 *   /subscriptions/{topic}                  v0.x collection
 *   /subscriptions/{matchType}/{match}      draft-08 collection (or a v0.x subscription)
 *   /subscriptions/{topic}/{subscriber}     v0.x subscription
 *   /subscriptions/{matchType}/{match}/{s}  draft-08 subscription
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
    return undefined;
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
    return [input.kind === "urlpattern" ? "URLPattern" : undefined, input.source];
  if ("exact" in input) return ["Exact", input.exact];
  if ("urlpattern" in input) return ["URLPattern", input.urlpattern];
  return [undefined, input.template];
}
