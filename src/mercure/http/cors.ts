/**
 * CORS for browsers on other origins. Only origins on the allowlist get headers back, each
 * echoed exactly with credentials allowed; `*` on the list allows any origin but without
 * credentials (browsers refuse `*` with credentials, and a blind echo would hand every site the
 * user's cookie).
 */
import type { NodeRequest, NodeResponse } from "../../adapters/node.ts";

const NONE: Readonly<Record<string, string>> = {};

/** The CORS headers for `req` under the allowlist `origins` (empty when not allowed). */
export function corsHeaders(
  req: NodeRequest,
  origins: readonly string[],
): Readonly<Record<string, string>> {
  const origin = req.headers.origin;
  if (origin === undefined || origins.length === 0) return NONE;
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

/** Answers a preflight request: 204 with the allowed methods and headers, or 403. */
export function preflight(req: NodeRequest, res: NodeResponse, origins: readonly string[]): void {
  const headers = corsHeaders(req, origins);
  if (headers === NONE) {
    res.writeHead(403, { "Content-Type": "text/plain; charset=utf-8" });
    res.end("origin not allowed\n");
    return;
  }
  res.writeHead(204, {
    ...headers,
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID, Cache-Control",
    "Access-Control-Max-Age": "600",
  });
  res.end();
}
