/**
 * The hub's own origin and URL as a request addressed it, and the CSRF check for requests that
 * authenticate with a cookie: a browser attaches the cookie whatever site made the request, so
 * such a request must also come from an origin the hub trusts.
 */
import type { Exchange, ExchangeHeaders } from "./exchange.ts";

/** What the hub's own origin is read from. */
export type Addressed = Pick<Exchange, "headers" | "secure">;

/** `scheme://host[:port]` of the hub, from the connection and the `Host` header. */
export function originOf(ex: Addressed): string {
  return `${ex.secure ? "https" : "http"}://${hostOf(ex.headers) ?? "localhost"}`;
}

/**
 * The `Host` header, or on HTTP/2 the `:authority` pseudo-header, which replaces it.
 * [RFC 9113 §8.3.1] Clients that generate HTTP/2 requests directly MUST use the ":authority"
 * pseudo-header field to convey authority information, unless there is no authority information
 * to convey.
 */
export function hostOf(headers: ExchangeHeaders): string | undefined {
  const { host, ":authority": authority } = headers;
  if (typeof host === "string") return host;
  return typeof authority === "string" ? authority : undefined;
}

/** The hub's URL for `pathname`: the base of relative URL patterns and relative topics. */
export function hubUrlOf(ex: Addressed, pathname: string): string {
  return `${originOf(ex)}${pathname}`;
}

/**
 * True when the request's `Origin` (or, without one, the origin of its `Referer`) is the hub's
 * own origin or one of `corsOrigins`. The `*` entry does not count: it allows reading without
 * credentials, never acting with them. A request with neither header is refused.
 */
export function isTrustedOrigin(ex: Addressed, corsOrigins: readonly string[]): boolean {
  const { origin: header, referer } = ex.headers;
  const origin =
    typeof header === "string"
      ? header
      : typeof referer === "string"
        ? refererOrigin(referer)
        : undefined;
  if (origin === undefined || origin === "null") return false;
  return origin === originOf(ex) || (origin !== "*" && corsOrigins.includes(origin));
}

function refererOrigin(referer: string): string | undefined {
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}
