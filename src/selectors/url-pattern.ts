/**
 * WHATWG URL patterns as topic selectors (Mercure draft-08 `match_urlpattern`). Node 23.8+ has a
 * global `URLPattern`; before that the `urlpattern-polyfill` package provides the same class.
 *
 * Both compile each component to a backtracking JavaScript RegExp. [spec] "hubs MUST either use
 * a regular expression engine that guarantees linear-time matching (such as RE2) or enforce an
 * implementation-defined evaluation cost or time limit. When such a limit is reached, the
 * pattern MUST be treated as not matching". Our cost limit, checked when the pattern compiles:
 *
 * - no regexp groups (`:id(\d+)`): arbitrary user regexps can backtrack exponentially;
 * - at most {@link MAX_URL_PATTERN_GROUPS} wildcards and named groups in all, and no repeat
 *   modifier (`+`, `*`) on a group: `/*a*a*a*b` is polynomial of degree "number of groups";
 * - topics longer than {@link MAX_URL_PATTERN_TOPIC_LENGTH} do not match any URL pattern, so
 *   the quadratic worst case left is bounded.
 */
import { createRequire } from "node:module";
import type { URLPattern as PolyfillURLPattern } from "urlpattern-polyfill/urlpattern";
import { CrierError } from "../errors.ts";

/** Most wildcards and named groups in one URL pattern. */
export const MAX_URL_PATTERN_GROUPS = 2;
/** Longest topic a URL pattern is evaluated against; longer topics never match. */
export const MAX_URL_PATTERN_TOPIC_LENGTH = 2048;

type Pattern = InstanceType<typeof PolyfillURLPattern>;
// The global class where Node has one; else the polyfill, loaded on the first URL pattern.
let URLPatternClass: typeof PolyfillURLPattern | undefined;
function urlPatternClass(): typeof PolyfillURLPattern {
  URLPatternClass ??=
    (globalThis as { URLPattern?: typeof PolyfillURLPattern }).URLPattern ??
    (
      createRequire(import.meta.url)("urlpattern-polyfill/urlpattern") as {
        URLPattern: typeof PolyfillURLPattern;
      }
    ).URLPattern;
  return URLPatternClass;
}

/** Compiles a URL pattern; relative patterns and topics resolve against `base` (the hub's URL). */
export function compileUrlPattern(
  source: string,
  base: string | undefined,
): (topic: string) => boolean {
  checkCost(source);
  let pattern: Pattern;
  try {
    // [spec] hubs MUST NOT enable the `ignoreCase` option.
    pattern =
      base === undefined ? new (urlPatternClass())(source) : new (urlPatternClass())(source, base);
  } catch (err) {
    throw new CrierError(
      "CRIER_ERR_BAD_REQUEST",
      `"${source}" is not a valid URL pattern${base === undefined ? " (a relative pattern needs the hub's URL as base)" : ""}`,
      { cause: err },
    );
  }
  // Not in the polyfill's typings, but implemented by it and by Node's global URLPattern.
  const { hasRegExpGroups } = pattern as Pattern & { hasRegExpGroups?: boolean };
  if (hasRegExpGroups ?? source.includes("(")) {
    throw new CrierError(
      "CRIER_ERR_BAD_REQUEST",
      `URL pattern "${source}" uses a regexp group; use named groups (:name) or wildcards (*)`,
    );
  }
  return (topic) => {
    if (topic.length > MAX_URL_PATTERN_TOPIC_LENGTH) return false;
    try {
      return base === undefined ? pattern.test(topic) : pattern.test(topic, base);
    } catch {
      return false;
    }
  };
}

// Counts groups in the pattern string: `:name` and unescaped `*` not used as a modifier.
function checkCost(source: string): void {
  let groups = 0;
  let afterGroup = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      i++;
      afterGroup = false;
    } else if (c === ":" && /[\p{ID_Start}$_]/u.test(source[i + 1] ?? "")) {
      groups++;
      while (/[\p{ID_Continue}$\u200C\u200D]/u.test(source[i + 1] ?? "")) i++;
      afterGroup = true;
    } else if ((c === "*" || c === "+") && afterGroup) {
      refuse(source, "a repeat modifier (+ or *) on a group");
    } else if (c === "*") {
      groups++;
      afterGroup = true;
    } else {
      afterGroup = c === ")" || c === "}";
    }
    if (groups > MAX_URL_PATTERN_GROUPS) {
      refuse(source, `more than ${MAX_URL_PATTERN_GROUPS} wildcards and named groups`);
    }
  }
}

function refuse(source: string, what: string): never {
  throw new CrierError(
    "CRIER_ERR_BAD_REQUEST",
    `URL pattern "${source}" has ${what}, which could make matching slow`,
  );
}
