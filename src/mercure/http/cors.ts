/**
 * CORS for browsers on other origins. Only origins on the allowlist get headers back, each
 * echoed exactly with credentials allowed; `*` on the list allows any origin but without
 * credentials (browsers refuse `*` with credentials, and a blind echo would hand every site the
 * user's cookie).
 */
import type { Exchange, ExchangeHeaders } from "./exchange.ts";

const NONE: Readonly<Record<string, string>> = {};

/** The CORS headers for a request with `headers` under the allowlist `origins` (empty when not allowed). */
export function corsHeaders(
  headers: ExchangeHeaders,
  origins: readonly string[],
): Readonly<Record<string, string>> {
  const origin = headers.origin;
  if (typeof origin !== "string" || origins.length === 0) return NONE;
  if (origins.includes(origin)) {
    return {
      "Access-Control-Allow-Origin": origin,
      "Access-Control-Allow-Credentials": "true",
      Vary: "Origin",
    };
  }
  if (origins.includes("*")) return { "Access-Control-Allow-Origin": "*" };
  return NONE;
}

/** Answers a preflight request: 204 with the allowed `methods` and headers, or 403. */
export function preflight(
  ex: Exchange,
  origins: readonly string[],
  methods = "GET, POST, OPTIONS",
): void {
  const headers = corsHeaders(ex.headers, origins);
  if (headers === NONE) {
    ex.reply(403, { "Content-Type": "text/plain; charset=utf-8" }, "origin not allowed\n");
    return;
  }
  ex.reply(204, {
    ...headers,
    "Access-Control-Allow-Methods": methods,
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID, Cache-Control",
    "Access-Control-Max-Age": "600",
  });
}
