/**
 * The hub's own origin and URL as a request addressed it, and the CSRF check for requests that
 * authenticate with a cookie: a browser attaches the cookie whatever site made the request, so
 * such a request must also come from an origin the hub trusts.
 */
import type { NodeRequest } from "../../adapters/node.ts";

/** `scheme://host[:port]` of the hub, from the connection and the `Host` header. */
export function originOf(req: NodeRequest): string {
  return `${"encrypted" in req.socket ? "https" : "http"}://${hostOf(req) ?? "localhost"}`;
}

/**
 * The `Host` header, or on HTTP/2 the `:authority` pseudo-header, which replaces it.
 * [RFC 9113 §8.3.1] Clients that generate HTTP/2 requests directly MUST use the ":authority"
 * pseudo-header field to convey authority information, unless there is no authority information
 * to convey.
 */
export function hostOf(req: NodeRequest): string | undefined {
  const authority = (req.headers as Record<string, string | string[] | undefined>)[":authority"];
  return req.headers.host ?? (typeof authority === "string" ? authority : undefined);
}

/** The hub's URL for `pathname`: the base of relative URL patterns and relative topics. */
export function hubUrlOf(req: NodeRequest, pathname: string): string {
  return `${originOf(req)}${pathname}`;
}

/**
 * True when the request's `Origin` (or, without one, the origin of its `Referer`) is the hub's
 * own origin or one of `corsOrigins`. The `*` entry does not count: it allows reading without
 * credentials, never acting with them. A request with neither header is refused.
 */
export function isTrustedOrigin(req: NodeRequest, corsOrigins: readonly string[]): boolean {
  const origin = req.headers.origin ?? refererOrigin(req.headers.referer);
  if (origin === undefined || origin === "null") return false;
  return origin === originOf(req) || (origin !== "*" && corsOrigins.includes(origin));
}

function refererOrigin(referer: string | undefined): string | undefined {
  if (referer === undefined) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}
