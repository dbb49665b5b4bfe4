/**
 * The hub's own origin and URL as a request addressed it, and the CSRF check for requests that
 * authenticate with a cookie: a browser attaches the cookie whatever site made the request, so
 * such a request must also come from an origin the hub trusts.
 */
import { CrierError } from "../../errors.ts";
import type { Exchange, ExchangeHeaders } from "./exchange.ts";

/** What the hub's own origin is read from. */
export type Addressed = Pick<Exchange, "headers" | "secure">;

/**
 * `scheme://host[:port]` of the hub: `publicOrigin` when one is configured, else read from the
 * connection and the `Host` header (which the client chooses, and which says `http` behind a
 * proxy that terminates TLS).
 */
export function originOf(ex: Addressed, publicOrigin?: string): string {
  if (publicOrigin !== undefined) return publicOrigin;
  return `${ex.secure ? "https" : "http"}://${hostOf(ex.headers) ?? "localhost"}`;
}

/**
 * On HTTP/2 the `:authority` pseudo-header, else the `Host` header.
 * [RFC 9113 §8.3.1] Clients that generate HTTP/2 requests directly MUST use the ":authority"
 * pseudo-header field to convey authority information, unless there is no authority information
 * to convey. […] A server SHOULD treat a request as malformed if it contains a Host header field
 * that identifies an entity that differs from the entity in the ":authority" pseudo-header
 * field. (`requestUrl` refuses those; a recipient MUST NOT use Host when :authority is there.)
 */
export function hostOf(headers: ExchangeHeaders): string | undefined {
  const { host, ":authority": authority } = headers;
  if (typeof authority === "string") return authority;
  return typeof host === "string" ? host : undefined;
}

/** The hub's URL for `pathname`: the base of relative URL patterns and relative topics. */
export function hubUrlOf(ex: Addressed, pathname: string, publicOrigin?: string): string {
  return `${originOf(ex, publicOrigin)}${pathname}`;
}

/**
 * True when the request's `Origin` (or, without one, the origin of its `Referer`) is the hub's
 * own origin or one of `corsOrigins`. The `*` entry does not count: it allows reading without
 * credentials, never acting with them. A request with neither header is refused.
 */
export function isTrustedOrigin(
  ex: Addressed,
  corsOrigins: readonly string[],
  publicOrigin?: string,
): boolean {
  const { origin: header, referer } = ex.headers;
  const origin =
    typeof header === "string"
      ? header
      : typeof referer === "string"
        ? refererOrigin(referer)
        : undefined;
  if (origin === undefined || origin === "null") return false;
  return origin === originOf(ex, publicOrigin) || (origin !== "*" && corsOrigins.includes(origin));
}

function refererOrigin(referer: string): string | undefined {
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

/**
 * Throws `CRIER_ERR_INVALID_OPTION` naming `from` unless each of `origins` is an origin as a
 * browser sends it in `Origin`, or `*`: one with a path or a trailing slash would never match.
 */
export function checkCorsOrigins(origins: readonly string[], from: string): void {
  for (const origin of origins) {
    if (origin !== "*" && !isOrigin(origin)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `${from}: ${JSON.stringify(origin)} is not an origin; give scheme://host[:port] (http or https, lower case, no path, query or default port), or * alone`,
      );
    }
  }
}

/** Whether `text` is an http(s) origin as a browser serializes it: the URL's own origin, nothing more. */
export function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    const web = url.protocol === "http:" || url.protocol === "https:";
    // A browser's Origin never holds a wildcard; `https://*.example` would match nothing.
    return web && url.origin === text && !url.host.includes("*");
  } catch {
    return false;
  }
}
