/**
 * Topic selectors: which topics a subscription (or a token's claim) covers. Four kinds, compiled
 * once per subscription by {@link compileSelector}:
 *
 * - `any`: `*`, every topic (both protocol revisions reserve it);
 * - `exact`: byte-for-byte comparison (draft-08 `match`, a plain v0.x `topic`);
 * - `template`: an RFC 6570 URI template (v0.x `topic` containing `{`), see `uri-template.ts`;
 * - `urlpattern`: a WHATWG URL pattern (draft-08 `match_urlpattern`), see `url-pattern.ts`.
 *
 * Exact and `*` selectors never reach {@link matchesTopic} on the hot path: the topic index does
 * them with a map lookup. Pattern selectors are matched through a bounded {@link MatchCache}.
 */
import { CrierError } from "../errors.ts";
import { LruCache } from "../lru.ts";
import { kindOf } from "../options.ts";
import { compileTemplate } from "./uri-template.ts";
import { compileUrlPattern } from "./url-pattern.ts";

/** The selector that matches every topic. */
export const ANY_TOPIC = "*";

/** Longest selector accepted, in UTF-16 code units. Longer ones are refused (HTTP 400). */
export const MAX_SELECTOR_LENGTH = 1024;

/** A compiled selector. Build one with {@link compileSelector}; treat it as opaque and immutable. */
export interface Selector {
  readonly kind: "any" | "exact" | "template" | "urlpattern";
  /** The selector as written (a URL pattern's relative form is kept as given). */
  readonly source: string;
  /** Identifies the selector in the match cache: kind, base and source. */
  readonly key: string;
  /** Matches without the cache. Use {@link matchesTopic}. */
  readonly test: (topic: string) => boolean;
}

/**
 * A selector as callers write it:
 * - a plain string: `*`, a URI template when it contains `{` (Mercure v0.x `topic`), else exact;
 * - `{ exact }`: compared byte for byte, even when it contains `{` (draft-08 `match`);
 * - `{ template }`: an RFC 6570 URI template;
 * - `{ urlpattern, base? }`: a WHATWG URL pattern; a relative one is resolved against `base`
 *   (the hub's URL), which it then requires. Relative topics are resolved against it too.
 *
 * `*` means every topic whatever the kind.
 */
export type SelectorInput =
  | string
  | { readonly exact: string }
  | { readonly template: string }
  | { readonly urlpattern: string; readonly base?: string | undefined };

/**
 * Compiles a selector; throws `CRIER_ERR_BAD_REQUEST` (HTTP 400) for an empty or over-long one,
 * an invalid URI template, an invalid URL pattern, or a URL pattern that could match in
 * super-linear time (see `url-pattern.ts`).
 */
export function compileSelector(input: SelectorInput | Selector): Selector {
  if (typeof input !== "string" && (typeof input !== "object" || input === null)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `a topic selector is a string or { exact }, { template }, { urlpattern, base? }; got ${kindOf(input)}`,
    );
  }
  if (typeof input === "object" && "kind" in input) return input;
  const [kind, source, base] = describe(input);
  if (source === "") throw new CrierError("CRIER_ERR_BAD_REQUEST", "a topic selector is empty");
  if (source.length > MAX_SELECTOR_LENGTH) {
    throw new CrierError(
      "CRIER_ERR_BAD_REQUEST",
      `a topic selector is longer than ${MAX_SELECTOR_LENGTH} characters`,
    );
  }
  if (source === ANY_TOPIC) return ANY;
  if (kind === "exact") return exact(source);
  const key = `${kind}\u0000${base ?? ""}\u0000${source}`;
  const cached = compiled.get(key);
  if (cached !== undefined) return cached;
  const test = kind === "template" ? compileTemplate(source) : compileUrlPattern(source, base);
  const selector: Selector = { kind, source, key, test };
  compiled.set(key, selector);
  return selector;
}

/**
 * Compiles a token claim (`mercure.subscribe` / `mercure.publish`). Claims are v0.x selectors:
 * `*`, URI templates, or exact strings; a claim that is not a valid template is compared
 * exactly, as the reference hub does, rather than making the whole token unusable.
 */
export function compileClaim(claim: string): Selector {
  try {
    return compileSelector(claim);
  } catch {
    return exact(claim);
  }
}

/** True when `selector` covers `topic`. Pattern results are cached (see {@link matchCache}). */
export function matchesTopic(selector: Selector, topic: string): boolean {
  if (selector.kind === "any") return true;
  // [spec, v0.x] If the topic selector and the string are exactly the same, the string matches
  // the selector. This characteristic allows to compare a URI Template with another one.
  if (selector.source === topic) return true;
  if (selector.kind === "exact") return false;
  return matchCache.match(selector, topic);
}

/** True when some selector covers some of the topics. */
export function coversAny(
  selectors: readonly (Selector | string)[],
  topics: readonly string[],
): boolean {
  for (const topic of topics) {
    for (const selector of selectors) if (matchesTopic(asClaim(selector), topic)) return true;
  }
  return false;
}

/** True when every topic is covered by some selector. */
export function coversAll(
  selectors: readonly (Selector | string)[],
  topics: readonly string[],
): boolean {
  for (const topic of topics) {
    if (!selectors.some((selector) => matchesTopic(asClaim(selector), topic))) return false;
  }
  return true;
}

/**
 * One cached boolean per (selector, topic) pair, least recently used evicted first once
 * `maxEntries` pairs are held, so the cache never holds more than `maxEntries`. Pairs whose key
 * is longer than `maxKeyLength` are matched but not cached, which bounds the bytes too
 * (at most `maxEntries × maxKeyLength` UTF-16 code units of keys).
 */
export class MatchCache {
  readonly maxEntries: number;
  readonly maxKeyLength: number;
  readonly #entries: LruCache<string, boolean>;

  constructor(maxEntries = 4096, maxKeyLength = 4096) {
    this.maxEntries = maxEntries;
    this.maxKeyLength = maxKeyLength;
    this.#entries = new LruCache(maxEntries);
  }

  /** Pairs held now; never more than `maxEntries`. */
  get size(): number {
    return this.#entries.size;
  }

  match(selector: Selector, topic: string): boolean {
    const key = `${selector.key}\u0000${topic}`;
    if (key.length > this.maxKeyLength) return selector.test(topic);
    const hit = this.#entries.get(key);
    if (hit !== undefined) return hit;
    const result = selector.test(topic);
    this.#entries.set(key, result);
    return result;
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** The process-wide match cache: 4,096 pairs, keys of at most 4,096 code units. */
export const matchCache = new MatchCache();

// Compiled patterns, shared by subscriptions that use the same selector: 1,024 at most.
const compiled = new LruCache<string, Selector>(1024);
const ANY: Selector = { kind: "any", source: ANY_TOPIC, key: "any", test: () => true };

function exact(source: string): Selector {
  return { kind: "exact", source, key: `exact\u0000${source}`, test: (t) => t === source };
}

function asClaim(selector: Selector | string): Selector {
  return typeof selector === "string" ? compileClaim(selector) : selector;
}

function describe(
  input: SelectorInput,
): [kind: "exact" | "template" | "urlpattern", source: string, base?: string | undefined] {
  if (typeof input === "string") return [input.includes("{") ? "template" : "exact", input];
  if ("exact" in input) return ["exact", text("exact", input.exact)];
  if ("template" in input) return ["template", text("template", input.template)];
  if ("urlpattern" in input) {
    const base = input.base === undefined ? undefined : text("base", input.base);
    return ["urlpattern", text("urlpattern", input.urlpattern), base];
  }
  throw new CrierError(
    "CRIER_ERR_INVALID_OPTION",
    "unknown topic selector kind: use a string, { exact }, { template } or { urlpattern, base? }",
  );
}

// A selector's field from plain JavaScript: a number would never match, silently.
function text(field: string, value: unknown): string {
  if (typeof value === "string") return value;
  throw new CrierError(
    "CRIER_ERR_INVALID_OPTION",
    `a topic selector's ${field} must be a string, got ${kindOf(value)}`,
  );
}
